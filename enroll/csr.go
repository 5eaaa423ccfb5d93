package enroll

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
)

// ParseCSR reads a PKCS#10 certificate request sent as text: one PEM block
// "CERTIFICATE REQUEST" (or "NEW CERTIFICATE REQUEST"), or the bare base64
// of the DER. It does not check the request (CheckCSR does). Errors wrap
// ErrBadRequest.
func ParseCSR(text string) (*x509.CertificateRequest, error) {
	if len(text) > MaxCSRSize {
		return nil, fmt.Errorf("%w: the CSR is larger than %d bytes", ErrBadRequest, MaxCSRSize)
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, fmt.Errorf("%w: the CSR is empty", ErrBadRequest)
	}
	var der []byte
	if strings.HasPrefix(text, "-----BEGIN") {
		b, rest := pem.Decode([]byte(text))
		switch {
		case b == nil:
			return nil, fmt.Errorf("%w: the CSR is not valid PEM", ErrBadRequest)
		case b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST":
			return nil, fmt.Errorf("%w: the PEM block is a %q, not a CERTIFICATE REQUEST", ErrBadRequest, b.Type)
		case strings.TrimSpace(string(rest)) != "":
			return nil, fmt.Errorf("%w: more than one PEM block; send one CERTIFICATE REQUEST", ErrBadRequest)
		}
		der = b.Bytes
	} else {
		var err error
		der, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
		if err != nil {
			return nil, fmt.Errorf("%w: the CSR is neither PEM nor base64", ErrBadRequest)
		}
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: the CSR cannot be parsed: %v", ErrBadRequest, err)
	}
	return csr, nil
}
