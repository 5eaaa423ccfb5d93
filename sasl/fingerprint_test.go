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

// A request that names the certificate by fingerprint is decided exactly
// like one that presents it, for every stored situation; an unknown
// fingerprint is refused, or ErrCertificateNeeded when trusted CAs may
// still accept the certificate.
func TestAuthorizeByFingerprint(t *testing.T) {
	f := newAuthzFixture(t)
	a := f.authorizer()
	for _, tc := range []struct {
		name    string
		der     []byte
		authzid string
	}{
		{"alice", f.alice, ""},
		{"alice with authzid", f.alice, "alice@example.org"},
		{"forced resource", f.tablet, ""},
		{"no-cert-management", f.nocm, ""},
		{"several JIDs", f.multi, ""},
		{"several JIDs with authzid", f.multi, "alice@example.org"},
		{"not naming the owner", f.notAlice, ""},
		{"disabled", f.disabled, ""},
		{"revoked", f.revoked, ""},
		{"expired", f.expired, ""},
		{"expired within the skew", f.barely, ""},
		{"not yet valid", f.notYet, ""},
		{"other domain", f.bob, ""},
		{"garbage stored", f.garbage, ""},
		{"unknown", f.unknown, ""},
		{"wrong authzid", f.alice, "bob@example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			byDER, errDER := a.Authorize(t.Context(), sasl.Request{DER: tc.der, Authzid: tc.authzid, Domain: "example.org"})
			byFP, errFP := a.Authorize(t.Context(), sasl.Request{Fingerprint: storage.FingerprintOf(tc.der), Authzid: tc.authzid, Domain: "example.org"})
			var fd, ff *sasl.Failure
			switch {
			case errDER == nil && errFP == nil:
				if !byDER.JID.Equal(byFP.JID) || byDER.Resource != byFP.Resource || byDER.Fingerprint != byFP.Fingerprint ||
					byDER.NoCertManagement != byFP.NoCertManagement || byDER.Stored != byFP.Stored || !byDER.Until.Equal(byFP.Until) {
					t.Fatalf("grants differ: %+v by DER, %+v by fingerprint", byDER, byFP)
				}
				if !byFP.Stored || byFP.Until.IsZero() {
					t.Fatalf("grant %+v: want Stored and Until set", byFP)
				}
			case errors.As(errDER, &fd) && errors.As(errFP, &ff):
				if fd.Condition != ff.Condition {
					t.Fatalf("refusals differ: %v by DER, %v by fingerprint", errDER, errFP)
				}
			default:
				t.Fatalf("outcomes differ: %v by DER, %v by fingerprint", errDER, errFP)
			}
		})
	}
}

// Grant.Until is notAfter plus the clock skew.
func TestGrantUntil(t *testing.T) {
	f := newAuthzFixture(t)
	g, err := f.authorizer().Authorize(t.Context(), sasl.Request{DER: f.barely})
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(f.barely)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.NotAfter.Add(5 * time.Minute); !g.Until.Equal(want) {
		t.Errorf("Until = %v, want %v", g.Until, want)
	}
}

func TestTrustedLoginByFingerprint(t *testing.T) {
	f := newTrustFixture(t)
	alice := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	stored := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	store := newMemFinder()
	store.add(stored.DER, "alice@example.org", storage.StateActive, "")
	a := f.authorizer(store, notRevoked)

	_, err := a.Authorize(context.Background(), sasl.Request{Fingerprint: storage.FingerprintOf(alice.DER), Domain: "example.org"})
	if !errors.Is(err, sasl.ErrCertificateNeeded) {
		t.Fatalf("unstored fingerprint with trusted roots: %v, want ErrCertificateNeeded", err)
	}
	g, err := a.Authorize(context.Background(), sasl.Request{DER: alice.DER, Domain: "example.org"})
	if err != nil || g.Stored {
		t.Fatalf("the whole certificate: %+v, %v; want a grant that is not Stored", g, err)
	}
	if g, err := a.Authorize(context.Background(), sasl.Request{Fingerprint: storage.FingerprintOf(stored.DER), Domain: "example.org"}); err != nil || !g.Stored {
		t.Fatalf("stored fingerprint: %+v, %v", g, err)
	}
}
