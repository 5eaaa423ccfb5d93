// Package certtest makes X.509 certificates for tests: self-signed or signed
// by a test CA, with any mix of id-on-xmppAddr and other otherName SAN
// entries, chosen validity, key type, EKU and signature algorithm.
//
// Keys are generated once per key type and process and reused, so making a
// certificate costs a signature, not a key generation.
package certtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Now is the fixed "current time" tests use with these certificates. Default
// validity is Now-1h .. Now+30 days.
var Now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// Well-known OIDs.
var (
	OIDXMPPAddr       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5}
	OIDMicrosoftUPN   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
	OIDSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidEmailAddress   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

// KeyType selects the subject key.
type KeyType string

// Supported key types.
const (
	ECDSAP256 KeyType = "ecdsa-p256" // the default
	ECDSAP384 KeyType = "ecdsa-p384"
	ECDSAP521 KeyType = "ecdsa-p521"
	ECDSAP224 KeyType = "ecdsa-p224" // refused by policy
	RSA1024   KeyType = "rsa-1024"   // refused by policy
	RSA2048   KeyType = "rsa-2048"
	Ed25519   KeyType = "ed25519"
)

var (
	keysMu sync.Mutex
	keys   = map[KeyType]crypto.Signer{}
)

// Key returns the process-wide key of type kt, generating it on first use.
func Key(tb testing.TB, kt KeyType) crypto.Signer {
	tb.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[kt]; ok {
		return k
	}
	k, err := NewKey(kt)
	if err != nil {
		tb.Fatal(err)
	}
	keys[kt] = k
	return k
}

// freshOrShared is a fresh key of type kt if that is cheap to make (ECDSA,
// Ed25519), the process-wide one (Key) otherwise (RSA): certificates New
// makes without a Key do not share their key unless they are RSA, since a
// store treats certificates of one key as one credential (revoking one
// revokes them all).
func freshOrShared(tb testing.TB, kt KeyType) crypto.Signer {
	tb.Helper()
	switch kt {
	case RSA1024, RSA2048:
		return Key(tb, kt)
	}
	k, err := NewKey(kt)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// NewKey generates a fresh key of type kt.
func NewKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case "", ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case ECDSAP521:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case ECDSAP224:
		return ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case RSA1024:
		return rsa.GenerateKey(rand.Reader, 1024)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("certtest: unknown key type %q", kt)
}

// OtherName is one otherName GeneralName: type-id and the DER of the value
// inside the [0] EXPLICIT wrapper (e.g. a UTF8String TLV).
type OtherName struct {
	OID   asn1.ObjectIdentifier
	Value []byte
}

// XMPPAddr is an id-on-xmppAddr otherName carrying s as a UTF8String.
func XMPPAddr(s string) OtherName { return UTF8OtherName(OIDXMPPAddr, s) }

// UTF8OtherName is an otherName of type oid carrying s as a UTF8String.
func UTF8OtherName(oid asn1.ObjectIdentifier, s string) OtherName {
	return OtherName{OID: oid, Value: TLV(cbasn1.UTF8String, []byte(s))}
}

// TLV encodes one DER element with the given tag and content.
func TLV(tag cbasn1.Tag, content []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes(content) })
	return b.BytesOrPanic()
}

// SAN encodes a subjectAltName extension value (SEQUENCE OF GeneralName) with
// the given otherNames followed by dNSName entries.
func SAN(others []OtherName, dns []string) []byte { return SANWithEmails(others, dns, nil) }

// SANWithEmails is SAN followed by rfc822Name entries (IA5String, written
// as given: a test may put anything in them).
func SANWithEmails(others []OtherName, dns, emails []string) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, o := range others {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(o.OID)
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddBytes(o.Value)
				})
			})
		}
		for _, d := range dns {
			b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(d)) })
		}
		for _, e := range emails {
			b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(e)) })
		}
	})
	return b.BytesOrPanic()
}

// Options describe a certificate. The zero value is a self-signed ECDSA P-256
// client certificate valid Now-1h .. Now+30d with EKU clientAuth and no SAN.
type Options struct {
	CommonName  string
	XMPPAddrs   []string    // id-on-xmppAddr UTF8String entries, in order
	OtherNames  []OtherName // further otherName entries, after XMPPAddrs
	DNSNames    []string
	CriticalSAN bool   // mark the SAN extension critical
	RawSAN      []byte // if set, used as the SAN extension value instead of the above

	Emails       []string // rfc822Name entries, after DNSNames
	SubjectEmail string   // if set, a PKCS#9 emailAddress attribute in the subject

	NotBefore, NotAfter time.Time // zero: Now-1h and Now+30d

	Key     crypto.Signer // subject key; nil: Key(KeyType)
	KeyType KeyType

	IsCA     bool
	KeyUsage x509.KeyUsage      // added to digitalSignature
	EKU      []x509.ExtKeyUsage // nil: clientAuth
	NoEKU    bool               // omit the EKU extension
	SigAlg   x509.SignatureAlgorithm
	Parent   *Cert // issuer; nil: self-signed
	Serial   int64 // 0: random
}

// Cert is a made certificate with its key.
type Cert struct {
	Cert *x509.Certificate
	DER  []byte
	Key  crypto.Signer
}

// New makes a certificate as o describes and fails tb on error.
func New(tb testing.TB, o Options) *Cert {
	tb.Helper()
	if o.Key == nil {
		o.Key = freshOrShared(tb, o.KeyType)
	}
	c, err := Make(o)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Make is New without a testing.TB (for benchmarks' setup and generators).
// o.Key must be set.
func Make(o Options) (*Cert, error) {
	if o.Key == nil {
		return nil, fmt.Errorf("certtest: Make needs Options.Key")
	}
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = Now.Add(-time.Hour)
	}
	if na.IsZero() {
		na = Now.Add(30 * 24 * time.Hour)
	}
	serial := big.NewInt(o.Serial)
	if o.Serial == 0 {
		var err error
		serial, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
		if err != nil {
			return nil, err
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:       serial,
		Subject:            pkix.Name{CommonName: o.CommonName},
		NotBefore:          nb,
		NotAfter:           na,
		KeyUsage:           x509.KeyUsageDigitalSignature | o.KeyUsage,
		SignatureAlgorithm: o.SigAlg,
	}
	if o.SubjectEmail != "" {
		tmpl.Subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidEmailAddress, Value: o.SubjectEmail}}
	}
	if !o.NoEKU {
		tmpl.ExtKeyUsage = o.EKU
		if tmpl.ExtKeyUsage == nil {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
	}
	if o.IsCA {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	san := o.RawSAN
	if san == nil {
		others := make([]OtherName, 0, len(o.XMPPAddrs)+len(o.OtherNames))
		for _, a := range o.XMPPAddrs {
			others = append(others, XMPPAddr(a))
		}
		others = append(others, o.OtherNames...)
		if len(others) > 0 || len(o.DNSNames) > 0 || len(o.Emails) > 0 {
			san = SANWithEmails(others, o.DNSNames, o.Emails)
		}
	}
	if san != nil {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{
			Id: OIDSubjectAltName, Critical: o.CriticalSAN, Value: san,
		})
	}
	parent, signer := tmpl, o.Key
	if o.Parent != nil {
		parent, signer = o.Parent.Cert, o.Parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, o.Key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("certtest: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certtest: parse certificate: %w", err)
	}
	return &Cert{Cert: cert, DER: der, Key: o.Key}, nil
}

// NewCA makes a self-signed CA certificate with its own fresh P-256 key.
func NewCA(tb testing.TB, name string) *Cert {
	tb.Helper()
	k, err := NewKey(ECDSAP256)
	if err != nil {
		tb.Fatal(err)
	}
	return New(tb, Options{CommonName: name, IsCA: true, Key: k, NoEKU: true,
		NotBefore: Now.Add(-24 * time.Hour), NotAfter: Now.Add(365 * 24 * time.Hour)})
}

// CertPEM returns the certificate in PEM form.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
}

// KeyPEM returns the private key in PKCS #8 PEM form.
func (c *Cert) KeyPEM(tb testing.TB) []byte {
	tb.Helper()
	b, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b})
}
