package main

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// certReport is what "cert inspect" says about one certificate. Its JSON
// form is the --json output, one object per line; the field names are part
// of the CLI's interface: add fields, never rename them. Lists are never
// null.
type certReport struct {
	File               string      `json:"file"`  // as given on the command line; "(stdin)" for -
	Index              int         `json:"index"` // 1-based, among the certificates in File
	Count              int         `json:"count"` // certificates in File
	Fingerprint        string      `json:"fingerprint"`
	Subject            string      `json:"subject"`
	Issuer             string      `json:"issuer"`
	Serial             string      `json:"serial"` // upper-case hex, as openssl x509 -serial
	NotBefore          time.Time   `json:"not_before"`
	NotAfter           time.Time   `json:"not_after"`
	Validity           string      `json:"validity"`      // "valid", "expired" or "not-yet-valid" at the clock's now
	ValidityDays       int64       `json:"validity_days"` // days left, days since expiry, or days until valid
	KeyType            string      `json:"key_type"`      // RSA, ECDSA, Ed25519, X25519, or crypto/x509's name
	KeyBits            int         `json:"key_bits"`      // 0 if unknown
	KeyCurve           string      `json:"key_curve,omitempty"`
	SignatureAlgorithm string      `json:"signature_algorithm"`
	CA                 bool        `json:"ca"`
	KeyUsage           []string    `json:"key_usage"`     // empty: no keyUsage extension
	ExtKeyUsage        []string    `json:"ext_key_usage"` // empty: no EKU, any use
	XMPPAddrs          []string    `json:"xmpp_addrs"`    // usable, normalised
	BadXMPPAddrs       []badAddr   `json:"bad_xmpp_addrs"`
	OtherNames         []otherName `json:"other_names"`
	DNSNames           []string    `json:"dns_names"`
	Emails             []string    `json:"emails"` // rfc822Name entries: usable only if they are the account's bare JID
	SAN                string      `json:"san"`    // "none", "critical" or "not critical"
	Verdict            *verdict    `json:"verdict,omitempty"`
}

// badAddr is an id-on-xmppAddr that cannot be used.
type badAddr struct {
	Type   string `json:"type"`  // ASN.1 type of the value, e.g. "BMPString"
	Value  string `json:"value"` // decoded text, "" if the value is not a string
	DER    string `json:"der"`   // hex DER of the value
	Reason string `json:"reason"`
}

// otherName is an otherName SAN entry that is not an id-on-xmppAddr.
type otherName struct {
	OID   string `json:"oid"`
	Name  string `json:"name,omitempty"` // for well-known OIDs
	Type  string `json:"type"`           // ASN.1 type of the value
	Value string `json:"value,omitempty"`
	DER   string `json:"der"` // hex DER of the value
}

// verdict says whether the certificate may be uploaded for JID.
type verdict struct {
	JID      string `json:"jid"`
	Usable   bool   `json:"usable"`
	Resource string `json:"resource,omitempty"` // forced resource, if usable
	Reason   string `json:"reason,omitempty"`   // sasl.Reason, if not usable
	Detail   string `json:"detail,omitempty"`
}

// wellKnownOtherNames names the otherName types inspect recognises.
var wellKnownOtherNames = map[string]string{
	"1.3.6.1.4.1.311.20.2.3": "Microsoft UPN",
	"1.3.6.1.5.5.7.8.3":      "permanentIdentifier",
	"1.3.6.1.5.5.7.8.4":      "hardwareModuleName",
	"1.3.6.1.5.5.7.8.7":      "SRVName",
	"1.3.6.1.5.5.7.8.9":      "SmtpUTF8Mailbox",
}

// describe builds the report for cert (parsed from der, with sans) at now.
func describe(cert *x509.Certificate, sans *sasl.SANs, der []byte, now time.Time) *certReport {
	r := &certReport{
		Fingerprint:        storage.FingerprintOf(der).String(),
		Subject:            dnString(cert.RawSubject, cert.Subject),
		Issuer:             dnString(cert.RawIssuer, cert.Issuer),
		Serial:             fmt.Sprintf("%X", cert.SerialNumber),
		NotBefore:          cert.NotBefore.UTC(),
		NotAfter:           cert.NotAfter.UTC(),
		SignatureAlgorithm: cert.SignatureAlgorithm.String(),
		CA:                 cert.BasicConstraintsValid && cert.IsCA,
		KeyUsage:           keyUsageNames(cert.KeyUsage),
		ExtKeyUsage:        extKeyUsageNames(cert),
		XMPPAddrs:          []string{},
		BadXMPPAddrs:       []badAddr{},
		OtherNames:         []otherName{},
		DNSNames:           append([]string{}, sans.DNSNames...),
		Emails:             append([]string{}, cert.EmailAddresses...),
		SAN:                "none",
	}
	r.Validity, r.ValidityDays = validity(cert.NotBefore, cert.NotAfter, now)
	r.KeyType, r.KeyBits, r.KeyCurve = describeKey(cert)
	for _, j := range sans.XMPPAddrs {
		r.XMPPAddrs = append(r.XMPPAddrs, j.String())
	}
	for _, b := range sans.BadAddrs {
		typ, text, _ := asn1String(b.Value)
		r.BadXMPPAddrs = append(r.BadXMPPAddrs, badAddr{Type: typ, Value: text, DER: hex.EncodeToString(b.Value), Reason: b.Reason})
	}
	for _, o := range sans.OtherNames {
		oid := o.OID.String()
		typ, text, ok := asn1String(o.Value)
		if !ok || !isPrintable(text) {
			text = ""
		}
		r.OtherNames = append(r.OtherNames, otherName{OID: oid, Name: wellKnownOtherNames[oid], Type: typ, Value: text, DER: hex.EncodeToString(o.Value)})
	}
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(sasl.OIDSubjectAltName) {
			r.SAN = "not critical"
			if ext.Critical {
				r.SAN = "critical"
			}
		}
	}
	return r
}

// validity classifies now against [notBefore, notAfter] and counts whole
// days (without time.Duration, which overflows after 292 years).
func validity(notBefore, notAfter, now time.Time) (string, int64) {
	const day = 24 * 60 * 60
	switch {
	case now.Before(notBefore):
		return "not-yet-valid", (notBefore.Unix() - now.Unix()) / day
	case now.After(notAfter):
		return "expired", (now.Unix() - notAfter.Unix()) / day
	}
	return "valid", (notAfter.Unix() - now.Unix()) / day
}

// validityText is the readable form of validity's result.
func validityText(state string, days int64) string {
	n := strconv.FormatInt(days, 10)
	plural := "s"
	if days == 1 {
		plural = ""
	}
	switch {
	case state == "not-yet-valid" && days == 0:
		return "not yet valid (valid in less than a day)"
	case state == "not-yet-valid":
		return "not yet valid (valid in " + n + " day" + plural + ")"
	case state == "expired" && days == 0:
		return "expired less than a day ago"
	case state == "expired":
		return "expired " + n + " day" + plural + " ago"
	case days == 0:
		return "valid for less than a day more"
	}
	return "valid for " + n + " more day" + plural
}

// describeKey returns the type, size in bits and curve name of cert's key.
func describeKey(cert *x509.Certificate) (typ string, bits int, curve string) {
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen(), ""
	case *ecdsa.PublicKey:
		p := k.Curve.Params()
		return "ECDSA", p.BitSize, p.Name
	case ed25519.PublicKey:
		return "Ed25519", 256, ""
	case *ecdh.PublicKey:
		if k.Curve() == ecdh.X25519() {
			return "X25519", 256, ""
		}
	}
	return cert.PublicKeyAlgorithm.String(), 0, ""
}

// keyText is the readable form of describeKey's result.
func (r *certReport) keyText() string {
	switch {
	case r.KeyCurve != "":
		return r.KeyType + " " + r.KeyCurve
	case r.KeyType == "RSA":
		return "RSA " + strconv.Itoa(r.KeyBits)
	}
	return r.KeyType
}

// keyUsageNames lists ku's bits with their RFC 5280 names.
func keyUsageNames(ku x509.KeyUsage) []string {
	names := []string{"digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment",
		"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}
	out := []string{}
	for i, name := range names {
		if ku&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// extKeyUsageNames lists cert's extended key usages by their usual names;
// unknown ones by OID.
func extKeyUsageNames(cert *x509.Certificate) []string {
	names := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageAny:                            "any",
		x509.ExtKeyUsageServerAuth:                     "serverAuth",
		x509.ExtKeyUsageClientAuth:                     "clientAuth",
		x509.ExtKeyUsageCodeSigning:                    "codeSigning",
		x509.ExtKeyUsageEmailProtection:                "emailProtection",
		x509.ExtKeyUsageIPSECEndSystem:                 "ipsecEndSystem",
		x509.ExtKeyUsageIPSECTunnel:                    "ipsecTunnel",
		x509.ExtKeyUsageIPSECUser:                      "ipsecUser",
		x509.ExtKeyUsageTimeStamping:                   "timeStamping",
		x509.ExtKeyUsageOCSPSigning:                    "OCSPSigning",
		x509.ExtKeyUsageMicrosoftServerGatedCrypto:     "msSGC",
		x509.ExtKeyUsageNetscapeServerGatedCrypto:      "nsSGC",
		x509.ExtKeyUsageMicrosoftCommercialCodeSigning: "msCodeCom",
		x509.ExtKeyUsageMicrosoftKernelCodeSigning:     "msKernelCodeSigning",
	}
	out := []string{}
	for _, u := range cert.ExtKeyUsage {
		if n, ok := names[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("unknown (%d)", u))
		}
	}
	for _, oid := range cert.UnknownExtKeyUsage {
		out = append(out, oid.String())
	}
	return out
}

// ASN.1 universal tags of the string types asn1String decodes.
const (
	tagUTF8String      = 12
	tagNumericString   = 18
	tagPrintableString = 19
	tagT61String       = 20
	tagIA5String       = 22
	tagVisibleString   = 26
	tagUniversalString = 28
	tagBMPString       = 30
)

// asn1String decodes der, one DER-encoded ASN.1 value, as a string. It
// returns the value's type ("UTF8String", "BMPString", "SEQUENCE", "[0]",
// ...), its text, and whether der is a well-formed string value.
func asn1String(der []byte) (typ, text string, ok bool) {
	var v asn1.RawValue
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil || len(rest) > 0 {
		return "malformed DER", "", false
	}
	typ = asn1TypeName(v)
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return typ, "", false
	}
	b := v.Bytes
	switch v.Tag {
	case tagUTF8String:
		if !utf8.Valid(b) {
			return typ, strings.ToValidUTF8(string(b), "\uFFFD"), false
		}
		return typ, string(b), true
	case tagNumericString, tagPrintableString, tagIA5String, tagVisibleString:
		for _, c := range b {
			if c >= 0x80 {
				return typ, strings.ToValidUTF8(string(b), "\uFFFD"), false
			}
		}
		return typ, string(b), true
	case tagT61String: // in practice Latin-1
		var s strings.Builder
		for _, c := range b {
			s.WriteRune(rune(c))
		}
		return typ, s.String(), true
	case tagBMPString:
		if len(b)%2 != 0 {
			return typ, "", false
		}
		var s strings.Builder
		for i := 0; i < len(b); i += 2 {
			s.WriteRune(rune(b[i])<<8 | rune(b[i+1]))
		}
		return typ, s.String(), true
	case tagUniversalString:
		if len(b)%4 != 0 {
			return typ, "", false
		}
		var s strings.Builder
		for i := 0; i < len(b); i += 4 {
			s.WriteRune(rune(b[i])<<24 | rune(b[i+1])<<16 | rune(b[i+2])<<8 | rune(b[i+3]))
		}
		return typ, s.String(), true
	}
	return typ, "", false
}

// asn1TypeName names the type of v.
func asn1TypeName(v asn1.RawValue) string {
	if v.Class != asn1.ClassUniversal {
		class := map[int]string{asn1.ClassApplication: "APPLICATION ", asn1.ClassContextSpecific: "", asn1.ClassPrivate: "PRIVATE "}[v.Class]
		return fmt.Sprintf("[%s%d]", class, v.Tag)
	}
	names := map[int]string{
		asn1.TagBoolean: "BOOLEAN", asn1.TagInteger: "INTEGER", asn1.TagBitString: "BIT STRING",
		asn1.TagOctetString: "OCTET STRING", asn1.TagNull: "NULL", asn1.TagOID: "OBJECT IDENTIFIER",
		asn1.TagEnum: "ENUMERATED", asn1.TagSequence: "SEQUENCE", asn1.TagSet: "SET",
		asn1.TagUTCTime: "UTCTime", asn1.TagGeneralizedTime: "GeneralizedTime",
		tagUTF8String: "UTF8String", tagNumericString: "NumericString", tagPrintableString: "PrintableString",
		tagT61String: "T61String", tagIA5String: "IA5String", tagVisibleString: "VisibleString",
		tagUniversalString: "UniversalString", tagBMPString: "BMPString",
	}
	if n, ok := names[v.Tag]; ok {
		return n
	}
	return fmt.Sprintf("universal tag %d", v.Tag)
}

// writeText writes r as a readable block.
func (r *certReport) writeText(w io.Writer) {
	line := func(label, value string) { fmt.Fprintf(w, "  %-20s %s\n", label+":", value) }
	fmt.Fprintf(w, "%s: certificate %d of %d\n", printable(r.File), r.Index, r.Count)
	line("fingerprint", r.Fingerprint)
	line("subject", orNone(printable(r.Subject), "(empty)"))
	line("issuer", orNone(printable(r.Issuer), "(empty)"))
	line("serial", r.Serial+" (hex)")
	line("not before", r.NotBefore.Format(time.DateTime+" MST"))
	line("not after", r.NotAfter.Format(time.DateTime+" MST"))
	line("validity", validityText(r.Validity, r.ValidityDays))
	line("key", r.keyText())
	line("signature algorithm", r.SignatureAlgorithm)
	line("CA", yesNo(r.CA))
	line("key usage", orNone(strings.Join(r.KeyUsage, ", "), "none (any use)"))
	line("extended key usage", orNone(strings.Join(r.ExtKeyUsage, ", "), "none (any use)"))
	line("subjectAltName", r.SAN)
	if len(r.XMPPAddrs) == 0 {
		line("xmppAddr", "none")
	}
	for _, a := range r.XMPPAddrs {
		line("xmppAddr", withASCII(a))
	}
	for _, b := range r.BadXMPPAddrs {
		v := b.Type
		if b.Value != "" {
			v += " " + strconv.Quote(b.Value)
		}
		line("bad xmppAddr", v+": "+printable(b.Reason))
	}
	for _, o := range r.OtherNames {
		v := o.OID
		if o.Name != "" {
			v += " (" + o.Name + ")"
		}
		if o.Value != "" {
			v += ": " + o.Type + " " + strconv.Quote(o.Value)
		} else {
			v += fmt.Sprintf(": %s, %d bytes, not a printable string", o.Type, len(o.DER)/2)
		}
		line("otherName", v)
	}
	if len(r.DNSNames) > 0 {
		names := make([]string, len(r.DNSNames))
		for i, n := range r.DNSNames {
			names[i] = printable(n)
		}
		line("DNS names", strings.Join(names, ", "))
	}
	if len(r.Emails) > 0 {
		names := make([]string, len(r.Emails))
		for i, n := range r.Emails {
			names[i] = printable(n)
		}
		line("email addresses", strings.Join(names, ", "))
	}
	if v := r.Verdict; v != nil {
		if v.Usable {
			fmt.Fprintf(w, "  verdict for %s: usable\n", withASCII(v.JID))
			if v.Resource != "" {
				line("forced resource", printable(v.Resource))
			}
		} else {
			fmt.Fprintf(w, "  verdict for %s: NOT usable: %s [%s]\n", withASCII(v.JID), printable(v.Detail), v.Reason)
		}
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}
