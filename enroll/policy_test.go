package enroll_test

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
)

func TestEnrollPolicyValidate(t *testing.T) {
	root := certtest.NewCA(t, "org root").Cert
	leaf := certtest.New(t, certtest.Options{}).Cert
	tests := []struct {
		name string
		p    enroll.DomainPolicy
		err  string
	}{
		{"ok/default", enroll.DefaultDomainPolicy(), ""},
		{"ok/self-signed-only", enroll.DomainPolicy{AllowSelfSigned: true}, ""},
		{"ok/roots-only", enroll.DomainPolicy{TrustedRoots: []*x509.Certificate{root}}, ""},
		{"ok/stepca-1d", enroll.DomainPolicy{Issuer: "corp-step", Lifetime: 24 * time.Hour}, ""},
		{"error/nothing-allowed", enroll.DomainPolicy{}, "no certificate could ever be used"},
		{"error/lifetime-too-short", enroll.DomainPolicy{Issuer: "embedded", Lifetime: time.Minute}, "lifetime"},
		{"error/lifetime-too-long", enroll.DomainPolicy{Issuer: "embedded", Lifetime: 365 * 24 * time.Hour}, "lifetime"},
		{"error/root-not-ca", enroll.DomainPolicy{TrustedRoots: []*x509.Certificate{leaf}}, "not a CA"},
		{"error/nil-root", enroll.DomainPolicy{TrustedRoots: []*x509.Certificate{nil}}, "missing"},
		{"error/issuer-space", enroll.DomainPolicy{Issuer: " embedded"}, "space"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

func TestEnrollPolicies(t *testing.T) {
	ps := enroll.Policies{
		"example.org":  enroll.DefaultDomainPolicy(),
		"corp.example": {Issuer: "corp-step", Lifetime: 24 * time.Hour},
	}
	if err := ps.Validate([]string{enroll.EmbeddedIssuer, "corp-step"}); err != nil {
		t.Fatal(err)
	}
	if err := ps.Validate([]string{enroll.EmbeddedIssuer}); err == nil || !strings.Contains(err.Error(), `unknown issuer "corp-step"`) {
		t.Fatalf("Validate with a missing issuer = %v", err)
	}
	p, ok := ps.For(jid.MustParse("bob@corp.example"))
	if !ok || p.Issuer != "corp-step" || p.EffectiveLifetime() != 24*time.Hour {
		t.Fatalf("For = %+v, %v", p, ok)
	}
	if _, ok := ps.For(jid.MustParse("bob@elsewhere.example")); ok {
		t.Fatal("For found a policy for a domain that is not served")
	}
	if got := (enroll.DomainPolicy{}).EffectiveLifetime(); got != enroll.DefaultLifetime {
		t.Fatalf("EffectiveLifetime of zero = %s", got)
	}
	for _, bad := range []string{"Example.ORG", "alice@example.org", "example.org/res", ""} {
		if err := (enroll.Policies{bad: enroll.DefaultDomainPolicy()}).Validate([]string{enroll.EmbeddedIssuer}); err == nil {
			t.Errorf("domain %q accepted", bad)
		}
	}
	// Issue 10.5: Prosody would serve strasse.example.
	if err := (enroll.Policies{"straße.example": enroll.DefaultDomainPolicy()}).Validate([]string{enroll.EmbeddedIssuer}); !errors.Is(err, sasl.ErrJIDForms) {
		t.Errorf("domain straße.example: %v, want sasl.ErrJIDForms", err)
	}
}
