// Package catest runs real CA servers for enrollment tests and makes the
// CSRs those tests send.
//
// StartStepCA runs step-ca (smallstep/certificates v0.30.2) and StartEST the
// globalsign/est test server (v1.0.6), each as a child process on 127.0.0.1
// with a configuration generated in a temporary directory, keys made at test
// time, and a cleanup that stops the process. scripts/install-ca-tools.sh
// installs both into $(go env GOPATH)/bin. When a binary is missing the test
// is skipped, unless the environment variable SASLCERT_REQUIRE_CA_TOOLS is
// set (make test sets it), in which case it fails.
package catest

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/certtest"
)

// CSROptions describe a certificate request. The zero value is a request
// with an empty subject and no extensions, signed with the process-wide
// P-256 key of certtest. A subjectAltName in XMPPAddr or RawSAN replaces the
// one crypto/x509 would make from DNSNames and Emails (to combine them, build
// RawSAN with certtest.SAN).
type CSROptions struct {
	Key        crypto.Signer // nil: certtest.Key(ECDSAP256)
	CommonName string
	// XMPPAddr, if set, is requested as the one id-on-xmppAddr (encoded
	// with enroll.XMPPAddrSAN).
	XMPPAddr string
	// RawSAN, if set, is the subjectAltName extension value instead.
	RawSAN   []byte
	DNSNames []string
	Emails   []string
	// SubjectEmail, if set, is a PKCS#9 emailAddress attribute in the subject.
	SubjectEmail string
	// Extensions are added as requested extensions.
	Extensions []pkix.Extension
	SigAlg     x509.SignatureAlgorithm
}

// NewCSR makes and parses a certificate request.
func NewCSR(tb testing.TB, o CSROptions) *x509.CertificateRequest {
	tb.Helper()
	if o.Key == nil {
		o.Key = certtest.Key(tb, certtest.ECDSAP256)
	}
	tmpl := &x509.CertificateRequest{
		Subject:            pkix.Name{CommonName: o.CommonName},
		DNSNames:           o.DNSNames,
		EmailAddresses:     o.Emails,
		SignatureAlgorithm: o.SigAlg,
		ExtraExtensions:    o.Extensions,
	}
	if o.SubjectEmail != "" {
		tmpl.Subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: o.SubjectEmail}}
	}
	san := o.RawSAN
	if san == nil && o.XMPPAddr != "" {
		j, err := jid.Parse(o.XMPPAddr)
		if err != nil {
			tb.Fatal(err)
		}
		if san, err = enroll.XMPPAddrSAN(j); err != nil {
			tb.Fatal(err)
		}
	}
	if san != nil {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: certtest.OIDSubjectAltName, Value: san})
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, o.Key)
	if err != nil {
		tb.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		tb.Fatal(err)
	}
	return csr
}

// CSRPEM encodes csr as PEM.
func CSRPEM(csr *x509.CertificateRequest) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw})
}
