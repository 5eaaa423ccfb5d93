package enroll_test

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/certtest"
)

var (
	oidExtensionRequest   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 14}
	oidMSExtensionRequest = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 14}
	oidChallengePassword  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7}
	oidECDSAWithSHA256    = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
)

// extDER is one Extension (RFC 5280) as DER.
func extDER(oid asn1.ObjectIdentifier, critical bool, value []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1OctetString(value)
	})
	return b.BytesOrPanic()
}

// extsDER is a SEQUENCE OF Extension.
func extsDER(exts ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, e := range exts {
			b.AddBytes(e)
		}
	})
	return b.BytesOrPanic()
}

// attrDER is one Attribute { type, SET OF values } with already encoded values.
func attrDER(oid asn1.ObjectIdentifier, values ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			for _, v := range values {
				b.AddBytes(v)
			}
		})
	})
	return b.BytesOrPanic()
}

// craftedCSR builds and signs (ECDSA P-256, SHA-256) a PKCS#10 request with
// an empty subject and exactly the given attributes, encoded by hand so that
// crypto/x509 has no say in what they are, and parses it.
func craftedCSR(t *testing.T, attrs ...[]byte) *x509.CertificateRequest {
	t.Helper()
	key := certtest.Key(t, certtest.ECDSAP256)
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	var tb cryptobyte.Builder
	tb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {}) // empty Name
		b.AddBytes(spki)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			for _, a := range attrs {
				b.AddBytes(a)
			}
		})
	})
	tbs := tb.BytesOrPanic()
	digest := sha256.Sum256(tbs)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var cb cryptobyte.Builder
	cb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidECDSAWithSHA256) })
		b.AddASN1BitString(sig)
	})
	csr, err := x509.ParseCertificateRequest(cb.BytesOrPanic())
	if err != nil {
		t.Fatalf("crypto/x509 refuses the crafted CSR: %v", err)
	}
	return csr
}

// TestEnrollCheckCSRAttributes: CheckCSR reads the CSR's attributes itself
// and lets nothing through that crypto/x509 would skip but a CA might copy.
func TestEnrollCheckCSRAttributes(t *testing.T) {
	var (
		oidBC  = asn1.ObjectIdentifier{2, 5, 29, 19}
		oidKU  = asn1.ObjectIdentifier{2, 5, 29, 15}
		oidEKU = asn1.ObjectIdentifier{2, 5, 29, 37}
	)
	mustMarshal := func(v any) []byte {
		b, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	caTrue := extDER(oidBC, true, mustMarshal(struct{ CA bool }{true}))
	caFalse := extDER(oidBC, false, mustMarshal(struct{}{}))
	certSign := extDER(oidKU, true, mustMarshal(asn1.BitString{Bytes: []byte{0x04}, BitLength: 6}))
	codeSigning := extDER(oidEKU, false, mustMarshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 3}}))
	clientAuth := extDER(oidEKU, false, mustMarshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 2}}))
	utf8 := func(s string) []byte {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
		return b.BytesOrPanic()
	}
	tests := []struct {
		name  string
		attrs [][]byte
		ok    bool
	}{
		{"ok/no-attributes", nil, true},
		{"ok/extension-request-empty", [][]byte{attrDER(oidExtensionRequest, extsDER())}, true},
		{"ok/extension-request-ca-false-client-auth", [][]byte{attrDER(oidExtensionRequest, extsDER(caFalse, clientAuth))}, true},
		{"error/ms-extension-request-ca", [][]byte{attrDER(oidMSExtensionRequest, extsDER(caTrue, certSign, codeSigning))}, false},
		{"error/ms-extension-request-beside-pkcs9", [][]byte{attrDER(oidExtensionRequest, extsDER(caFalse)), attrDER(oidMSExtensionRequest, extsDER(caTrue))}, false},
		{"error/ms-extension-request-harmless", [][]byte{attrDER(oidMSExtensionRequest, extsDER(clientAuth))}, false},
		{"error/challenge-password", [][]byte{attrDER(oidChallengePassword, utf8("secret"))}, false},
		{"error/extension-request-second-value", [][]byte{attrDER(oidExtensionRequest, extsDER(caFalse), extsDER(caTrue))}, false},
		{"error/extension-request-twice", [][]byte{attrDER(oidExtensionRequest, extsDER(clientAuth)), attrDER(oidExtensionRequest, extsDER(caTrue))}, false},
		{"error/extension-request-no-value", [][]byte{attrDER(oidExtensionRequest)}, false},
		{"error/extension-request-ca", [][]byte{attrDER(oidExtensionRequest, extsDER(caTrue))}, false},
		{"error/extension-request-code-signing", [][]byte{attrDER(oidExtensionRequest, extsDER(codeSigning))}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			csr := craftedCSR(t, tc.attrs...)
			err := enroll.CheckCSR(csr, alice)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckCSR = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, enroll.ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
		})
	}
}
