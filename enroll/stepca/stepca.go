// Package stepca is an enroll.Issuer backed by step-ca (smallstep
// certificates) through its HTTP API, with a JWK provisioner whose private
// key saslcert holds (a registration authority).
//
// For each request it mints a one-time token (go-jose v4, ES256 for a P-256
// key): iss = provisioner name, aud = <CA URL>/1.0/sign, sub = the
// authenticated bare JID, sans = [JID], a random jti, nbf = iat = now,
// exp = now + 5 minutes, header kid = the provisioner key's id, and cnf
// x5rt#S256 = the SHA-256 of the CSR, so the token is good for that CSR
// only. It POSTs {csr, ott, notAfter} to /1.0/sign. Revocation POSTs
// {serial, ott, reasonCode, passive: true} to /1.0/revoke with a second
// token (aud .../1.0/revoke, sub = the decimal serial number).
//
// The provisioner's X.509 template must build the certificate from the
// token, not the CSR, e.g.
//
//	{ "subject": {"commonName": {{ toJson .Token.sub }}},
//	  "sans": [{"type": "1.3.6.1.5.5.7.8.5", "value": {{ printf "utf8:%s" .Token.sub | toJson }}}],
//	  "keyUsage": ["digitalSignature"], "extKeyUsage": ["clientAuth"] }
//
// Whatever the template does, the CSR is checked before it is sent
// (enroll.CheckCSR) and the result after (enroll.CheckIssued), so a
// misconfigured template cannot make saslcert store a certificate with other
// names. TLS to step-ca is pinned to its root certificate.
package stepca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/saslcert/saslcert/enroll"
)

// Config configures a Client.
type Config struct {
	// URL is step-ca's base URL, e.g. "https://ca.example.org:9000".
	URL string
	// Provisioner is the JWK provisioner's name (the token's iss).
	Provisioner string
	// Key is the provisioner's private key; KeyID its kid (default: the
	// RFC 7638 thumbprint, which is what step uses).
	Key   crypto.Signer
	KeyID string
	// Root pins TLS to step-ca to this root certificate. Alternatively
	// RootFingerprint (hex SHA-256 of the root's DER, as "step ca bootstrap"
	// takes) fetches the root from /root/<fingerprint> once and checks it.
	Root            *x509.Certificate
	RootFingerprint string
	// Lifetime of certificates when the request does not say (default
	// enroll.DefaultLifetime); the provisioner's maxTLSCertDuration must
	// allow it.
	Lifetime time.Duration
	// Timeout bounds each HTTP request (default 30 s); ctx may end it sooner.
	Timeout time.Duration
	// Now is the clock for tokens and checks (default time.Now). step-ca
	// checks token times against its own clock with one minute of leeway.
	Now func() time.Time
}

// Client is a step-ca enroll.Issuer. It is safe for concurrent use.
type Client struct {
	cfg    Config
	base   *url.URL
	signer jose.Signer

	mu   sync.Mutex
	root *x509.Certificate
	http *http.Client
}

var _ enroll.Issuer = (*Client)(nil)

// New checks cfg and returns a Client. It does not contact step-ca.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		return nil, errors.New("stepca: no URL")
	case err != nil:
		return nil, fmt.Errorf("stepca: URL: %w", err)
	case u.Scheme != "https" || u.Host == "":
		return nil, fmt.Errorf("stepca: URL %q: want https://host[:port]", cfg.URL)
	case cfg.Provisioner == "":
		return nil, errors.New("stepca: no provisioner name")
	case cfg.Key == nil:
		return nil, errors.New("stepca: no provisioner key")
	case cfg.Root == nil && cfg.RootFingerprint == "":
		return nil, errors.New("stepca: no root certificate or root fingerprint to pin TLS to")
	case cfg.Lifetime < 0 || cfg.Lifetime > enroll.MaxLifetime:
		return nil, fmt.Errorf("stepca: lifetime %s: want at most %s", cfg.Lifetime, enroll.MaxLifetime)
	}
	if cfg.RootFingerprint != "" {
		fp, err := hex.DecodeString(strings.ReplaceAll(cfg.RootFingerprint, ":", ""))
		if err != nil || len(fp) != sha256.Size {
			return nil, fmt.Errorf("stepca: root fingerprint %q: want 64 hex digits (SHA-256)", cfg.RootFingerprint)
		}
		cfg.RootFingerprint = hex.EncodeToString(fp)
		if cfg.Root != nil && hexSum(cfg.Root.Raw) != cfg.RootFingerprint {
			return nil, errors.New("stepca: the root certificate does not have the root fingerprint")
		}
	}
	if cfg.KeyID == "" {
		if cfg.KeyID, err = KeyID(cfg.Key.Public()); err != nil {
			return nil, err
		}
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = enroll.DefaultLifetime
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s, err := newSigner(cfg.Key, cfg.KeyID)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, base: &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(u.Path, "/")}, signer: s}
	if cfg.Root != nil {
		c.pin(cfg.Root)
	}
	return c, nil
}

// pin makes TLS to step-ca trust root only.
func (c *Client) pin(root *x509.Certificate) {
	pool := x509.NewCertPool()
	pool.AddCert(root)
	c.root = root
	c.http = &http.Client{
		Timeout: c.cfg.Timeout,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			Proxy:               nil,
			MaxIdleConnsPerHost: 4,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// client returns the pinned HTTP client, fetching the root by its
// fingerprint first if only that was configured.
func (c *Client) client(ctx context.Context) (*http.Client, *x509.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.http != nil {
		return c.http, c.root, nil
	}
	root, err := c.fetchRoot(ctx)
	if err != nil {
		return nil, nil, err
	}
	c.pin(root)
	return c.http, c.root, nil
}

// fetchRoot gets /root/<fingerprint>. The TLS connection is not verified
// (there is nothing to verify it with yet); the answer is, by its hash, and
// only the verified root is used afterwards.
func (c *Client) fetchRoot(ctx context.Context) (*x509.Certificate, error) {
	hc := &http.Client{
		Timeout: c.cfg.Timeout,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
			Proxy:           nil,
		},
	}
	defer hc.CloseIdleConnections()
	var body struct {
		CA string `json:"ca"`
	}
	if err := c.do(ctx, hc, http.MethodGet, "/root/"+c.cfg.RootFingerprint, nil, &body); err != nil {
		return nil, err
	}
	certs, err := parsePEMCerts(body.CA)
	if err != nil || len(certs) != 1 {
		return nil, enroll.Errorf(enroll.ErrUnavailable, "/root: not one certificate")
	}
	if hexSum(certs[0].Raw) != c.cfg.RootFingerprint {
		return nil, enroll.Errorf(enroll.ErrUnavailable, "/root returned a certificate with another fingerprint")
	}
	return certs[0], nil
}

// signRequest is the body of POST /1.0/sign.
type signRequest struct {
	CSR      string `json:"csr"`
	OTT      string `json:"ott"`
	NotAfter string `json:"notAfter,omitempty"`
}

// signResponse is the answer of POST /1.0/sign.
type signResponse struct {
	Crt       string   `json:"crt"`
	CA        string   `json:"ca"`
	CertChain []string `json:"certChain"`
}

// Issue sends req.CSR to step-ca after enroll.CheckCSR, with a fresh token
// whose sub is req.Account, and returns the certificate after
// enroll.CheckIssued (it must chain to the pinned root). A self-signed
// certificate instead of a CSR gives enroll.ErrNotSupported.
func (c *Client) Issue(ctx context.Context, req *enroll.IssueRequest) (*enroll.Issued, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	if req.CSR == nil {
		return nil, enroll.Errorf(enroll.ErrNotSupported, "step-ca signs CSRs, not self-signed certificates or public keys to renew")
	}
	if err := enroll.CheckCSR(req.CSR, req.Account); err != nil {
		return nil, err
	}
	lifetime := req.Lifetime
	if lifetime == 0 {
		lifetime = c.cfg.Lifetime
	}
	if lifetime > enroll.MaxLifetime {
		return nil, enroll.Errorf(enroll.ErrBadRequest, "lifetime %s is longer than %s", lifetime, enroll.MaxLifetime)
	}
	hc, root, err := c.client(ctx)
	if err != nil {
		return nil, err
	}
	account := req.Account.String()
	sum := sha256.Sum256(req.CSR.Raw)
	tok, err := c.mintToken(account, c.endpoint("/1.0/sign"), tokenClaims{
		SANs: []string{account},
		Cnf:  &confirmKey{Fingerprint: base64.RawURLEncoding.EncodeToString(sum[:])},
	}, c.cfg.Now())
	if err != nil {
		return nil, err
	}
	body := signRequest{
		CSR:      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: req.CSR.Raw})),
		OTT:      tok,
		NotAfter: lifetime.String(),
	}
	var resp signResponse
	if err := c.do(ctx, hc, http.MethodPost, "/1.0/sign", body, &resp); err != nil {
		return nil, err
	}
	pems := resp.CertChain
	if len(pems) == 0 {
		pems = []string{resp.Crt, resp.CA}
	}
	var chain [][]byte
	for _, p := range pems {
		certs, err := parsePEMCerts(p)
		if err != nil {
			return nil, enroll.Errorf(enroll.ErrBadIssued, "/1.0/sign: %v", err)
		}
		for _, cert := range certs {
			chain = append(chain, cert.Raw)
		}
	}
	return enroll.CheckIssued(chain, req.Account, req.CSR.PublicKey, c.cfg.Now(), []*x509.Certificate{root})
}

// revokeRequest is the body of POST /1.0/revoke.
type revokeRequest struct {
	Serial     string `json:"serial"`
	OTT        string `json:"ott"`
	ReasonCode int    `json:"reasonCode"`
	Reason     string `json:"reason,omitempty"`
	Passive    bool   `json:"passive"`
}

// Revoke revokes a certificate at step-ca (passive revocation: it goes
// into step-ca's database and CRL) with a fresh token whose sub is the
// decimal serial number. A certificate step-ca already revoked is not an
// error.
func (c *Client) Revoke(ctx context.Context, req *enroll.RevokeRequest) error {
	if req == nil {
		return enroll.Errorf(enroll.ErrBadRequest, "no revoke request")
	}
	sn, err := req.SerialNumber()
	if err != nil {
		return err
	}
	hc, root, err := c.client(ctx)
	if err != nil {
		return err
	}
	if req.Cert != nil {
		if err := c.issuedHere(ctx, hc, root, req.Cert); err != nil {
			return err
		}
	}
	serial := sn.String()
	tok, err := c.mintToken(serial, c.endpoint("/1.0/revoke"), tokenClaims{}, c.cfg.Now())
	if err != nil {
		return err
	}
	body := revokeRequest{Serial: serial, OTT: tok, ReasonCode: int(req.Reason), Reason: "revoked by saslcert", Passive: true}
	var resp struct {
		Status string `json:"status"`
	}
	err = c.do(ctx, hc, http.MethodPost, "/1.0/revoke", body, &resp)
	var he *httpError
	if errors.As(err, &he) && strings.Contains(he.Message, "already revoked") {
		return nil
	}
	return err
}

// Roots returns step-ca's roots (GET /1.0/roots, over TLS pinned to the
// configured root).
func (c *Client) Roots(ctx context.Context) ([]*x509.Certificate, error) {
	hc, _, err := c.client(ctx)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Certificates []string `json:"crts"`
	}
	if err := c.do(ctx, hc, http.MethodGet, "/1.0/roots", nil, &resp); err != nil {
		return nil, err
	}
	var roots []*x509.Certificate
	for _, p := range resp.Certificates {
		certs, err := parsePEMCerts(p)
		if err != nil {
			return nil, enroll.Errorf(enroll.ErrUnavailable, "/1.0/roots: %v", err)
		}
		roots = append(roots, certs...)
	}
	return roots, nil
}

// endpoint is the absolute URL of path, as used in a token's aud.
func (c *Client) endpoint(path string) string {
	u := *c.base
	u.Path += path
	return u.String()
}

// maxResponse bounds how much of an answer is read.
const maxResponse = 1 << 20

// httpError is a step-ca error answer.
type httpError struct {
	Status  int
	Message string
}

func (e *httpError) Error() string { return fmt.Sprintf("step-ca: %d %s", e.Status, e.Message) }

// do sends a JSON request (in == nil: no body) and decodes a JSON answer
// with a 2xx status into out (step-ca answers /1.0/sign with 201 and, oddly,
// /1.0/intermediates too). Other statuses wrap enroll.ErrRejected (4xx) or
// enroll.ErrUnavailable (5xx, network), with step-ca's message.
func (c *Client) do(ctx context.Context, hc *http.Client, method, path string, in any, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("stepca: %w", err)
		}
		body = bytes.NewReader(b)
	}
	r, err := http.NewRequestWithContext(ctx, method, c.endpoint(path), body)
	if err != nil {
		return fmt.Errorf("stepca: %w", err)
	}
	if in != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Accept", "application/json")
	resp, err := hc.Do(r)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return enroll.Errorf(enroll.ErrUnavailable, "%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return enroll.Errorf(enroll.ErrUnavailable, "%s %s: %v", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		he := &httpError{Status: resp.StatusCode}
		var msg struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &msg) == nil && msg.Message != "" {
			he.Message = msg.Message
		} else {
			he.Message = strings.TrimSpace(string(data[:min(len(data), 200)]))
		}
		kind := enroll.ErrRejected
		if resp.StatusCode >= 500 {
			kind = enroll.ErrUnavailable
		}
		return enroll.Errorf(kind, "%s %s: %w", method, path, he)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return enroll.Errorf(enroll.ErrUnavailable, "%s %s: bad answer: %v", method, path, err)
	}
	return nil
}

// parsePEMCerts parses every CERTIFICATE block in s (at least one).
func parsePEMCerts(s string) ([]*x509.Certificate, error) {
	return enroll.ParseCertsPEM([]byte(s))
}

// issuedHere checks that cert chains to root, directly or through one of
// step-ca's intermediates (GET /1.0/intermediates). Validity periods are
// checked at cert's notBefore: revoking an expired certificate is harmless.
func (c *Client) issuedHere(ctx context.Context, hc *http.Client, root, cert *x509.Certificate) error {
	opts := x509.VerifyOptions{
		Roots:         x509.NewCertPool(),
		Intermediates: x509.NewCertPool(),
		CurrentTime:   cert.NotBefore.Add(time.Second),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	opts.Roots.AddCert(root)
	if !bytes.Equal(cert.RawIssuer, root.RawSubject) {
		var resp struct {
			Certificates []string `json:"crts"`
		}
		if err := c.do(ctx, hc, http.MethodGet, "/1.0/intermediates", nil, &resp); err != nil {
			return err
		}
		for _, p := range resp.Certificates {
			certs, err := parsePEMCerts(p)
			if err != nil {
				return enroll.Errorf(enroll.ErrUnavailable, "/1.0/intermediates: %v", err)
			}
			for _, ic := range certs {
				opts.Intermediates.AddCert(ic)
			}
		}
	}
	leaf := *cert
	leaf.UnhandledCriticalExtensions = nil // only the signatures matter here
	if _, err := leaf.Verify(opts); err != nil {
		return enroll.Errorf(enroll.ErrBadRequest, "the certificate (serial %s, issuer %s) was not issued by this step-ca: %v", cert.SerialNumber, cert.Issuer, err)
	}
	return nil
}

// hexSum is the lower-case hex SHA-256 of b.
func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
