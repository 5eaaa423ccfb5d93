package enroll

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
)

// ParseCSR reads a PKCS#10 certificate request sent as text: one PEM block
// "CERTIFICATE REQUEST" (or "NEW CERTIFICATE REQUEST"), or the bare base64
// of the DER. It does not check the request (CheckCSR does). Errors wrap
// ErrBadRequest.
func ParseCSR(text string) (*x509.CertificateRequest, error) {
	if len(text) > MaxCSRSize {
		return nil, Errorf(ErrBadRequest, "the CSR is larger than %d bytes", MaxCSRSize)
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, Errorf(ErrBadRequest, "the CSR is empty")
	}
	var der []byte
	if strings.HasPrefix(text, "-----BEGIN") {
		b, rest := pem.Decode([]byte(text))
		switch {
		case b == nil:
			return nil, Errorf(ErrBadRequest, "the CSR is not valid PEM")
		case b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST":
			return nil, Errorf(ErrBadRequest, "the PEM block is a %q, not a CERTIFICATE REQUEST", b.Type)
		case strings.TrimSpace(string(rest)) != "":
			return nil, Errorf(ErrBadRequest, "more than one PEM block; send one CERTIFICATE REQUEST")
		}
		der = b.Bytes
	} else {
		var err error
		der, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
		if err != nil {
			return nil, Errorf(ErrBadRequest, "the CSR is neither PEM nor base64")
		}
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, Errorf(ErrBadRequest, "the CSR cannot be parsed: %v", err)
	}
	return csr, nil
}
