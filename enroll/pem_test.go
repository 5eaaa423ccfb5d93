package enroll_test

import (
	"encoding/pem"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/certtest"
)

func TestParseCertsPEM(t *testing.T) {
	a := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	b := certtest.New(t, certtest.Options{XMPPAddrs: []string{"bob@example.org"}})
	block := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	for _, tc := range []struct {
		name, in string
		want     int
		wantErr  string
	}{
		{"ok/one", block("CERTIFICATE", a.DER), 1, ""},
		{"ok/two-in-order", block("CERTIFICATE", a.DER) + block("CERTIFICATE", b.DER), 2, ""},
		{"ok/other-blocks-skipped", block("EC PRIVATE KEY", []byte{1, 2}) + "junk\n" + block("CERTIFICATE", b.DER), 1, ""},
		{"error/empty", "", 0, "no PEM certificate"},
		{"error/only-a-key", block("EC PRIVATE KEY", []byte{1, 2}), 0, "no PEM certificate"},
		{"error/bad-der", block("CERTIFICATE", []byte("not DER")), 0, "x509"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := enroll.ParseCertsPEM([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("%d certificates, %v; want %d", len(got), err, tc.want)
			}
			if tc.name == "ok/two-in-order" && (!got[0].Equal(a.Cert) || !got[1].Equal(b.Cert)) {
				t.Error("order not kept")
			}
		})
	}
}
