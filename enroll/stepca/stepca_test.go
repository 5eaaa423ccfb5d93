package stepca_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/stepca"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
)

var alice = jid.MustParse("alice@example.org")

func newClient(t *testing.T, s *catest.StepCA, mod func(*stepca.Config)) *stepca.Client {
	t.Helper()
	cfg := stepca.Config{URL: s.URL, Provisioner: s.Provisioner, Key: s.Key, Root: s.Root}
	if mod != nil {
		mod(&cfg)
	}
	c, err := stepca.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fetchCRL gets and verifies step-ca's CRL over plain HTTP on 127.0.0.1.
func fetchCRL(t *testing.T, s *catest.StepCA) *x509.RevocationList {
	t.Helper()
	resp, err := http.Get(s.CRLURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", s.CRLURL, resp.Status, err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(s.Intermediate); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	return crl
}

func TestEnrollStepCAIssueAndRevoke(t *testing.T) {
	s := catest.StartStepCA(t, catest.StepCAOptions{})
	c := newClient(t, s, nil)
	key, err := certtest.NewKey(certtest.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		csr      catest.CSROptions
		lifetime time.Duration
		want     time.Duration
	}{
		{"ok/cn-and-xmppaddr-default-lifetime", catest.CSROptions{Key: key, CommonName: "alice@example.org", XMPPAddr: "alice@example.org"}, 0, enroll.DefaultLifetime},
		{"ok/empty-csr-24h", catest.CSROptions{Key: key}, 24 * time.Hour, 24 * time.Hour},
		{"ok/cn-only-1h", catest.CSROptions{Key: key, CommonName: "alice@example.org"}, time.Hour, time.Hour},
	}
	var issued []*enroll.Issued
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			is, err := c.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, tc.csr), Lifetime: tc.lifetime})
			if err != nil {
				t.Fatal(err)
			}
			cert := is.Cert
			sans, err := sasl.CertSANs(cert)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("issued by step-ca: serial %s subject %q xmppAddr=%v EKU=%v notBefore=%s notAfter=%s CRL=%v",
				cert.SerialNumber, cert.Subject, sans.XMPPAddrs, cert.ExtKeyUsage, cert.NotBefore.UTC().Format(time.RFC3339),
				cert.NotAfter.UTC().Format(time.RFC3339), cert.CRLDistributionPoints)
			if len(sans.XMPPAddrs) != 1 || !sans.XMPPAddrs[0].Equal(alice) || len(sans.DNSNames) != 0 || len(cert.EmailAddresses) != 0 {
				t.Errorf("names: xmppAddr %v DNS %v email %v, want only xmppAddr %s", sans.XMPPAddrs, sans.DNSNames, cert.EmailAddresses, alice)
			}
			if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
				t.Errorf("EKU %v, want clientAuth", cert.ExtKeyUsage)
			}
			if got := cert.NotAfter.Sub(before); got < tc.want-time.Minute || got > tc.want+time.Minute {
				t.Errorf("notAfter - now = %s, want %s", got, tc.want)
			}
			if !slices.Equal(cert.CRLDistributionPoints, []string{s.CRLURL}) {
				t.Errorf("CRL DP %v, want %s", cert.CRLDistributionPoints, s.CRLURL)
			}
			if len(is.Chain) != 2 || !slices.Equal(is.Chain[1], s.Intermediate.Raw) {
				t.Errorf("chain has %d certificates, want leaf + intermediate", len(is.Chain))
			}
			rec := is.Record("laptop", false)
			if rec.Source != "enrolled" || rec.Account != alice.String() || rec.Resource != "" {
				t.Errorf("record = %+v", rec)
			}
			issued = append(issued, is)
		})
	}
	if len(issued) == 0 {
		t.Fatal("nothing issued")
	}

	victim := issued[0].Cert
	if err := c.Revoke(t.Context(), &enroll.RevokeRequest{Cert: victim, Reason: enroll.ReasonKeyCompromise}); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if err := c.Revoke(t.Context(), &enroll.RevokeRequest{Serial: victim.SerialNumber, Reason: enroll.ReasonKeyCompromise}); err != nil {
		t.Errorf("revoke twice: %v", err)
	}
	crl := fetchCRL(t, s)
	var listed []string
	found := false
	for _, e := range crl.RevokedCertificateEntries {
		listed = append(listed, fmt.Sprintf("%s (reason %d)", e.SerialNumber, e.ReasonCode))
		if e.SerialNumber.Cmp(victim.SerialNumber) == 0 {
			found = true
		}
	}
	t.Logf("step-ca CRL number %s lists %v", crl.Number, listed)
	if !found {
		t.Errorf("CRL does not list %s", victim.SerialNumber)
	}

	// The same CRL through the client (TLS pinned to the root), as the
	// Service reads it for logins without an upload.
	der, err := c.CRL(t.Context())
	if err != nil {
		t.Fatalf("CRL: %v", err)
	}
	viaClient, err := x509.ParseRevocationList(der)
	if err != nil || viaClient.CheckSignatureFrom(s.Intermediate) != nil {
		t.Fatalf("CRL from the client: %v", err)
	}
	checker := &enroll.CRLChecker{Name: "step-ca", Fetch: c.CRL}
	if revoked, ok, err := checker.CheckRevocation(t.Context(), victim, s.Intermediate); !revoked || !ok || err != nil {
		t.Errorf("CRLChecker on step-ca: revoked %v ok %v err %v", revoked, ok, err)
	}
	if revoked, ok, err := checker.CheckRevocation(t.Context(), issued[len(issued)-1].Cert, s.Intermediate); revoked || !ok || err != nil {
		t.Errorf("CRLChecker on step-ca, a good certificate: revoked %v ok %v err %v", revoked, ok, err)
	}

	roots, err := c.Roots(t.Context())
	if err != nil || len(roots) != 1 || !roots[0].Equal(s.Root) {
		t.Errorf("Roots = %v, %v; want the step-ca root", roots, err)
	}
}

func TestEnrollStepCARootFingerprint(t *testing.T) {
	s := catest.StartStepCA(t, catest.StepCAOptions{})
	c := newClient(t, s, func(cfg *stepca.Config) { cfg.Root, cfg.RootFingerprint = nil, s.RootFingerprint() })
	if _, err := c.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{})}); err != nil {
		t.Fatalf("issue after bootstrap by fingerprint: %v", err)
	}
	// A wrong fingerprint is never trusted.
	wrong := newClient(t, s, func(cfg *stepca.Config) {
		cfg.Root, cfg.RootFingerprint = nil, "00"+s.RootFingerprint()[2:]
	})
	_, err := wrong.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{})})
	if err == nil {
		t.Fatal("issued with a wrong root fingerprint")
	}
	t.Logf("wrong fingerprint: %v", err)
	// Pinned to another root: TLS fails.
	other := newClient(t, s, func(cfg *stepca.Config) { cfg.Root = certtest.NewCA(t, "stranger").Cert })
	if _, err := other.Roots(t.Context()); !errors.Is(err, enroll.ErrUnavailable) {
		t.Fatalf("pinned to another root: err = %v, want ErrUnavailable (TLS failure)", err)
	}
}

func TestEnrollStepCAProvisionerErrors(t *testing.T) {
	s := catest.StartStepCA(t, catest.StepCAOptions{})
	csr := func() *enroll.IssueRequest {
		return &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{})}
	}
	t.Run("error/unknown-provisioner", func(t *testing.T) {
		c := newClient(t, s, func(cfg *stepca.Config) { cfg.Provisioner = "nobody" })
		_, err := c.Issue(t.Context(), csr())
		if !errors.Is(err, enroll.ErrRejected) {
			t.Fatalf("err = %v, want ErrRejected", err)
		}
	})
	t.Run("error/wrong-key", func(t *testing.T) {
		k, _ := certtest.NewKey(certtest.ECDSAP256)
		c := newClient(t, s, func(cfg *stepca.Config) { cfg.Key, cfg.KeyID = k, s.KeyID })
		_, err := c.Issue(t.Context(), csr())
		if !errors.Is(err, enroll.ErrRejected) {
			t.Fatalf("err = %v, want ErrRejected", err)
		}
	})
	t.Run("error/lifetime-above-provisioner-max", func(t *testing.T) {
		c := newClient(t, s, nil)
		req := csr()
		req.Lifetime = 80 * 24 * time.Hour // provisioner max is 720h
		_, err := c.Issue(t.Context(), req)
		if !errors.Is(err, enroll.ErrRejected) {
			t.Fatalf("err = %v, want ErrRejected", err)
		}
	})
	t.Run("error/self-signed-not-supported", func(t *testing.T) {
		c := newClient(t, s, nil)
		ss := certtest.New(t, certtest.Options{CommonName: "alice@example.org", XMPPAddrs: []string{"alice@example.org"}})
		_, err := c.Issue(t.Context(), &enroll.IssueRequest{Account: alice, SelfSigned: ss.DER})
		if !errors.Is(err, enroll.ErrNotSupported) {
			t.Fatalf("err = %v, want ErrNotSupported", err)
		}
	})
}

// A template that ignores the token and names someone else must not produce
// a certificate saslcert accepts.
func TestEnrollStepCAMisconfiguredTemplate(t *testing.T) {
	for _, tc := range []struct{ name, tmpl string }{
		{"error/other-jid", `{"subject": {"commonName": {{ toJson .Token.sub }}},
  "sans": [{"type": "1.3.6.1.5.5.7.8.5", "value": "utf8:mallory@example.org"}],
  "extKeyUsage": ["clientAuth"]}`},
		{"error/extra-dns-name", `{"subject": {"commonName": {{ toJson .Token.sub }}},
  "sans": [{"type": "1.3.6.1.5.5.7.8.5", "value": {{ printf "utf8:%s" .Token.sub | toJson }}}, {"type": "dns", "value": "example.org"}],
  "extKeyUsage": ["clientAuth"]}`},
		{"error/no-client-auth", `{"subject": {"commonName": {{ toJson .Token.sub }}},
  "sans": [{"type": "1.3.6.1.5.5.7.8.5", "value": {{ printf "utf8:%s" .Token.sub | toJson }}}],
  "extKeyUsage": ["serverAuth"]}`},
		{"error/no-xmppaddr", `{"subject": {"commonName": {{ toJson .Token.sub }}}, "extKeyUsage": ["clientAuth"]}`},
		// step's default leaf template: the token's sans ([JID]) become an
		// email SAN, there is no xmppAddr.
		{"error/step-default-template", `{"subject": {{ toJson .Subject }}, "sans": {{ toJson .SANs }},
  "keyUsage": ["digitalSignature"], "extKeyUsage": ["serverAuth", "clientAuth"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := catest.StartStepCA(t, catest.StepCAOptions{Template: tc.tmpl})
			c := newClient(t, s, nil)
			_, err := c.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{})})
			if !errors.Is(err, enroll.ErrBadIssued) {
				t.Fatalf("err = %v, want ErrBadIssued", err)
			}
			t.Logf("%v", err)
		})
	}
}
