package sasl

import (
	"crypto/x509"
	"encoding/asn1"

	"mellium.im/xmpp/jid"
)

// OIDs this package looks for.
var (
	OIDXMPPAddr       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5} // id-on-xmppAddr, RFC 6120 §13.7.1.4
	OIDSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// OtherName is an otherName SAN entry that is not an id-on-xmppAddr (for
// example a Microsoft UPN). It is reported, never treated as a JID.
type OtherName struct {
	OID   asn1.ObjectIdentifier
	Value []byte // DER of the value inside the [0] EXPLICIT wrapper
}

// BadAddr is an id-on-xmppAddr entry that cannot be used as a JID.
type BadAddr struct {
	Value  []byte // DER of the value inside the [0] EXPLICIT wrapper
	Reason string // e.g. "not a UTF8String (BMPString)", "invalid JID: ...", "contains a NUL byte"
}

// SANs is what a subjectAltName extension says about XMPP identity.
type SANs struct {
	XMPPAddrs  []jid.JID   // usable xmppAddrs, normalised per RFC 7622, in certificate order
	BadAddrs   []BadAddr   // xmppAddrs that are not usable
	OtherNames []OtherName // otherNames of other types
	DNSNames   []string
	Critical   bool // the extension was marked critical
}

// ParseSAN parses the value of a subjectAltName extension (a DER SEQUENCE OF
// GeneralName). It returns an error only if the extension is not well-formed
// DER; unusable entries are reported in the result. It never panics.
func ParseSAN(ext []byte) (*SANs, error) { panic("TODO") }

// CertSANs finds and parses cert's subjectAltName extension. A certificate
// without one gives an empty *SANs and no error.
func CertSANs(cert *x509.Certificate) (*SANs, error) { panic("TODO") }

// ParseCertificate parses der as exactly one certificate with no trailing
// bytes, and its SAN. If the SAN was critical and handled here, its OID is
// removed from cert.UnhandledCriticalExtensions (crypto/x509 lists an
// otherName-only critical SAN as unhandled).
func ParseCertificate(der []byte) (*x509.Certificate, *SANs, error) { panic("TODO") }
