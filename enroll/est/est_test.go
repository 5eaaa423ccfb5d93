package est

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
)

var alice = jid.MustParse("alice@example.org")

func TestEnrollESTServer(t *testing.T) {
	e := catest.StartEST(t)
	// The mock CA adds serverAuth to every certificate.
	c, err := New(Config{URL: e.URL, Root: e.Root, Username: "saslcert", Password: "secret", AllowServerAuth: true})
	if err != nil {
		t.Fatal(err)
	}

	cas, err := c.CACerts(t.Context())
	if err != nil {
		t.Fatalf("cacerts: %v", err)
	}
	if len(cas) != 2 || !cas[0].Equal(e.CA) || !cas[1].Equal(e.Root) {
		t.Fatalf("cacerts = %d certificates, want the issuing CA and the root", len(cas))
	}
	roots, err := c.Roots(t.Context())
	if err != nil || len(roots) != 1 || !roots[0].Equal(e.Root) {
		t.Fatalf("Roots = %v, %v; want the root only", roots, err)
	}

	key, err := certtest.NewKey(certtest.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	csr := catest.NewCSR(t, catest.CSROptions{Key: key, CommonName: "alice@example.org", XMPPAddr: "alice@example.org"})
	is, err := c.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: csr})
	if err != nil {
		t.Fatalf("simpleenroll: %v", err)
	}
	check := func(op string, is *enroll.Issued) {
		t.Helper()
		sans, _ := sasl.CertSANs(is.Cert)
		t.Logf("%s: serial %x subject %q xmppAddr=%v EKU=%v valid %s .. %s, chain of %d",
			op, is.Cert.SerialNumber, is.Cert.Subject, sans.XMPPAddrs, is.Cert.ExtKeyUsage,
			is.Cert.NotBefore.UTC().Format(time.RFC3339), is.Cert.NotAfter.UTC().Format(time.RFC3339), len(is.Chain))
		if len(sans.XMPPAddrs) != 1 || !sans.XMPPAddrs[0].Equal(alice) {
			t.Errorf("%s: xmppAddr %v, want %s", op, sans.XMPPAddrs, alice)
		}
		if !slices.Contains(is.Cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
			t.Errorf("%s: EKU %v lacks clientAuth", op, is.Cert.ExtKeyUsage)
		}
		if err := is.Cert.CheckSignatureFrom(e.CA); err != nil {
			t.Errorf("%s: not signed by the EST CA: %v", op, err)
		}
	}
	check("simpleenroll", is)

	// simplereenroll authenticates with the certificate being renewed.
	current := tls.Certificate{Certificate: is.Chain, PrivateKey: key}
	key2, err := certtest.NewKey(certtest.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	csr2 := catest.NewCSR(t, catest.CSROptions{Key: key2, CommonName: "alice@example.org", XMPPAddr: "alice@example.org"})
	re, err := c.Reenroll(t.Context(), &enroll.IssueRequest{Account: alice, CSR: csr2}, current)
	if err != nil {
		t.Fatalf("simplereenroll: %v", err)
	}
	check("simplereenroll", re)
	if re.Cert.SerialNumber.Cmp(is.Cert.SerialNumber) == 0 {
		t.Error("reenroll returned the same certificate")
	}

	// Without a client certificate the server refuses simplereenroll
	// (Reenroll itself refuses to try).
	if _, err := c.Reenroll(t.Context(), &enroll.IssueRequest{Account: alice, CSR: csr2}, tls.Certificate{}); !errors.Is(err, enroll.ErrBadRequest) {
		t.Errorf("Reenroll without a certificate: err = %v, want ErrBadRequest", err)
	}
	if _, err := c.enroll(t.Context(), &enroll.IssueRequest{Account: alice, CSR: csr2}, "/simplereenroll", c.http); !errors.Is(err, enroll.ErrRejected) {
		t.Errorf("simplereenroll without a client certificate: err = %v, want ErrRejected", err)
	}

	// The mock CA issues for 90 days; MaxLifetime refuses that.
	// Without AllowServerAuth its certificates are refused: nothing beyond
	// clientAuth unless the administrator says so.
	strict, _ := New(Config{URL: e.URL, Root: e.Root})
	if _, err := strict.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: csr}); !errors.Is(err, enroll.ErrBadIssued) {
		t.Errorf("serverAuth without AllowServerAuth: err = %v, want ErrBadIssued", err)
	}

	short, _ := New(Config{URL: e.URL, Root: e.Root, MaxLifetime: 7 * 24 * time.Hour, AllowServerAuth: true})
	if _, err := short.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: csr}); !errors.Is(err, enroll.ErrBadIssued) {
		t.Errorf("MaxLifetime: err = %v, want ErrBadIssued", err)
	}

	if err := c.Revoke(t.Context(), &enroll.RevokeRequest{Cert: is.Cert}); !errors.Is(err, enroll.ErrNotSupported) {
		t.Errorf("Revoke: err = %v, want ErrNotSupported", err)
	}

	// Pinned to another trust anchor, TLS fails.
	other, _ := New(Config{URL: e.URL, Root: certtest.NewCA(t, "stranger").Cert})
	if _, err := other.CACerts(t.Context()); !errors.Is(err, enroll.ErrUnavailable) {
		t.Errorf("wrong trust anchor: err = %v, want ErrUnavailable", err)
	}
}

// fakeEST answers simpleenroll with a certificate for the CSR's key signed by
// ca (names taken from the CSR, as the mock CA does), and records requests.
type fakeEST struct {
	ca       *certtest.Cert
	requests atomic.Int32
	status   int
}

func (f *fakeEST) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	if f.status != 0 {
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(f.status)
		io.WriteString(w, "go away")
		return
	}
	switch r.URL.Path {
	case "/.well-known/est/cacerts":
		w.Header().Set("Content-Type", "application/pkcs7-mime")
		io.WriteString(w, base64.StdEncoding.EncodeToString(certsOnly([][]byte{f.ca.DER}, nil)))
	case "/.well-known/est/simpleenroll":
		body, _ := io.ReadAll(r.Body)
		der, err := decodeBase64(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil || r.Header.Get("Content-Type") != "application/pkcs10" {
			http.Error(w, "bad request", 400)
			return
		}
		var san []byte
		for _, ext := range csr.Extensions {
			if ext.Id.Equal(sasl.OIDSubjectAltName) {
				san = ext.Value
			}
		}
		cert, err := certtest.Make(certtest.Options{CommonName: csr.Subject.CommonName, RawSAN: san, Parent: f.ca,
			Key: &pubOnly{csr.PublicKey}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/pkcs7-mime; smime-type=certs-only")
		enc := base64.StdEncoding.EncodeToString(certsOnly([][]byte{cert.DER}, nil))
		// Line breaks, as many servers send them.
		for len(enc) > 64 {
			io.WriteString(w, enc[:64]+"\r\n")
			enc = enc[64:]
		}
		io.WriteString(w, enc)
	default:
		http.NotFound(w, r)
	}
}

// pubOnly is a crypto.Signer that only knows a public key: certtest.Make
// takes the subject key from it and signs with the parent's key.
type pubOnly struct{ pub crypto.PublicKey }

func (p *pubOnly) Public() crypto.PublicKey { return p.pub }
func (p *pubOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("pubOnly cannot sign")
}

func startFake(t *testing.T, status int, cfg Config) (*Client, *fakeEST) {
	t.Helper()
	f := &fakeEST{ca: certtest.NewCA(t, "fake EST CA"), status: status}
	ts := httptest.NewTLSServer(f)
	t.Cleanup(ts.Close)
	cfg.URL, cfg.Root = ts.URL, ts.Certificate()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, f
}

func TestEnrollESTChain(t *testing.T) {
	c, f := startFake(t, 0, Config{})
	is, err := c.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{XMPPAddr: "alice@example.org"})})
	if err != nil {
		t.Fatal(err)
	}
	// The fake CA is a root: it is a trust anchor, not part of the chain.
	if len(is.Chain) != 1 || is.Cert.CheckSignatureFrom(f.ca.Cert) != nil {
		t.Errorf("chain has %d certificates, want the leaf signed by the CA", len(is.Chain))
	}
	if is.Record("work", false).Source != "enrolled" {
		t.Error("record source is not enrolled")
	}
}

func TestEnrollESTSendsBasicAuth(t *testing.T) {
	var auth atomic.Value
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		auth.Store(strings.Join([]string{r.URL.Path, u, p, map[bool]string{true: "basic"}[ok]}, " "))
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer ts.Close()
	c, err := New(Config{URL: ts.URL, Root: ts.Certificate(), Username: "ra", Password: "s3cret", Label: "xmpp"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{XMPPAddr: "alice@example.org"})})
	if !errors.Is(err, enroll.ErrRejected) {
		t.Fatalf("err = %v, want ErrRejected", err)
	}
	if got := auth.Load(); got != "/.well-known/est/xmpp/simpleenroll ra s3cret basic" {
		t.Fatalf("request: %q", got)
	}
}

func TestEnrollESTRefusesBeforeSending(t *testing.T) {
	c, f := startFake(t, 0, Config{})
	upn := certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice@example.org"),
		certtest.UTF8OtherName(certtest.OIDMicrosoftUPN, "administrator@example.org")}, nil)
	tests := []struct {
		name string
		csr  catest.CSROptions
		want error
	}{
		{"error/other-jid", catest.CSROptions{XMPPAddr: "bob@example.org"}, enroll.ErrBadRequest},
		{"error/dns-name", catest.CSROptions{RawSAN: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice@example.org")}, []string{"xmpp.example.org"})}, enroll.ErrBadRequest},
		{"error/upn-next-to-xmppaddr", catest.CSROptions{RawSAN: upn}, enroll.ErrBadRequest},
		{"error/uppercase-spelling", catest.CSROptions{RawSAN: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("Alice@example.org")}, nil)}, enroll.ErrBadRequest},
		{"error/no-san", catest.CSROptions{CommonName: "alice@example.org"}, enroll.ErrBadRequest},
		{"error/organisation", catest.CSROptions{XMPPAddr: "alice@example.org", CommonName: "bob@example.org"}, enroll.ErrBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, tc.csr)})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Logf("%v", err)
		})
	}
	ss := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	if _, err := c.Issue(t.Context(), &enroll.IssueRequest{Account: alice, SelfSigned: ss.DER}); !errors.Is(err, enroll.ErrNotSupported) {
		t.Errorf("self-signed: err = %v, want ErrNotSupported", err)
	}
	if n := f.requests.Load(); n != 0 {
		t.Fatalf("%d requests reached the EST server; refused requests must not be sent", n)
	}
}

func TestEnrollESTStatuses(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   error
	}{
		{http.StatusAccepted, enroll.ErrPending},
		{http.StatusForbidden, enroll.ErrRejected},
		{http.StatusServiceUnavailable, enroll.ErrUnavailable},
	} {
		c, _ := startFake(t, tc.status, Config{})
		_, err := c.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{XMPPAddr: "alice@example.org"})})
		if !errors.Is(err, tc.want) {
			t.Errorf("status %d: err = %v, want %v", tc.status, err, tc.want)
		}
	}
}

func TestEnrollESTNewErrors(t *testing.T) {
	root := certtest.NewCA(t, "r").Cert
	for _, cfg := range []Config{
		{Root: root},
		{URL: "http://est", Root: root},
		{URL: "https://est"},
		{URL: "https://est", Root: root, Label: "a/b"},
		{URL: "https://est", Root: root, Password: "x"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
