package enroll

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/sasl"
)

// Extensions a CSR may request (anything else is refused: a CA that copies
// extensions must not be talked into issuing a CA or server certificate).
var (
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidSubjectKeyID     = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidCommonName       = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// CheckCSR decides whether csr may be sent to a CA for account (a bare JID):
//   - its signature verifies (proof of possession; SHA-1 and MD5 fail);
//   - its key is acceptable under sasl.DefaultPolicy() (RSA >= 2048 bits,
//     ECDSA P-256/384/521, Ed25519; Service applies the configured policy,
//     ServiceConfig.KeyPolicy, on top);
//   - its subject holds nothing but CN=<account> and the emailAddress
//     <account>, each at most once (or is empty);
//   - it requests no subjectAltName, or exactly one: an id-on-xmppAddr
//     UTF8String naming account in its normalised form, alone or followed
//     by the rfc822Name <account> (byte for byte what XMPPAddrSAN(account)
//     or ClientSAN(account) encodes), and nothing else: no DNS name, other
//     email, URI, IP address, other JID, UPN or other otherName;
//   - any email address it names (SAN or subject) is exactly the account's
//     bare JID (sasl.CheckEmails), refused with the email named otherwise;
//   - it carries no attribute but one PKCS#9 extensionRequest, read from
//     the raw request (requestedExtensions: crypto/x509 skips attributes
//     such as Microsoft's 1.3.6.1.4.1.311.2.1.14, whose extensions some CAs
//     copy into the certificate);
//   - it requests no extensions other than subjectAltName, subjectKeyId,
//     keyUsage without certSign/crlSign, extKeyUsage clientAuth only and
//     basicConstraints CA:FALSE.
//
// Errors wrap ErrBadRequest and say what to change.
func CheckCSR(csr *x509.CertificateRequest, account jid.JID) error {
	if err := CheckAccount(account); err != nil {
		return err
	}
	if csr == nil {
		return Errorf(ErrBadRequest, "no CSR")
	}
	if err := csr.CheckSignature(); err != nil {
		return Errorf(ErrBadRequest, "the CSR's signature does not verify: %v", err)
	}
	if err := policyRefusal(csr.PublicKey, sasl.DefaultPolicy()); err != nil {
		return err
	}
	if r := sasl.CheckEmails(csr.EmailAddresses, csr.Subject, account); r != nil {
		return Errorf(ErrBadRequest, "%s", r.Detail)
	}
	if err := checkSubject(csr.Subject, account); err != nil {
		return err
	}
	exts, err := requestedExtensions(csr.RawTBSCertificateRequest)
	if err != nil {
		return err
	}
	var sans int
	for _, ext := range exts {
		switch {
		case ext.Id.Equal(sasl.OIDSubjectAltName):
			sans++
			if sans > 1 {
				return Errorf(ErrBadRequest, "the CSR requests more than one subjectAltName extension")
			}
			if err := checkSAN(ext.Value, csr.EmailAddresses, account); err != nil {
				return err
			}
		case ext.Id.Equal(oidSubjectKeyID):
		case ext.Id.Equal(oidKeyUsage):
			if err := checkRequestedKeyUsage(ext); err != nil {
				return err
			}
		case ext.Id.Equal(oidExtKeyUsage):
			if err := checkRequestedEKU(ext); err != nil {
				return err
			}
		case ext.Id.Equal(oidBasicConstraints):
			if err := checkRequestedBasicConstraints(ext); err != nil {
				return err
			}
		default:
			return Errorf(ErrBadRequest, "the CSR requests the extension %s; only subjectAltName, keyUsage, extKeyUsage, basicConstraints and subjectKeyIdentifier are allowed", ext.Id)
		}
	}
	return nil
}

// CheckSelfSigned checks a self-signed certificate offered as proof of
// possession of its key (the embedded CA then signs its public key for
// account): sasl.CheckUpload must accept it for account at now under
// sasl.DefaultPolicy() (one DER certificate, valid, an xmppAddr naming the
// account, an acceptable key and signature algorithm, not a CA, clientAuth
// allowed), its xmppAddr must not force a resource (the issued certificate
// names the bare account and would lift that restriction), and its
// self-signature must verify over its own TBSCertificate with its own key.
// Its subject and other names do not matter: nothing is copied from it but
// the public key. It returns the parsed certificate. Errors wrap
// ErrBadRequest.
//
// The signature is checked with CheckSignature on the raw TBSCertificate,
// not CheckSignatureFrom (which refuses issuers that are not CAs).
func CheckSelfSigned(der []byte, account jid.JID, now time.Time) (*x509.Certificate, error) {
	if err := CheckAccount(account); err != nil {
		return nil, err
	}
	up, err := sasl.CheckUpload(der, account, now, sasl.DefaultPolicy())
	if err != nil {
		return nil, Errorf(ErrBadRequest, "the self-signed certificate: %v", err)
	}
	cert := up.Cert
	if up.Resource != "" {
		return nil, Errorf(ErrBadRequest, "the self-signed certificate is restricted to the resource %q; a CA-issued certificate would name the bare account %s", up.Resource, account)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, Errorf(ErrBadRequest, "the certificate's self-signature does not verify (no proof of possession of its key): %v", err)
	}
	return cert, nil
}

// CheckIssued decides whether chain (DER, leaf first) is a certificate
// saslcert may store for account: sasl.CheckUpload accepts the leaf at now
// under sasl.DefaultPolicy(); it carries one xmppAddr equal to the bare
// account and no other name but, optionally, the email address <account>
// (CheckUpload refuses any other email); it is no CA (basicConstraints CA:TRUE), its key usage
// has neither keyCertSign nor cRLSign, and its extended key usage is
// clientAuth and nothing else (a CA that copies requested extensions, or a
// profile that adds serverAuth, codeSigning, OCSPSigning or anyExtendedKeyUsage,
// is refused); its key is
// pub (when pub is not nil); and, when roots is not empty, it verifies for
// clientAuth through chain[1:] to one of roots. Errors wrap ErrBadIssued.
//
// Issuers call it on everything a CA returns, so that a misconfigured
// external CA cannot make saslcert store a certificate with other names.
func CheckIssued(chain [][]byte, account jid.JID, pub crypto.PublicKey, now time.Time, roots []*x509.Certificate) (*Issued, error) {
	return CheckIssuedWith(chain, account, pub, now, roots, IssuedOptions{})
}

// IssuedOptions relax CheckIssuedWith where a CA's profile cannot be
// changed. The zero value is CheckIssued.
type IssuedOptions struct {
	// AllowServerAuth accepts the extended key usage serverAuth next to
	// clientAuth, for EST CAs that add it to every certificate (the
	// certificate names nothing but the account's xmppAddr, no DNS name a
	// TLS client would take it for). Nothing else beside clientAuth is ever
	// accepted.
	AllowServerAuth bool
}

// CheckIssuedWith is CheckIssued relaxed by o.
func CheckIssuedWith(chain [][]byte, account jid.JID, pub crypto.PublicKey, now time.Time, roots []*x509.Certificate, o IssuedOptions) (*Issued, error) {
	allowedEKU := func(u x509.ExtKeyUsage) bool {
		return u == x509.ExtKeyUsageClientAuth || (o.AllowServerAuth && u == x509.ExtKeyUsageServerAuth)
	}
	if len(chain) == 0 {
		return nil, Errorf(ErrBadIssued, "no certificate")
	}
	up, err := sasl.CheckUpload(chain[0], account, now, sasl.DefaultPolicy())
	if err != nil {
		return nil, Errorf(ErrBadIssued, "%v", err)
	}
	cert := up.Cert
	n, err := countGeneralNames(cert)
	switch {
	case err != nil:
		return nil, Errorf(ErrBadIssued, "%v", err)
	case up.Resource != "":
		return nil, Errorf(ErrBadIssued, "its xmppAddr is the full JID %s/%s, not the account", account, up.Resource)
	case len(up.SANs.XMPPAddrs) != 1 || len(cert.EmailAddresses) > 1 || n != 1+len(cert.EmailAddresses):
		return nil, Errorf(ErrBadIssued, "it carries %d subjectAltName entries (%s); want exactly one xmppAddr %s, and at most the email address %s besides", n, describeNames(up.SANs, cert.EmailAddresses, cert.URIs, len(cert.IPAddresses), n), account, account)
	case !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth):
		return nil, Errorf(ErrBadIssued, "its extended key usage does not include clientAuth")
	case cert.BasicConstraintsValid && cert.IsCA:
		return nil, Errorf(ErrBadIssued, "it is a CA certificate (basicConstraints CA:TRUE)")
	case cert.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0:
		return nil, Errorf(ErrBadIssued, "its key usage includes keyCertSign or cRLSign")
	case len(cert.UnknownExtKeyUsage) > 0 || slices.ContainsFunc(cert.ExtKeyUsage, func(u x509.ExtKeyUsage) bool { return !allowedEKU(u) }):
		return nil, Errorf(ErrBadIssued, "its extended key usage allows more than clientAuth")
	}
	if pub != nil {
		k, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !k.Equal(pub) {
			return nil, Errorf(ErrBadIssued, "it certifies another key than the one in the request")
		}
	}
	certs := []*x509.Certificate{cert}
	for i, der := range chain[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, Errorf(ErrBadIssued, "chain certificate %d: %v", i+1, err)
		}
		certs = append(certs, c)
	}
	if len(roots) > 0 {
		opts := x509.VerifyOptions{
			Roots:         x509.NewCertPool(),
			Intermediates: x509.NewCertPool(),
			CurrentTime:   now,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		for _, r := range roots {
			opts.Roots.AddCert(r)
		}
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cert.Verify(opts); err != nil {
			return nil, Errorf(ErrBadIssued, "it does not chain to the issuer's roots: %v", err)
		}
	}
	out := make([][]byte, len(chain))
	out[0] = up.DER
	for i := 1; i < len(chain); i++ {
		out[i] = bytes.Clone(chain[i])
	}
	return &Issued{Chain: out, Cert: cert, Upload: up}, nil
}

// policyRefusal refuses a key the policy p refuses (sasl.Policy.CheckKey, the
// one key check uploads and logins use too), before a CA signs it. The error
// wraps ErrBadRequest.
func policyRefusal(pub crypto.PublicKey, p sasl.Policy) error {
	if r := p.CheckKey(pub); r != nil {
		return Errorf(ErrBadRequest, "%s", r.Detail)
	}
	return nil
}

// checkSubject allows an empty subject, or CN=<account> and the
// emailAddress <account>, each at most once (CheckEmails has refused other
// email addresses).
func checkSubject(subject pkix.Name, account jid.JID) error {
	want := account.String()
	var cns, emails int
	for _, atv := range subject.Names {
		switch {
		case atv.Type.Equal(sasl.OIDEmailAddress):
			emails++
		case !atv.Type.Equal(oidCommonName):
			return Errorf(ErrBadRequest, "the subject has the attribute %s; only CN=%s and emailAddress=%s are allowed (or an empty subject)", atv.Type, want, want)
		default:
			cns++
			if s, ok := atv.Value.(string); !ok || s != want {
				return Errorf(ErrBadRequest, "the subject's CN is %q; it must be %q (or absent)", fmt.Sprint(atv.Value), want)
			}
		}
	}
	if cns > 1 {
		return Errorf(ErrBadRequest, "the subject has %d CNs; at most one, %s, is allowed", cns, want)
	}
	if emails > 1 {
		return Errorf(ErrBadRequest, "the subject has %d emailAddress attributes; at most one, %s, is allowed", emails, want)
	}
	return nil
}

// checkSAN allows a subjectAltName that is byte for byte the one
// XMPPAddrSAN(account) or ClientSAN(account) encodes, and explains anything
// else.
func checkSAN(value []byte, emails []string, account jid.JID) error {
	const what = "the CSR requests"
	want, err := XMPPAddrSAN(account)
	if err != nil {
		return Errorf(ErrBadRequest, "%v", err)
	}
	withEmail, err := ClientSAN(account)
	if err != nil {
		return Errorf(ErrBadRequest, "%v", err)
	}
	if bytes.Equal(value, want) || bytes.Equal(value, withEmail) {
		return nil
	}
	sans, err := sasl.ParseSAN(value)
	if err != nil {
		return Errorf(ErrBadRequest, "the requested subjectAltName is malformed: %v", err)
	}
	n, err := countNames(value)
	if err != nil {
		return Errorf(ErrBadRequest, "the requested subjectAltName is malformed: %v", err)
	}
	if n == 1 && len(sans.XMPPAddrs) == 1 && sans.XMPPAddrs[0].Equal(account) && len(sans.BadAddrs) == 0 {
		// Same JID, different spelling: a CA that copies the SAN would issue
		// a name other software may compare byte for byte.
		return Errorf(ErrBadRequest, "the requested xmppAddr must be spelt %q, exactly as normalised", account.String())
	}
	if n == 0 {
		return Errorf(ErrBadRequest, "%s an empty subjectAltName; only the xmppAddr %s, optionally followed by the email address %s (or no subjectAltName), is allowed", what, account, account)
	}
	return Errorf(ErrBadRequest, "%s the names %s; only the xmppAddr %s, optionally followed by the email address %s (or no subjectAltName), is allowed", what, describeNames(sans, emails, nil, 0, n), account, account)
}

// describeNames lists the names in a SAN of n entries for an error message.
func describeNames(s *sasl.SANs, emails []string, uris []*url.URL, ips, n int) string {
	var parts []string
	for _, j := range s.XMPPAddrs {
		parts = append(parts, "xmppAddr "+j.String())
	}
	for _, b := range s.BadAddrs {
		parts = append(parts, "unusable xmppAddr ("+b.Reason+")")
	}
	for _, o := range s.OtherNames {
		parts = append(parts, "otherName "+o.OID.String())
	}
	for _, d := range s.DNSNames {
		parts = append(parts, "DNS "+d)
	}
	for _, e := range emails {
		parts = append(parts, "email "+e)
	}
	for _, u := range uris {
		parts = append(parts, "URI "+u.String())
	}
	if ips > 0 {
		parts = append(parts, fmt.Sprintf("%d IP addresses", ips))
	}
	if k := n - len(parts) + max(ips-1, 0); k > 0 {
		noun := "entries"
		if k == 1 {
			noun = "entry"
		}
		parts = append(parts, fmt.Sprintf("%d %s of another kind (email, URI, IP address, directory name, registeredID, ...)", k, noun))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// countNames counts the GeneralNames in a subjectAltName value, of every
// kind (crypto/x509 and sasl.ParseSAN skip some kinds).
func countNames(value []byte) (int, error) {
	in := cryptobyte.String(value)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return 0, errors.New("not one DER SEQUENCE")
	}
	n := 0
	for !seq.Empty() {
		var gn cryptobyte.String
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1(&gn, &tag) {
			return 0, errors.New("an entry is not well-formed DER")
		}
		n++
	}
	return n, nil
}

// countGeneralNames counts the names in cert's subjectAltName (0 if none).
func countGeneralNames(cert *x509.Certificate) (int, error) {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(sasl.OIDSubjectAltName) {
			return countNames(ext.Value)
		}
	}
	return 0, nil
}

// checkRequestedKeyUsage refuses a keyUsage asking for certSign or crlSign.
func checkRequestedKeyUsage(ext pkix.Extension) error {
	var bits asn1.BitString
	if rest, err := asn1.Unmarshal(ext.Value, &bits); err != nil || len(rest) > 0 {
		return Errorf(ErrBadRequest, "the requested keyUsage is malformed")
	}
	// keyCertSign is bit 5, cRLSign bit 6 (RFC 5280 §4.2.1.3).
	if bits.At(5) != 0 || bits.At(6) != 0 {
		return Errorf(ErrBadRequest, "the CSR requests the key usage keyCertSign or cRLSign; a client certificate cannot sign certificates")
	}
	return nil
}

// oidClientAuth is id-kp-clientAuth.
var oidClientAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}

// checkRequestedEKU allows an extKeyUsage holding only clientAuth.
func checkRequestedEKU(ext pkix.Extension) error {
	var oids []asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(ext.Value, &oids); err != nil || len(rest) > 0 {
		return Errorf(ErrBadRequest, "the requested extKeyUsage is malformed")
	}
	for _, o := range oids {
		if !o.Equal(oidClientAuth) {
			return Errorf(ErrBadRequest, "the CSR requests the extended key usage %s; only clientAuth is allowed", o)
		}
	}
	return nil
}

// checkRequestedBasicConstraints allows basicConstraints with CA:FALSE.
func checkRequestedBasicConstraints(ext pkix.Extension) error {
	var bc struct {
		IsCA       bool `asn1:"optional"`
		MaxPathLen int  `asn1:"optional,default:-1"`
	}
	if rest, err := asn1.Unmarshal(ext.Value, &bc); err != nil || len(rest) > 0 {
		return Errorf(ErrBadRequest, "the requested basicConstraints is malformed")
	}
	if bc.IsCA {
		return Errorf(ErrBadRequest, "the CSR requests a CA certificate (basicConstraints CA:TRUE)")
	}
	return nil
}
