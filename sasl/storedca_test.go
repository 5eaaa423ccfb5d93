package sasl_test

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// TestStoredIssuerRevoked: Authorizer.IssuerRevoked is asked about every
// stored certificate that passed the other checks; its CA's revocation
// refuses it, an unknown state fails closed, and a grant that depends on a
// CA says so (FromCA).
func TestStoredIssuerRevoked(t *testing.T) {
	f := newTrustFixture(t)
	cert := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	errCA := errors.New("CRL unreachable")
	tests := []struct {
		name     string
		answer   func() (bool, bool, error)
		cond     sasl.Condition // "" for a grant
		fromCA   bool
		noAnswer bool // IssuerRevoked unset
	}{
		{"ok/not-from-a-followed-ca", func() (bool, bool, error) { return false, false, nil }, "", false, false},
		{"ok/not-revoked", func() (bool, bool, error) { return true, false, nil }, "", true, false},
		{"ok/no-hook", nil, "", false, true},
		{"error/revoked-by-its-ca", func() (bool, bool, error) { return true, true, nil }, sasl.NotAuthorized, false, false},
		{"error/revocation-unknown", func() (bool, bool, error) { return true, false, errCA }, sasl.TemporaryAuthFailure, false, false},
		{"error/revocation-unknown-even-if-not-applying", func() (bool, bool, error) { return false, false, errCA }, sasl.TemporaryAuthFailure, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemFinder()
			store.add(cert.DER, "alice@example.org", storage.StateActive, "")
			a := &sasl.Authorizer{Store: store, Now: func() time.Time { return certtest.Now }}
			var asked *x509.Certificate
			if !tc.noAnswer {
				a.IssuerRevoked = func(_ context.Context, domain string, c *x509.Certificate) (bool, bool, error) {
					if domain != "example.org" {
						t.Errorf("asked for domain %q", domain)
					}
					asked = c
					return tc.answer()
				}
			}
			g, err := a.Authorize(t.Context(), sasl.Request{DER: cert.DER, Domain: "example.org"})
			if tc.cond == "" {
				if err != nil {
					t.Fatalf("Authorize: %v", err)
				}
				if g.FromCA != tc.fromCA || !g.Stored {
					t.Fatalf("grant FromCA %v Stored %v; want FromCA %v, Stored", g.FromCA, g.Stored, tc.fromCA)
				}
			} else {
				var fl *sasl.Failure
				if !errors.As(err, &fl) || fl.Condition != tc.cond {
					t.Fatalf("Authorize = %v, %v; want <%s/>", g, err, tc.cond)
				}
			}
			if !tc.noAnswer && (asked == nil || !asked.Equal(cert.Cert)) {
				t.Fatal("IssuerRevoked was not asked about the stored certificate")
			}
		})
	}
}
