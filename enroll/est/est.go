// Package est is an enroll.Issuer backed by an EST server (RFC 7030, with
// RFC 8951): /cacerts for the CA certificates, /simpleenroll and
// /simplereenroll for certificates. saslcert acts as a registration
// authority: it authenticates to the EST server with HTTP Basic or a TLS
// client certificate, over TLS pinned to an explicit trust anchor.
//
// EST CAs commonly copy the CSR's subject and subjectAltName into the
// certificate, so the CSR must request exactly the xmppAddr of the
// authenticated account, and enroll.CheckCSR runs before anything is sent;
// enroll.CheckIssued runs on the result. EST has no revocation operation
// (Revoke returns enroll.ErrNotSupported) and no way to ask for a lifetime:
// the CA's profile decides, and Config.MaxLifetime can refuse certificates
// that live longer.
package est

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/sasl"
)

// Config configures a Client.
type Config struct {
	// URL is the EST server, e.g. "https://est.example.org:8443"; requests
	// go to URL/.well-known/est[/Label]/<operation>.
	URL   string
	Label string
	// Root is the explicit trust anchor for TLS to the EST server
	// (required).
	Root *x509.Certificate
	// IssuerRoots are the roots issued certificates must chain to. If empty,
	// the self-signed certificates from /cacerts (fetched over the pinned
	// TLS connection) are used.
	IssuerRoots []*x509.Certificate
	// Username and Password, if Username is set, are sent with HTTP Basic.
	Username, Password string
	// ClientCert, if set, authenticates saslcert with a TLS client
	// certificate (an RA certificate).
	ClientCert *tls.Certificate
	// AllowServerAuth accepts issued certificates whose extended key usage
	// has serverAuth next to clientAuth (enroll.IssuedOptions); without it
	// they are refused, as is any other usage beyond clientAuth.
	AllowServerAuth bool
	// MaxLifetime, if set, refuses issued certificates valid for longer
	// (enroll.ErrBadIssued).
	MaxLifetime time.Duration
	// Timeout bounds each HTTP request (default 30 s).
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Client is an EST enroll.Issuer. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string // URL/.well-known/est[/label]
	http *http.Client
}

var _ enroll.Issuer = (*Client)(nil)

// New checks cfg and returns a Client. It does not contact the server.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		return nil, errors.New("est: no URL")
	case err != nil:
		return nil, fmt.Errorf("est: URL: %w", err)
	case u.Scheme != "https" || u.Host == "":
		return nil, fmt.Errorf("est: URL %q: want https://host[:port]", cfg.URL)
	case cfg.Root == nil:
		return nil, errors.New("est: no trust anchor (Root) to pin TLS to")
	case strings.Contains(cfg.Label, "/"):
		return nil, fmt.Errorf("est: label %q contains a slash", cfg.Label)
	case cfg.Password != "" && cfg.Username == "":
		return nil, errors.New("est: a password without a username")
	case cfg.MaxLifetime < 0:
		return nil, errors.New("est: negative MaxLifetime")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	base := strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/") + "/.well-known/est"
	if cfg.Label != "" {
		base += "/" + url.PathEscape(cfg.Label)
	}
	c := &Client{cfg: cfg, base: base}
	c.http = c.newHTTP(cfg.ClientCert)
	return c, nil
}

// newHTTP makes an HTTP client pinned to the trust anchor, presenting cert
// (if not nil).
func (c *Client) newHTTP(cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(c.cfg.Root)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{
		Timeout:       c.cfg.Timeout,
		Transport:     &http.Transport{TLSClientConfig: tc, Proxy: nil, MaxIdleConnsPerHost: 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CACerts returns the certificates of GET /cacerts, in the server's order.
func (c *Client) CACerts(ctx context.Context) ([]*x509.Certificate, error) {
	return c.certs(ctx, c.http, http.MethodGet, "/cacerts", nil, false)
}

// Roots returns Config.IssuerRoots, or else the self-signed certificates
// among /cacerts (all of them if none is self-signed).
func (c *Client) Roots(ctx context.Context) ([]*x509.Certificate, error) {
	if len(c.cfg.IssuerRoots) > 0 {
		return c.cfg.IssuerRoots, nil
	}
	certs, err := c.CACerts(ctx)
	if err != nil {
		return nil, err
	}
	return selfSigned(certs), nil
}

// isSelfSigned reports whether c is signed by its own key under its own name.
func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// selfSigned returns the self-signed certificates among certs, or all of
// them if none is.
func selfSigned(certs []*x509.Certificate) []*x509.Certificate {
	var roots []*x509.Certificate
	for _, c := range certs {
		if isSelfSigned(c) {
			roots = append(roots, c)
		}
	}
	if len(roots) == 0 {
		return certs
	}
	return roots
}

// Issue checks req.CSR (enroll.CheckCSR, and it must request the account's
// xmppAddr: EST CAs copy it), POSTs it to /simpleenroll with the configured
// credentials and returns the certificate after enroll.CheckIssued.
// req.Lifetime is ignored (see the package documentation).
func (c *Client) Issue(ctx context.Context, req *enroll.IssueRequest) (*enroll.Issued, error) {
	return c.enroll(ctx, req, "/simpleenroll", c.http)
}

// Reenroll is Issue through /simplereenroll, authenticated with current,
// the certificate being renewed (and its key): RFC 7030 §4.2.2 wants the
// CSR's subject and subjectAltName to equal current's.
func (c *Client) Reenroll(ctx context.Context, req *enroll.IssueRequest, current tls.Certificate) (*enroll.Issued, error) {
	if len(current.Certificate) == 0 || current.PrivateKey == nil {
		return nil, enroll.Errorf(enroll.ErrBadRequest, "simplereenroll needs the current certificate and its key")
	}
	hc := c.newHTTP(&current)
	defer hc.CloseIdleConnections()
	return c.enroll(ctx, req, "/simplereenroll", hc)
}

// Revoke returns enroll.ErrNotSupported: EST has no revocation; revoke at
// the CA by other means.
func (c *Client) Revoke(ctx context.Context, req *enroll.RevokeRequest) error {
	return enroll.Errorf(enroll.ErrNotSupported, "EST (RFC 7030) has no revocation operation; revoke at the CA")
}

func (c *Client) enroll(ctx context.Context, req *enroll.IssueRequest, op string, hc *http.Client) (*enroll.Issued, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	if req.CSR == nil {
		return nil, enroll.Errorf(enroll.ErrNotSupported, "EST enrolls CSRs, not self-signed certificates or public keys to renew")
	}
	if err := enroll.CheckCSR(req.CSR, req.Account); err != nil {
		return nil, err
	}
	if !hasSAN(req.CSR) {
		return nil, enroll.Errorf(enroll.ErrBadRequest, "the CSR must request the xmppAddr %s (EST CAs copy the CSR's names)", req.Account)
	}
	body := []byte(base64.StdEncoding.EncodeToString(req.CSR.Raw))
	certs, err := c.certs(ctx, hc, http.MethodPost, op, body, true)
	if err != nil {
		return nil, err
	}
	chain, err := orderChain(certs, req.CSR.PublicKey)
	if err != nil {
		return nil, enroll.Errorf(enroll.ErrBadIssued, "%s: %v", op, err)
	}
	roots := c.cfg.IssuerRoots
	if len(roots) == 0 || len(chain) == 1 {
		// Roots, and intermediates the answer left out, come from /cacerts.
		cas, err := c.CACerts(ctx)
		if err != nil {
			return nil, err
		}
		if len(roots) == 0 {
			roots = selfSigned(cas)
		}
		for _, ca := range cas {
			if !isSelfSigned(ca) && !slices.ContainsFunc(chain, func(d []byte) bool { return bytes.Equal(d, ca.Raw) }) {
				chain = append(chain, ca.Raw)
			}
		}
	}
	issued, err := enroll.CheckIssuedWith(chain, req.Account, req.CSR.PublicKey, c.cfg.Now(), roots, enroll.IssuedOptions{AllowServerAuth: c.cfg.AllowServerAuth})
	if err != nil {
		return nil, err
	}
	if max := c.cfg.MaxLifetime; max > 0 && issued.Cert.NotAfter.Sub(issued.Cert.NotBefore) > max+time.Minute {
		return nil, enroll.Errorf(enroll.ErrBadIssued, "valid for %s, longer than the allowed %s",
			issued.Cert.NotAfter.Sub(issued.Cert.NotBefore), max)
	}
	return issued, nil
}

// hasSAN reports whether csr requests a subjectAltName.
func hasSAN(csr *x509.CertificateRequest) bool {
	for _, ext := range csr.Extensions {
		if ext.Id.Equal(sasl.OIDSubjectAltName) {
			return true
		}
	}
	return false
}

// orderChain puts the certificate for pub first and keeps the others (and
// drops duplicates), returning DER.
func orderChain(certs []*x509.Certificate, pub crypto.PublicKey) ([][]byte, error) {
	var leaf *x509.Certificate
	var rest [][]byte
	for _, c := range certs {
		k, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if leaf == nil && ok && k.Equal(pub) {
			leaf = c
			continue
		}
		rest = append(rest, c.Raw)
	}
	if leaf == nil {
		return nil, errors.New("no certificate for the requested key")
	}
	return append([][]byte{leaf.Raw}, rest...), nil
}

// maxResponse bounds how much of an answer is read.
const maxResponse = 1 << 20

// certs does one EST request whose answer is a base64 certs-only PKCS#7.
// Statuses other than 200 wrap enroll.ErrPending (202), enroll.ErrRejected
// (4xx) or enroll.ErrUnavailable (5xx, network, unreadable answer).
func (c *Client) certs(ctx context.Context, hc *http.Client, method, op string, body []byte, auth bool) ([]*x509.Certificate, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequestWithContext(ctx, method, c.base+op, rd)
	if err != nil {
		return nil, fmt.Errorf("est: %w", err)
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/pkcs10")
		r.Header.Set("Content-Transfer-Encoding", "base64")
	}
	r.Header.Set("Accept", "application/pkcs7-mime")
	if auth && c.cfg.Username != "" {
		r.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	resp, err := hc.Do(r)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, enroll.Errorf(enroll.ErrUnavailable, "%s %s: %v", method, op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, enroll.Errorf(enroll.ErrUnavailable, "%s %s: %v", method, op, err)
	}
	switch {
	case resp.StatusCode == http.StatusAccepted:
		return nil, enroll.Errorf(enroll.ErrPending, "%s %s: retry after %q", method, op, resp.Header.Get("Retry-After"))
	case resp.StatusCode >= 500:
		return nil, enroll.Errorf(enroll.ErrUnavailable, "%s %s: %s: %s", method, op, resp.Status, snippet(data))
	case resp.StatusCode != http.StatusOK:
		return nil, enroll.Errorf(enroll.ErrRejected, "%s %s: %s: %s", method, op, resp.Status, snippet(data))
	}
	der, err := decodeBase64(data)
	if err != nil {
		return nil, enroll.Errorf(enroll.ErrUnavailable, "%s %s: %v", method, op, err)
	}
	certs, err := parseCertsOnly(der)
	if err != nil {
		return nil, enroll.Errorf(enroll.ErrUnavailable, "%s %s: %v", method, op, err)
	}
	return certs, nil
}

// snippet is the start of an error body, for messages.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b[:min(len(b), 200)]))
	if s == "" {
		return "(no details)"
	}
	return s
}
