package est

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// oidSignedData is id-signedData (RFC 5652 §5.1).
var oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}

// ErrPKCS7 wraps every failure to read a certs-only PKCS#7 message.
var ErrPKCS7 = errors.New("est: bad PKCS#7 certs-only message")

// decodeBase64 decodes an EST body: base64 with any line breaks or spaces
// (RFC 7030 §4.1.3, RFC 8951: always base64, whatever the
// Content-Transfer-Encoding header says).
func decodeBase64(body []byte) ([]byte, error) {
	s := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, string(body))
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64: %v", ErrPKCS7, err)
	}
	return der, nil
}

// parseCertsOnly reads the certificates of a DER "degenerate" PKCS#7
// SignedData (certs-only: no content, no signers needed), in their order:
//
//	ContentInfo ::= SEQUENCE { contentType OID id-signedData, content [0] EXPLICIT SignedData }
//	SignedData ::= SEQUENCE { version INTEGER, digestAlgorithms SET, encapContentInfo SEQUENCE,
//	                          certificates [0] IMPLICIT SET OF CertificateChoices OPTIONAL,
//	                          crls [1] IMPLICIT ... OPTIONAL, signerInfos SET }
//
// CertificateChoices other than a plain Certificate (attribute and other
// certificate formats) are skipped. BER (indefinite lengths) is refused.
func parseCertsOnly(der []byte) ([]*x509.Certificate, error) {
	in := cryptobyte.String(der)
	var ci, content, sd cryptobyte.String
	var oid asn1.ObjectIdentifier
	switch {
	case !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty():
		return nil, fmt.Errorf("%w: not one DER ContentInfo (BER is not supported)", ErrPKCS7)
	case !ci.ReadASN1ObjectIdentifier(&oid):
		return nil, fmt.Errorf("%w: no content type", ErrPKCS7)
	case !oid.Equal(oidSignedData):
		return nil, fmt.Errorf("%w: content type %s, want signedData", ErrPKCS7, oid)
	case !ci.ReadASN1(&content, cbasn1.Tag(0).Constructed().ContextSpecific()) || !ci.Empty():
		return nil, fmt.Errorf("%w: no [0] content", ErrPKCS7)
	case !content.ReadASN1(&sd, cbasn1.SEQUENCE) || !content.Empty():
		return nil, fmt.Errorf("%w: content is not one SignedData", ErrPKCS7)
	}
	var version cryptobyte.String
	switch {
	case !sd.ReadASN1(&version, cbasn1.INTEGER):
		return nil, fmt.Errorf("%w: SignedData has no version", ErrPKCS7)
	case !sd.SkipASN1(cbasn1.SET):
		return nil, fmt.Errorf("%w: SignedData has no digestAlgorithms", ErrPKCS7)
	case !sd.SkipASN1(cbasn1.SEQUENCE):
		return nil, fmt.Errorf("%w: SignedData has no encapContentInfo", ErrPKCS7)
	}
	var certs []*x509.Certificate
	var set cryptobyte.String
	var present bool
	if !sd.ReadOptionalASN1(&set, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, fmt.Errorf("%w: bad certificates field", ErrPKCS7)
	}
	for i := 0; present && !set.Empty(); i++ {
		var elem cryptobyte.String
		var tag cbasn1.Tag
		if !set.ReadAnyASN1Element(&elem, &tag) {
			return nil, fmt.Errorf("%w: certificate %d is not well-formed DER", ErrPKCS7, i)
		}
		if tag != cbasn1.SEQUENCE {
			continue // an attribute certificate or other format
		}
		c, err := x509.ParseCertificate(elem)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrPKCS7, i, err)
		}
		certs = append(certs, c)
	}
	if !sd.SkipOptionalASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return nil, fmt.Errorf("%w: bad crls field", ErrPKCS7)
	}
	if !sd.SkipASN1(cbasn1.SET) || !sd.Empty() {
		return nil, fmt.Errorf("%w: bad signerInfos or trailing data", ErrPKCS7)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no certificates", ErrPKCS7)
	}
	return certs, nil
}
