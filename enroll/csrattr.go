package enroll

import (
	"crypto/x509/pkix"
	"encoding/asn1"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// oidExtensionRequest is PKCS#9 extensionRequest (RFC 2985 §5.4.2), the only
// CSR attribute saslcert lets through.
var oidExtensionRequest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 14}

// requestedExtensions parses the attributes of a PKCS#10
// CertificationRequestInfo (RFC 2986 §4.1) itself, from its DER (the CSR's
// RawTBSCertificateRequest), and returns the extensions it requests.
//
// crypto/x509 cannot be relied on here: it ignores attributes it does not
// know (such as Microsoft's extension request 1.3.6.1.4.1.311.2.1.14, whose
// extensions some CAs copy), attributes that do not parse, and every value
// of an extensionRequest but the first. What a CA might read must be what
// CheckCSR checks, so anything but exactly one well-formed extensionRequest
// attribute holding exactly one SEQUENCE of extensions (or no attribute at
// all) is refused: another attribute, a second extensionRequest, a second
// value, a duplicated extension, trailing bytes. Errors wrap ErrBadRequest.
func requestedExtensions(rawTBS []byte) ([]pkix.Extension, error) {
	bad := func(what string) error {
		return Errorf(ErrBadRequest, "the CSR's %s; send a plain PKCS#10 request whose only attribute is extensionRequest", what)
	}
	in := cryptobyte.String(rawTBS)
	var info cryptobyte.String
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, bad("CertificationRequestInfo is not one DER SEQUENCE")
	}
	var version int64
	if !info.ReadASN1Integer(&version) || version != 0 {
		return nil, bad("version is not v1 (0)")
	}
	if !info.SkipASN1(cbasn1.SEQUENCE) {
		return nil, bad("subject is malformed")
	}
	if !info.SkipASN1(cbasn1.SEQUENCE) {
		return nil, bad("public key is malformed")
	}
	var attrs cryptobyte.String
	var present bool
	if !info.ReadOptionalASN1(&attrs, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) || !info.Empty() {
		return nil, bad("attributes are malformed or followed by other data")
	}
	var exts []pkix.Extension
	seenRequest := false
	for !attrs.Empty() {
		var attr, values cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&oid) ||
			!attr.ReadASN1(&values, cbasn1.SET) || !attr.Empty() {
			return nil, bad("attribute is malformed")
		}
		if !oid.Equal(oidExtensionRequest) {
			return nil, Errorf(ErrBadRequest, "the CSR carries the attribute %s; only extensionRequest (%s) is allowed", oid, oidExtensionRequest)
		}
		if seenRequest {
			return nil, bad("extensionRequest attribute appears twice")
		}
		seenRequest = true
		var list cryptobyte.String
		if !values.ReadASN1(&list, cbasn1.SEQUENCE) || !values.Empty() {
			return nil, bad("extensionRequest attribute does not hold exactly one list of extensions")
		}
		seen := make(map[string]bool)
		for !list.Empty() {
			var ext, value cryptobyte.String
			var e pkix.Extension
			if !list.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&e.Id) ||
				!ext.ReadOptionalASN1Boolean(&e.Critical, cbasn1.BOOLEAN, false) ||
				!ext.ReadASN1(&value, cbasn1.OCTET_STRING) || !ext.Empty() {
				return nil, bad("requested extension is malformed")
			}
			if seen[e.Id.String()] {
				return nil, Errorf(ErrBadRequest, "the CSR requests the extension %s twice", e.Id)
			}
			seen[e.Id.String()] = true
			e.Value = []byte(value)
			exts = append(exts, e)
		}
	}
	return exts, nil
}
