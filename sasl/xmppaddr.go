package sasl

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"mellium.im/xmpp/jid"
)

// OIDs this package looks for.
var (
	OIDXMPPAddr       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5} // id-on-xmppAddr, RFC 6120 §13.7.1.4
	OIDSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// derXMPPAddrOID is the DER encoding of OIDXMPPAddr. Comparing the encoded
// type-id with it avoids decoding every otherName OID on the hot path.
var derXMPPAddrOID = []byte{0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05}

// Errors ParseCertificate wraps; test with errors.Is.
var (
	// ErrMalformed: the input is not one well-formed DER certificate, or its
	// subjectAltName extension is not well-formed.
	ErrMalformed = errors.New("sasl: malformed certificate")
	// ErrTrailingData: one certificate is followed by more bytes (often a
	// second certificate: a chain where one certificate was expected).
	ErrTrailingData = errors.New("sasl: trailing data after the certificate")
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

// GeneralName tags (RFC 5280 §4.2.1.6) this parser looks at.
var (
	tagOtherName     = cbasn1.Tag(0).Constructed().ContextSpecific()
	tagDNSName       = cbasn1.Tag(2).ContextSpecific()
	tagExplicitValue = cbasn1.Tag(0).Constructed().ContextSpecific()
)

// ParseSAN parses the value of a subjectAltName extension (a DER SEQUENCE OF
// GeneralName). It returns an error only if the extension is not well-formed
// DER; unusable entries are reported in the result. It never panics.
//
// Only otherName entries whose type-id is id-on-xmppAddr and whose value is a
// UTF8String holding a valid JID become XMPPAddrs; the JID is normalised with
// mellium.im/xmpp/jid (RFC 7622), must be stable under normalisation and must
// be read the same way by the XMPP server (ParseJID; else a BadAddr).
func ParseSAN(ext []byte) (*SANs, error) {
	in := cryptobyte.String(ext)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, fmt.Errorf("%w: subjectAltName is not one DER SEQUENCE", ErrMalformed)
	}
	s := new(SANs)
	for i := 0; !seq.Empty(); i++ {
		var gn cryptobyte.String
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1(&gn, &tag) {
			return nil, fmt.Errorf("%w: subjectAltName entry %d is not well-formed DER", ErrMalformed, i)
		}
		switch tag {
		case tagOtherName:
			if err := s.addOtherName(gn); err != nil {
				return nil, fmt.Errorf("%w: subjectAltName entry %d: %s", ErrMalformed, i, err)
			}
		case tagDNSName:
			s.DNSNames = append(s.DNSNames, string(gn))
		case cbasn1.Tag(0).ContextSpecific():
			return nil, fmt.Errorf("%w: subjectAltName entry %d: otherName is not constructed", ErrMalformed, i)
		}
		// Other GeneralName forms (rfc822Name, URI, iPAddress, ...) say nothing
		// about XMPP identity; crypto/x509 parses the ones it knows.
	}
	return s, nil
}

// addOtherName parses the content of an otherName ([0] IMPLICIT SEQUENCE {
// type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY }).
func (s *SANs) addOtherName(on cryptobyte.String) error {
	var oidElem, wrapper cryptobyte.String
	if !on.ReadASN1Element(&oidElem, cbasn1.OBJECT_IDENTIFIER) {
		return errors.New("otherName type-id is not an OBJECT IDENTIFIER")
	}
	if !on.ReadASN1(&wrapper, tagExplicitValue) || !on.Empty() {
		return errors.New("otherName value is not one [0] EXPLICIT element")
	}
	valueDER := []byte(wrapper)
	var value cryptobyte.String
	var valueTag cbasn1.Tag
	if !wrapper.ReadAnyASN1(&value, &valueTag) || !wrapper.Empty() {
		return errors.New("otherName value does not hold exactly one DER element")
	}
	// DER OIDs are minimally encoded, so the bytes identify the OID.
	if !bytes.Equal(oidElem, derXMPPAddrOID) {
		var oid asn1.ObjectIdentifier
		if !oidElem.ReadASN1ObjectIdentifier(&oid) {
			return errors.New("otherName type-id is not a valid OBJECT IDENTIFIER")
		}
		s.OtherNames = append(s.OtherNames, OtherName{OID: oid, Value: bytes.Clone(valueDER)})
		return nil
	}
	j, reason := xmppAddr(valueTag, value)
	if reason != "" {
		s.BadAddrs = append(s.BadAddrs, BadAddr{Value: bytes.Clone(valueDER), Reason: reason})
		return nil
	}
	s.XMPPAddrs = append(s.XMPPAddrs, j)
	return nil
}

// maxQuoted bounds how much of a rejected value a reason quotes.
const maxQuoted = 64

// quote returns s quoted (Go syntax, so control characters are escaped),
// shortened to maxQuoted bytes.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// xmppAddr checks the value of an id-on-xmppAddr otherName and returns its
// normalised JID, or a reason why it cannot be used.
func xmppAddr(tag cbasn1.Tag, v []byte) (jid.JID, string) {
	if tag != cbasn1.UTF8String {
		return jid.JID{}, "not a UTF8String (" + tagName(tag) + ")"
	}
	if len(v) == 0 {
		return jid.JID{}, "empty"
	}
	if !utf8.Valid(v) {
		return jid.JID{}, "not valid UTF-8"
	}
	if bytes.IndexByte(v, 0) >= 0 {
		return jid.JID{}, "contains a NUL byte"
	}
	str := string(v)
	for _, r := range str {
		if unicode.IsControl(r) {
			return jid.JID{}, fmt.Sprintf("contains the control character %U", r)
		}
	}
	j, err := ParseJID(str)
	var fe *JIDFormError
	switch {
	case errors.As(err, &fe):
		// The server would bind another account than the one this
		// component checks (e.g. "straße" -> "strasse"): never usable.
		return jid.JID{}, fe.detail()
	case err != nil:
		return jid.JID{}, fmt.Sprintf("invalid JID %s: %v", quote(str), err)
	}
	// A JID that normalises to a string which parses differently (e.g. a
	// full-width solidus that maps to '/') is ambiguous: refuse it.
	if again, err := jid.Parse(j.String()); err != nil || !again.Equal(j) {
		return jid.JID{}, fmt.Sprintf("JID %s is not stable under RFC 7622 normalisation", quote(str))
	}
	return j, ""
}

// tagName names the universal string and other common ASN.1 types for
// BadAddr reasons.
func tagName(t cbasn1.Tag) string {
	switch t {
	case cbasn1.Tag(30):
		return "BMPString"
	case cbasn1.IA5String:
		return "IA5String"
	case cbasn1.PrintableString:
		return "PrintableString"
	case cbasn1.T61String:
		return "T61String"
	case cbasn1.Tag(28):
		return "UniversalString"
	case cbasn1.Tag(26):
		return "VisibleString"
	case cbasn1.OCTET_STRING:
		return "OCTET STRING"
	case cbasn1.UTF8String.Constructed():
		return "constructed UTF8String"
	}
	return fmt.Sprintf("ASN.1 tag 0x%02x", uint8(t))
}

// CertSANs finds and parses cert's subjectAltName extension. A certificate
// without one gives an empty *SANs and no error.
func CertSANs(cert *x509.Certificate) (*SANs, error) {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(OIDSubjectAltName) {
			s, err := ParseSAN(ext.Value)
			if err != nil {
				return nil, err
			}
			s.Critical = ext.Critical
			return s, nil
		}
	}
	return new(SANs), nil
}

// ParseCertificate parses der as exactly one certificate with no trailing
// bytes, and its SAN. If the SAN was critical and handled here, its OID is
// removed from cert.UnhandledCriticalExtensions (crypto/x509 lists an
// otherName-only critical SAN as unhandled).
//
// Errors wrap ErrMalformed or ErrTrailingData.
func ParseCertificate(der []byte) (*x509.Certificate, *SANs, error) {
	in := cryptobyte.String(der)
	var elem cryptobyte.String
	if !in.ReadASN1Element(&elem, cbasn1.SEQUENCE) {
		return nil, nil, fmt.Errorf("%w: not a DER SEQUENCE", ErrMalformed)
	}
	if !in.Empty() {
		return nil, nil, trailingError(in)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	sans, err := CertSANs(cert)
	if err != nil {
		return nil, nil, err
	}
	if sans.Critical {
		cert.UnhandledCriticalExtensions = slices.DeleteFunc(cert.UnhandledCriticalExtensions,
			func(oid asn1.ObjectIdentifier) bool { return oid.Equal(OIDSubjectAltName) })
	}
	return cert, sans, nil
}

// trailingDataError describes the bytes after the first certificate. It
// matches ErrTrailingData with errors.Is.
type trailingDataError struct {
	n     int  // number of trailing bytes
	chain bool // they start with another certificate
}

func (e *trailingDataError) Error() string {
	if e.chain {
		return fmt.Sprintf("%v: %d bytes follow the certificate, starting with another certificate (a chain?)", ErrTrailingData, e.n)
	}
	return fmt.Sprintf("%v: %d bytes follow the certificate", ErrTrailingData, e.n)
}

func (e *trailingDataError) Is(target error) bool { return target == ErrTrailingData }

func trailingError(rest cryptobyte.String) error {
	e := &trailingDataError{n: len(rest)}
	var next cryptobyte.String
	if rest.ReadASN1Element(&next, cbasn1.SEQUENCE) {
		_, err := x509.ParseCertificate(next)
		e.chain = err == nil
	}
	return e
}
