package localca_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
)

// serveCRL serves ca's CRL on a loopback listener and returns its URL.
func serveCRL(t *testing.T, ca *localca.CA) string {
	t.Helper()
	ln, err := localca.ListenLoopback(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/crl", ca.CRLHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/crl"
}

// getCRL fetches, parses and verifies the CRL at url.
func getCRL(t *testing.T, url string, ca *localca.CA) *x509.RevocationList {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET %s: %s, Content-Type %q", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ca.Cert()); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	return crl
}

func listing(crl *x509.RevocationList) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CRL #%s issuer %q thisUpdate %s nextUpdate %s:", crl.Number, crl.Issuer,
		crl.ThisUpdate.UTC().Format(time.RFC3339), crl.NextUpdate.UTC().Format(time.RFC3339))
	for _, e := range crl.RevokedCertificateEntries {
		fmt.Fprintf(&b, " [serial %x revoked %s reason %d]", e.SerialNumber, e.RevocationTime.UTC().Format(time.RFC3339), e.ReasonCode)
	}
	return b.String()
}

func listed(crl *x509.RevocationList, sn *big.Int) bool {
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(sn) == 0 {
			return true
		}
	}
	return false
}

func TestEnrollEmbeddedRevokeAndCRL(t *testing.T) {
	ca, clk := newCA(t, localca.Options{})
	url := serveCRL(t, ca)
	issue := func() *x509.Certificate {
		is, err := ca.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{})})
		if err != nil {
			t.Fatal(err)
		}
		return is.Cert
	}
	a, b, c := issue(), issue(), issue()

	crl := getCRL(t, url, ca)
	t.Log(listing(crl))
	if crl.Number.Int64() != 1 || len(crl.RevokedCertificateEntries) != 0 || !crl.NextUpdate.Equal(crl.ThisUpdate.Add(localca.DefaultCRLValidity)) {
		t.Fatalf("first CRL: %s", listing(crl))
	}

	if err := ca.Revoke(t.Context(), &enroll.RevokeRequest{Cert: a, Reason: enroll.ReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	crl = getCRL(t, url, ca)
	t.Log("after revoking a: " + listing(crl))
	if crl.Number.Int64() != 2 || !listed(crl, a.SerialNumber) || listed(crl, b.SerialNumber) || crl.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Fatalf("after revoking a: %s", listing(crl))
	}
	// Unchanged: the same CRL is served again.
	if again := getCRL(t, url, ca); again.Number.Cmp(crl.Number) != 0 {
		t.Fatalf("CRL renumbered without a change: %s", listing(again))
	}
	// Twice: no error, no change.
	if err := ca.Revoke(t.Context(), &enroll.RevokeRequest{Serial: a.SerialNumber, Reason: enroll.ReasonSuperseded}); err != nil {
		t.Fatal(err)
	}
	if again := getCRL(t, url, ca); again.Number.Cmp(crl.Number) != 0 || again.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Fatalf("revoking twice changed the CRL: %s", listing(again))
	}

	// By serial number only (the CLI path), from another instance of the CA
	// on the same directory (as a CLI process would be).
	clk.Add(time.Hour)
	other, err := localca.Load(ca.Dir(), localca.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Revoke(t.Context(), &enroll.RevokeRequest{Serial: b.SerialNumber}); err != nil {
		t.Fatal(err)
	}
	crl = getCRL(t, url, ca)
	t.Log("after revoking b by serial: " + listing(crl))
	if crl.Number.Int64() != 3 || !listed(crl, a.SerialNumber) || !listed(crl, b.SerialNumber) || listed(crl, c.SerialNumber) {
		t.Fatalf("after revoking b: %s", listing(crl))
	}

	// Half the validity later a fresh CRL is made.
	clk.Add(localca.DefaultCRLValidity/2 + time.Minute)
	if next := getCRL(t, url, ca); next.Number.Int64() != 4 || !next.ThisUpdate.After(crl.ThisUpdate) || len(next.RevokedCertificateEntries) != 2 {
		t.Fatalf("refresh: %s", listing(next))
	}

	// After a expires (7 days) it leaves the CRL; b, revoked by serial
	// only, stays until the longest lifetime has passed.
	clk.Add(enroll.DefaultLifetime)
	crl = getCRL(t, url, ca)
	if listed(crl, a.SerialNumber) || !listed(crl, b.SerialNumber) {
		t.Fatalf("after a expired: %s", listing(crl))
	}
	revs, err := ca.Revocations(t.Context())
	if err != nil || len(revs) != 1 || revs[0].Serial.Cmp(b.SerialNumber) != 0 {
		t.Fatalf("Revocations = %+v, %v", revs, err)
	}

	// The CRL command path (CA.CRL) and the file agree.
	der, err := ca.CRL(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if parsed, err := x509.ParseRevocationList(der); err != nil || parsed.Number.Cmp(crl.Number) != 0 {
		t.Fatalf("CRL() = #%v, %v; want #%s", parsed.Number, err, crl.Number)
	}
}

func TestEnrollEmbeddedRevokeChecksIssuer(t *testing.T) {
	ca, _ := newCA(t, localca.Options{})
	stranger := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, Parent: certtest.NewCA(t, "other CA")})
	if err := ca.Revoke(t.Context(), &enroll.RevokeRequest{Cert: stranger.Cert}); !errors.Is(err, enroll.ErrBadRequest) {
		t.Fatalf("revoking another CA's certificate: err = %v, want ErrBadRequest", err)
	}
	if err := ca.Revoke(t.Context(), &enroll.RevokeRequest{}); !errors.Is(err, enroll.ErrBadRequest) {
		t.Fatalf("revoking nothing: err = %v, want ErrBadRequest", err)
	}
}

// Two CA instances on one directory (a server and a CLI) revoking at the same
// time lose nothing.
func TestEnrollEmbeddedConcurrentRevoke(t *testing.T) {
	ca, _ := newCA(t, localca.Options{})
	other, err := localca.Load(ca.Dir(), localca.Options{Now: func() time.Time { return certtest.Now }})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ca
			if i%2 == 1 {
				c = other
			}
			if err := c.Revoke(t.Context(), &enroll.RevokeRequest{Serial: big.NewInt(int64(1000 + i))}); err != nil {
				t.Error(err)
			}
			if _, err := c.CRL(t.Context()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	der, err := ca.CRL(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil || len(crl.RevokedCertificateEntries) != n {
		t.Fatalf("CRL has %d entries, %v; want %d", len(crl.RevokedCertificateEntries), err, n)
	}
	if m, _ := filepath.Glob(filepath.Join(ca.Dir(), ".*tmp*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestCACRLHandlerMethods(t *testing.T) {
	ca, _ := newCA(t, localca.Options{})
	url := serveCRL(t, ca)
	resp, err := http.Post(url, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %s", resp.Status)
	}
	resp, err = http.Head(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
		t.Fatalf("HEAD: %s, length %d", resp.Status, resp.ContentLength)
	}
}

func TestCAListenLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "example.org:80", "nonsense"} {
		if ln, err := localca.ListenLoopback(t.Context(), addr); err == nil {
			ln.Close()
			t.Errorf("ListenLoopback(%q) accepted", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := localca.ListenLoopback(t.Context(), addr)
		if err != nil {
			t.Errorf("ListenLoopback(%q): %v", addr, err)
			continue
		}
		ln.Close()
	}
}

// OpenSSL, as XMPP servers use it, rejects a revoked certificate with our
// CRL and accepts one that is not revoked.
func TestEnrollEmbeddedCRLWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	ca, clk := newCA(t, localca.Options{})
	issue := func() *x509.Certificate {
		is, err := ca.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{})})
		if err != nil {
			t.Fatal(err)
		}
		return is.Cert
	}
	revoked, good := issue(), issue()
	if err := ca.Revoke(t.Context(), &enroll.RevokeRequest{Cert: revoked, Reason: enroll.ReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	der, err := ca.CRL(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root := write("root.pem", "CERTIFICATE", ca.Root().Raw)
	inter := write("ca.pem", "CERTIFICATE", ca.Cert().Raw)
	crl := write("crl.pem", "X509 CRL", der)
	at := strconv.FormatInt(clk.Now().Unix(), 10)
	verify := func(c *x509.Certificate) (string, error) {
		leaf := write("leaf.pem", "CERTIFICATE", c.Raw)
		out, err := exec.Command(openssl, "verify", "-attime", at, "-crl_check", "-purpose", "sslclient",
			"-CAfile", root, "-untrusted", inter, "-CRLfile", crl, leaf).CombinedOutput()
		return string(out), err
	}
	if out, err := verify(good); err != nil {
		t.Errorf("openssl verify (not revoked): %v\n%s", err, out)
	}
	out, err := verify(revoked)
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify (revoked): %v\n%s", err, out)
	}
	t.Logf("openssl on the revoked certificate: %s", strings.TrimSpace(out))
}
