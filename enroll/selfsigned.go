package enroll

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"mellium.im/xmpp/jid"
)

var (
	oidXMPPAddr       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5}
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// XMPPAddrSAN returns the DER of a subjectAltName extension value holding one
// id-on-xmppAddr otherName (a UTF8String) per JID, in order (RFC 6120
// §13.7.1.4). It is byte-identical to what openssl writes for
// subjectAltName=otherName:1.3.6.1.5.5.7.8.5;UTF8:<jid>.
func XMPPAddrSAN(addrs ...jid.JID) ([]byte, error) {
	if len(addrs) == 0 {
		return nil, errors.New("enroll: a subjectAltName needs at least one JID")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, a := range addrs {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidXMPPAddr)
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(a.String())) })
				})
			})
		}
	})
	return b.Bytes()
}

// ClientSAN returns the DER of the subjectAltName saslcert puts into the
// client certificates it makes (SelfSigned, the embedded CA): one
// id-on-xmppAddr naming j (a bare JID, or a full JID to force a resource),
// followed by an rfc822Name holding j's bare JID, which clients that take
// the account from the email address (Conversations) read. A bare JID that
// is not ASCII cannot be an rfc822Name (an IA5String); its SAN holds the
// xmppAddr alone.
func ClientSAN(j jid.JID) ([]byte, error) {
	bare := j.Bare().String()
	if !isASCII(bare) {
		return XMPPAddrSAN(j)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidXMPPAddr)
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(j.String())) })
			})
		})
		b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(bare)) })
	})
	return b.Bytes()
}

// isASCII reports whether s holds only ASCII characters.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// SelfSigned makes a self-signed client certificate for the account j (a bare
// JID, or a full JID to force that resource at login) with key, valid from
// notBefore to notAfter: subject CN = j's bare JID, the subjectAltName
// ClientSAN(j) (the xmppAddr j and the email address j's bare JID), EKU
// clientAuth, key usage digitalSignature, basicConstraints CA:FALSE. It
// returns the DER.
func SelfSigned(key crypto.Signer, j jid.JID, notBefore, notAfter time.Time) ([]byte, error) {
	if j.Localpart() == "" {
		return nil, fmt.Errorf("enroll: %q is not an account JID (no localpart)", j)
	}
	if !notAfter.After(notBefore) {
		return nil, errors.New("enroll: notAfter must be after notBefore")
	}
	san, err := ClientSAN(j)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, fmt.Errorf("enroll: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: j.Bare().String()},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: oidSubjectAltName, Value: san}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("enroll: create certificate: %w", err)
	}
	return der, nil
}
