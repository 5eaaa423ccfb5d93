package enroll

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// RevocationChecker says whether a CA revoked a certificate. localca.CA
// implements it from its own revocation list; CRLChecker from a CRL.
type RevocationChecker interface {
	// CheckRevocation reports whether cert, issued by issuer (the next
	// certificate of a verified chain), is revoked. ok is false, with a nil
	// error, when this source knows nothing about issuer's certificates;
	// an error means it could not tell.
	CheckRevocation(ctx context.Context, cert, issuer *x509.Certificate) (revoked, ok bool, err error)
}

// CRLFetcher is implemented by issuers that publish a CRL saslcert can read
// (stepca.Client); the Service checks revocation against it.
type CRLFetcher interface {
	CRL(ctx context.Context) ([]byte, error)
}

// CRLChecker is a RevocationChecker backed by one CRL, fetched with Fetch and
// kept for MaxAge (never beyond the CRL's nextUpdate). Its CRL answers only
// for the CA that signed it: for certificates of other issuers ok is false.
// It is safe for concurrent use; concurrent checks share one fetch.
type CRLChecker struct {
	// Name says where the CRL comes from, in errors (e.g. its URL).
	Name string
	// Fetch returns the CRL, DER or PEM.
	Fetch func(ctx context.Context) ([]byte, error)
	// MaxAge is how long a fetched CRL is used; 0 fetches it for every
	// check.
	MaxAge time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu      sync.Mutex
	crl     *x509.RevocationList
	fetched time.Time
}

// NewHTTPCRLChecker returns a CRLChecker that GETs the CRL at url with hc
// (nil: a client with a 30 s timeout). CRLs are signed, so plain HTTP is
// fine; the signature is checked against the certificate's issuer.
func NewHTTPCRLChecker(url string, hc *http.Client, maxAge time.Duration, now func() time.Time) *CRLChecker {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &CRLChecker{Name: url, MaxAge: maxAge, Now: now, Fetch: func(ctx context.Context) ([]byte, error) {
		return fetchURL(ctx, hc, url)
	}}
}

// maxCRLSize bounds a CRL read over HTTP.
const maxCRLSize = 16 << 20

func fetchURL(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCRLSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCRLSize {
		return nil, fmt.Errorf("GET %s: the CRL is larger than %d bytes", url, maxCRLSize)
	}
	return data, nil
}

// Invalidate drops the cached CRL, so that the next check fetches it.
func (c *CRLChecker) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.crl = nil
}

func (c *CRLChecker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// list returns a CRL that is fresh enough, fetching one if needed.
func (c *CRLChecker) list(ctx context.Context) (*x509.RevocationList, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.crl != nil && now.Sub(c.fetched) < c.MaxAge && (c.crl.NextUpdate.IsZero() || now.Before(c.crl.NextUpdate)) {
		return c.crl, nil
	}
	data, err := c.Fetch(ctx)
	if err != nil {
		return nil, Errorf(ErrUnavailable, "CRL %s: %v", c.Name, err)
	}
	if b, _ := pem.Decode(data); b != nil && b.Type == "X509 CRL" {
		data = b.Bytes
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, Errorf(ErrUnavailable, "CRL %s: %v", c.Name, err)
	}
	c.crl, c.fetched = crl, now
	return crl, nil
}

// CheckRevocation implements RevocationChecker. A CRL signed by issuer that
// is past its nextUpdate even when fetched afresh is an error (the
// certificate's status is unknown), as is a CRL that names issuer but whose
// signature does not verify with issuer's key.
func (c *CRLChecker) CheckRevocation(ctx context.Context, cert, issuer *x509.Certificate) (revoked, ok bool, err error) {
	if cert == nil || issuer == nil {
		return false, false, errors.New("enroll: CheckRevocation: no certificate or issuer")
	}
	crl, err := c.list(ctx)
	if err != nil {
		return false, false, err
	}
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return false, false, nil
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return false, false, Errorf(ErrUnavailable, "CRL %s names %s as its issuer but its signature does not verify with that CA's key: %v", c.Name, issuer.Subject, err)
	}
	if !crl.NextUpdate.IsZero() && c.now().After(crl.NextUpdate) {
		return false, false, Errorf(ErrUnavailable, "CRL %s is out of date (next update was due %s)", c.Name,
			crl.NextUpdate.UTC().Format(time.RFC3339))
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return true, true, nil
		}
	}
	return false, true, nil
}
