package enroll

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

func TestXMPPAddrSANMatchesOpenSSL(t *testing.T) {
	// openssl: subjectAltName=otherName:1.3.6.1.5.5.7.8.5;UTF8:juliet@example.org
	want, _ := hex.DecodeString("3022a02006082b06010505070805a0140c126a756c696574406578616d706c652e6f7267")
	got, err := XMPPAddrSAN(jid.MustParse("juliet@example.org"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
}

func TestSelfSigned(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		jid     string
		nb, na  time.Time
		wantErr bool
	}{
		{"bare", "alice@example.org", now, now.Add(time.Hour), false},
		{"full", "alice@example.org/phone", now, now.Add(time.Hour), false},
		{"error/domain-only", "example.org", now, now.Add(time.Hour), true},
		{"error/empty-validity", "alice@example.org", now, now, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := SelfSigned(key, jid.MustParse(tc.jid), tc.nb, tc.na)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if c.IsCA || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
				t.Errorf("IsCA=%v EKU=%v", c.IsCA, c.ExtKeyUsage)
			}
			bare := jid.MustParse(tc.jid).Bare().String()
			if !slices.Equal(c.EmailAddresses, []string{bare}) || c.Subject.CommonName != bare || !c.BasicConstraintsValid {
				t.Errorf("email %v CN %q basicConstraints %v; want the bare JID %s as both, CA:FALSE", c.EmailAddresses, c.Subject.CommonName, c.BasicConstraintsValid, bare)
			}
			if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
				t.Errorf("self-signature: %v", err)
			}
		})
	}
}
