package enroll_test

import (
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/catest"
)

func TestEnrollParseCSR(t *testing.T) {
	csr := catest.NewCSR(t, catest.CSROptions{})
	p := string(catest.CSRPEM(csr))
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"ok/pem", p, true},
		{"ok/pem-crlf", strings.ReplaceAll(p, "\n", "\r\n"), true},
		{"ok/new-pem", strings.ReplaceAll(p, "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"), true},
		{"ok/base64", base64.StdEncoding.EncodeToString(csr.Raw), true},
		{"error/empty", "  ", false},
		{"error/certificate", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: csr.Raw})), false},
		{"error/two", p + p, false},
		{"error/garbage", "-----BEGIN CERTIFICATE REQUEST-----\nnope\n", false},
		{"error/not-csr", base64.StdEncoding.EncodeToString([]byte("hello")), false},
		{"error/too-large", strings.Repeat("A", enroll.MaxCSRSize+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := enroll.ParseCSR(tt.in)
			if tt.ok {
				if err != nil || string(got.Raw) != string(csr.Raw) {
					t.Fatalf("ParseCSR: %v", err)
				}
				return
			}
			if !errors.Is(err, enroll.ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
		})
	}
}

// FuzzParseCSR: any text gives a CSR or an ErrBadRequest, never a panic.
func FuzzParseCSR(f *testing.F) {
	f.Add(string(catest.CSRPEM(catest.NewCSR(f, catest.CSROptions{XMPPAddr: "alice@example.org"}))))
	f.Add("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n")
	f.Add("MIIBADCBpwIBADA=")
	f.Fuzz(func(t *testing.T, s string) {
		csr, err := enroll.ParseCSR(s)
		if (csr == nil) == (err == nil) || (err != nil && !errors.Is(err, enroll.ErrBadRequest)) {
			t.Fatalf("ParseCSR: %v, %v", csr, err)
		}
	})
}
