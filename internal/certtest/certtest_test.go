package certtest

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"testing"
)

// The SAN encoding is byte-identical to what openssl writes for
// subjectAltName=otherName:1.3.6.1.5.5.7.8.5;UTF8:juliet@example.org,DNS:example.org
func TestSANMatchesOpenSSL(t *testing.T) {
	want, _ := hex.DecodeString("302fa02006082b06010505070805a0140c126a756c696574406578616d706c652e6f7267820b6578616d706c652e6f7267")
	got := SAN([]OtherName{XMPPAddr("juliet@example.org")}, []string{"example.org"})
	if !bytes.Equal(got, want) {
		t.Fatalf("SAN = %x, want %x", got, want)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"default", Options{}},
		{"xmppaddr", Options{XMPPAddrs: []string{"alice@example.org"}, CriticalSAN: true}},
		{"rsa", Options{KeyType: RSA2048}},
		{"ed25519", Options{KeyType: Ed25519}},
		{"ca-signed", Options{Parent: NewCA(t, "Test CA")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(t, tc.o)
			if _, err := x509.ParseCertificate(c.DER); err != nil {
				t.Fatal(err)
			}
			if !c.Cert.NotBefore.Before(Now) || !c.Cert.NotAfter.After(Now) {
				t.Errorf("validity %v..%v does not cover Now", c.Cert.NotBefore, c.Cert.NotAfter)
			}
		})
	}
}
