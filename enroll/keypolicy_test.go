package enroll_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
)

// The configured key policy (ServiceConfig.KeyPolicy, saslcert serve's
// --min-rsa-bits) applies to enrollment as it does to uploads (issue
// 11.6): a 4096-bit floor refuses a 2048-bit CSR before any CA is asked.
func TestEnrollServiceKeyPolicy(t *testing.T) {
	tests := []struct {
		name   string
		policy sasl.Policy
		key    certtest.KeyType
		detail string // "" = issued
	}{
		{name: "ok/rsa-2048-default-policy", key: certtest.RSA2048},
		{name: "ok/rsa-2048-floor-2048", key: certtest.RSA2048, policy: sasl.Policy{MinRSABits: 2048}},
		{name: "ok/ecdsa-floor-4096", key: certtest.ECDSAP256, policy: sasl.Policy{MinRSABits: 4096}},
		{name: "error/rsa-2048-floor-4096", key: certtest.RSA2048, policy: sasl.Policy{MinRSABits: 4096},
			detail: "RSA key of 2048 bits; at least 4096 are required"},
		{name: "error/rsa-1024-default-policy", key: certtest.RSA1024,
			detail: "RSA key of 1024 bits; at least 2048 are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSvcFixture(t, func(c *enroll.ServiceConfig, _ *svcFixture) { c.KeyPolicy = tt.policy })
			csr := catest.NewCSR(t, catest.CSROptions{Key: certtest.Key(t, tt.key)})
			_, err := f.svc.Enroll(context.Background(), &enroll.EnrollRequest{Account: svcAlice, Actor: "alice@example.org/x", Name: "laptop", CSR: csr})
			if tt.detail == "" {
				if err != nil {
					t.Fatalf("Enroll: %v", err)
				}
				return
			}
			if !errors.Is(err, enroll.ErrBadRequest) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("Enroll: %v; want ErrBadRequest with %q", err, tt.detail)
			}
			if n := f.iss.count(); n != 0 {
				t.Fatalf("the CA was asked %d times; want 0", n)
			}
			if got := f.active(t, svcAlice); len(got) != 0 {
				t.Fatalf("%d active certificates; want 0", len(got))
			}
		})
	}
}
