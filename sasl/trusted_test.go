package sasl_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// trustFixture is a root, an intermediate and certificates issued by them.
type trustFixture struct {
	root, inter *certtest.Cert
	roots, mids *x509.CertPool
}

func newTrustFixture(tb testing.TB) *trustFixture {
	tb.Helper()
	f := &trustFixture{}
	f.root = certtest.New(tb, certtest.Options{CommonName: "root", IsCA: true, NoEKU: true, KeyType: certtest.ECDSAP384})
	f.inter = certtest.New(tb, certtest.Options{CommonName: "issuing", IsCA: true, NoEKU: true, Parent: f.root, KeyType: certtest.ECDSAP521})
	f.roots, f.mids = x509.NewCertPool(), x509.NewCertPool()
	f.roots.AddCert(f.root.Cert)
	f.mids.AddCert(f.inter.Cert)
	return f
}

// leaf issues a certificate under the intermediate.
func (f *trustFixture) leaf(tb testing.TB, o certtest.Options) *certtest.Cert {
	tb.Helper()
	o.Parent = f.inter
	return certtest.New(tb, o)
}

func (f *trustFixture) authorizer(store sasl.CertFinder, revoked func(context.Context, string, []*x509.Certificate) (bool, error)) *sasl.Authorizer {
	return &sasl.Authorizer{
		Store: store,
		Now:   func() time.Time { return certtest.Now },
		Trusted: func(domain string) (*x509.CertPool, *x509.CertPool) {
			if domain != "example.org" {
				return nil, nil
			}
			return f.roots, f.mids
		},
		IsRevoked: revoked,
	}
}

func notRevoked(context.Context, string, []*x509.Certificate) (bool, error) { return false, nil }

func TestTrustedLogin(t *testing.T) {
	f := newTrustFixture(t)
	now := certtest.Now
	alice := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	critical := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, CriticalSAN: true})
	tablet := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org/tablet"}})
	two := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org", "bob@example.org"}})
	none := f.leaf(t, certtest.Options{DNSNames: []string{"alice.example.org"}})
	other := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.net"}})
	expired := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Minute)})
	serverOnly := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	ca := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, IsCA: true, NoEKU: true})
	selfSigned := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	stored := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	strasse := f.leaf(t, certtest.Options{XMPPAddrs: []string{"straße@example.org"}})
	withEmail := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, Emails: []string{"alice@example.org"}})
	otherEmail := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, Emails: []string{"bob@example.org"}})

	store := newMemFinder()
	store.add(stored.DER, "alice@example.org", storage.StateRevoked, "")

	tests := []struct {
		name    string
		der     []byte
		authzid string
		domain  string
		revoked func(context.Context, string, []*x509.Certificate) (bool, error)
		want    sasl.Condition // "" = granted
		jid     string
		res     string
	}{
		{name: "ok/leaf", der: alice.DER, want: "", jid: "alice@example.org"},
		{name: "ok/authzid", der: alice.DER, authzid: "alice@example.org", want: "", jid: "alice@example.org"},
		{name: "ok/critical-san", der: critical.DER, want: "", jid: "alice@example.org"},
		{name: "ok/forced-resource", der: tablet.DER, want: "", jid: "alice@example.org", res: "tablet"},
		{name: "ok/email-is-the-account", der: withEmail.DER, want: "", jid: "alice@example.org"},
		{name: "error/email-other-account", der: otherEmail.DER, want: sasl.NotAuthorized},
		{name: "error/no-domain", der: alice.DER, domain: "-", want: sasl.NotAuthorized},
		{name: "error/domain-trusts-nothing", der: alice.DER, domain: "example.net", want: sasl.NotAuthorized},
		{name: "error/untrusted", der: selfSigned.DER, want: sasl.NotAuthorized},
		{name: "error/expired", der: expired.DER, want: sasl.CredentialsExpired},
		{name: "error/server-auth-only", der: serverOnly.DER, want: sasl.NotAuthorized},
		{name: "error/ca", der: ca.DER, want: sasl.NotAuthorized},
		{name: "error/two-xmppaddrs", der: two.DER, want: sasl.NotAuthorized},
		{name: "error/no-xmppaddr", der: none.DER, want: sasl.NotAuthorized},
		{name: "error/other-domain", der: other.DER, want: sasl.NotAuthorized},
		// Issue 10.5: Prosody would bind strasse@example.org.
		{name: "error/two-forms-sharp-s", der: strasse.DER, want: sasl.NotAuthorized},
		{name: "error/two-forms-sharp-s-authzid", der: strasse.DER, authzid: "strasse@example.org", want: sasl.NotAuthorized},
		{name: "error/authzid-other", der: alice.DER, authzid: "bob@example.org", want: sasl.InvalidAuthzid},
		{name: "error/authzid-full", der: alice.DER, authzid: "alice@example.org/x", want: sasl.InvalidAuthzid},
		{name: "error/authzid-other-domain", der: alice.DER, authzid: "alice@example.net", want: sasl.InvalidAuthzid},
		{name: "error/revoked", der: alice.DER, revoked: func(context.Context, string, []*x509.Certificate) (bool, error) { return true, nil }, want: sasl.NotAuthorized},
		{name: "error/revocation-unknown", der: alice.DER, revoked: func(context.Context, string, []*x509.Certificate) (bool, error) {
			return false, errors.New("CRL unavailable")
		}, want: sasl.TemporaryAuthFailure},
		{name: "error/no-revocation-check", der: alice.DER, revoked: nil, want: sasl.NotAuthorized},
		// A stored record decides, whatever the trust: this one is revoked.
		{name: "error/stored-revoked", der: stored.DER, want: sasl.NotAuthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			revoked := tt.revoked
			if revoked == nil && tt.name != "error/no-revocation-check" {
				revoked = notRevoked
			}
			var gotChain []*x509.Certificate
			a := f.authorizer(store, func(ctx context.Context, d string, chain []*x509.Certificate) (bool, error) {
				gotChain = chain
				return revoked(ctx, d, chain)
			})
			if revoked == nil {
				a.IsRevoked = nil
			}
			domain := "example.org"
			switch tt.domain {
			case "-":
				domain = ""
			case "":
			default:
				domain = tt.domain
			}
			g, err := a.Authorize(context.Background(), sasl.Request{DER: tt.der, Authzid: tt.authzid, Domain: domain})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Authorize: %v; want a grant", err)
				}
				// NoCertManagement: a trusted-roots login may not manage
				// certificates (issue 10.4).
				if g.JID.String() != tt.jid || g.Resource != tt.res || g.Fingerprint != storage.FingerprintOf(tt.der) || !g.NoCertManagement {
					t.Fatalf("grant %+v; want %s resource %q, no-cert-management", g, tt.jid, tt.res)
				}
				if len(gotChain) != 3 || !gotChain[1].Equal(f.inter.Cert) || !gotChain[2].Equal(f.root.Cert) {
					t.Fatalf("IsRevoked got a chain of %d; want leaf, intermediate, root", len(gotChain))
				}
				return
			}
			var fl *sasl.Failure
			if !errors.As(err, &fl) || fl.Condition != tt.want {
				t.Fatalf("Authorize: %v; want %s", err, tt.want)
			}
			t.Log(fl.Reason)
		})
	}
}

// Without Trusted, an unknown certificate of a CA is refused as before.
func TestTrustedLoginNotConfigured(t *testing.T) {
	f := newTrustFixture(t)
	alice := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	a := &sasl.Authorizer{Store: newMemFinder(), Now: func() time.Time { return certtest.Now }}
	_, err := a.Authorize(context.Background(), sasl.Request{DER: alice.DER, Domain: "example.org"})
	var fl *sasl.Failure
	if !errors.As(err, &fl) || fl.Condition != sasl.NotAuthorized {
		t.Fatalf("Authorize: %v; want not-authorized", err)
	}
}

// The configured key policy applies to trusted-root logins as it does to
// uploads (issue 11.6): a 4096-bit floor refuses a 2048-bit certificate of
// a trusted CA.
func TestTrustedLoginKeyPolicy(t *testing.T) {
	f := newTrustFixture(t)
	rsa2048 := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, KeyType: certtest.RSA2048})
	p256 := f.leaf(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	tests := []struct {
		name   string
		der    []byte
		policy sasl.Policy
		want   sasl.Condition // "" = granted
		reason string         // in the failure's reason
	}{
		{name: "ok/rsa-2048-default-policy", der: rsa2048.DER},
		{name: "ok/rsa-2048-floor-2048", der: rsa2048.DER, policy: sasl.Policy{MinRSABits: 2048}},
		{name: "ok/ecdsa-floor-4096", der: p256.DER, policy: sasl.Policy{MinRSABits: 4096}},
		{name: "error/rsa-2048-floor-4096", der: rsa2048.DER, policy: sasl.Policy{MinRSABits: 4096}, want: sasl.NotAuthorized,
			reason: "RSA key of 2048 bits; at least 4096 are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.authorizer(newMemFinder(), notRevoked)
			a.Policy = tt.policy
			_, err := a.Authorize(context.Background(), sasl.Request{DER: tt.der, Domain: "example.org"})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Authorize: %v; want a grant", err)
				}
				return
			}
			var fl *sasl.Failure
			if !errors.As(err, &fl) || fl.Condition != tt.want || !strings.Contains(fl.Reason, tt.reason) {
				t.Fatalf("Authorize: %v; want %s with %q", err, tt.want, tt.reason)
			}
		})
	}
}

// Policy.CheckKey is the one key check (uploads, logins, CSRs, issued
// certificates): it takes the key itself.
func TestPolicyCheckKey(t *testing.T) {
	tests := []struct {
		name   string
		key    certtest.KeyType
		policy sasl.Policy
		detail string // "" = accepted
	}{
		{name: "ok/p256", key: certtest.ECDSAP256},
		{name: "ok/ed25519", key: certtest.Ed25519, policy: sasl.Policy{MinRSABits: 4096}},
		{name: "ok/rsa-2048-default", key: certtest.RSA2048},
		{name: "error/rsa-1024-default", key: certtest.RSA1024, detail: "RSA key of 1024 bits; at least 2048 are required"},
		{name: "error/rsa-2048-floor-4096", key: certtest.RSA2048, policy: sasl.Policy{MinRSABits: 4096}, detail: "RSA key of 2048 bits; at least 4096 are required"},
		{name: "error/p224", key: certtest.ECDSAP224, detail: "ECDSA key on curve P-224; only P-256, P-384 and P-521 are accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.policy.CheckKey(certtest.Key(t, tt.key).Public())
			switch {
			case tt.detail == "" && r != nil:
				t.Fatalf("CheckKey: %v; want nil", r)
			case tt.detail != "" && (r == nil || r.Reason != sasl.ReasonWeakKey || r.Detail != tt.detail):
				t.Fatalf("CheckKey: %v; want weak-key %q", r, tt.detail)
			}
		})
	}
}
