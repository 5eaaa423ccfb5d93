package enroll

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
)

// ParseCertsPEM parses every CERTIFICATE block of data, in order, skipping
// blocks of other types. It fails if a certificate cannot be parsed or if
// there is none.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}
