package sasl

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/storage"
)

// Policy is saslcert's key, signature and validity policy, configured once
// (saslcert serve's --min-rsa-bits and --clock-skew) and applied alike to
// uploads (CheckUpload), logins (Authorizer: ClockSkew to stored
// certificates, the key policy to trusted-root certificates) and enrollment
// (the CSR's key before a CA signs it, the issued certificate after). The
// zero value means the defaults for MinRSABits and no clock skew.
type Policy struct {
	// ClockSkew is allowed on both ends of a certificate's validity period.
	ClockSkew time.Duration
	// MinRSABits is the smallest acceptable RSA modulus (default 2048).
	MinRSABits int
}

// DefaultPolicy returns the default settings: 5 minutes of clock skew, RSA >= 2048.
func DefaultPolicy() Policy { return Policy{ClockSkew: 5 * time.Minute, MinRSABits: 2048} }

// Reason classifies why CheckUpload refused a certificate.
type Reason string

// Refusal reasons.
const (
	ReasonMalformed         Reason = "malformed"          // not one DER certificate
	ReasonTrailingData      Reason = "trailing-data"      // bytes after the certificate (e.g. a chain)
	ReasonExpired           Reason = "expired"            // notAfter (+ skew) is in the past
	ReasonNotYetValid       Reason = "not-yet-valid"      // notBefore (- skew) is in the future
	ReasonNoXMPPAddr        Reason = "no-xmppaddr"        // no usable id-on-xmppAddr at all
	ReasonBadXMPPAddr       Reason = "bad-xmppaddr"       // an xmppAddr that cannot be used next to usable ones
	ReasonWrongAccount      Reason = "wrong-account"      // usable xmppAddrs, none for this account
	ReasonWrongEmail        Reason = "wrong-email"        // an email address (SAN or subject) that is not the account's bare JID
	ReasonAmbiguousResource Reason = "ambiguous-resource" // several xmppAddrs for the account with different resources
	ReasonWeakKey           Reason = "weak-key"           // RSA < MinRSABits, unsupported curve, unknown key type
	ReasonWeakSignature     Reason = "weak-signature"     // MD5, SHA-1, DSA or unknown signature algorithm
	ReasonCA                Reason = "ca-certificate"     // basicConstraints CA:TRUE
	ReasonEKU               Reason = "no-client-auth"     // has an EKU that does not allow clientAuth
	ReasonCriticalExtension Reason = "critical-extension" // an unhandled critical extension remains
)

// RefusalError is CheckUpload's error. Detail is a sentence a person can act
// on; it is sent to clients as the stanza error text.
type RefusalError struct {
	Reason Reason
	Detail string
}

func (e *RefusalError) Error() string { return "sasl: certificate refused: " + e.Detail }

// Upload is a certificate CheckUpload accepted for an account.
type Upload struct {
	Cert        *x509.Certificate
	DER         []byte
	Fingerprint storage.Fingerprint
	Account     jid.JID // bare
	Resource    string  // forced resource ("" if the matching xmppAddr is bare)
	SANs        *SANs
}

// CheckUpload decides whether der may be stored for account (a bare JID; a
// full JID is reduced to its bare part) at time now. It accepts a certificate
// only if der parses as exactly one certificate with no trailing bytes, is
// valid at now (within p.ClockSkew), carries an xmppAddr whose bare JID equals
// the account (a full JID records a forced resource), names no email address
// other than the account's bare JID (CheckEmails), has an acceptable key
// (RSA >= p.MinRSABits, ECDSA P-256/384/521, Ed25519), is not signed with MD5
// or SHA-1, is not a CA certificate and, if it has an EKU, allows clientAuth.
// Every refusal is a *RefusalError.
//
// The checks run in that order and the first failing one is reported. On
// top of the list above:
//   - every xmppAddr must be usable (a UTF8String holding a valid JID): a
//     certificate that also carries a broken one is refused (bad-xmppaddr),
//     so that no other software can read an identity into it that we ignored;
//   - the xmppAddrs naming the account must agree on the resource: all bare
//     (no forced resource), or all the same full JID (that resource is
//     forced). A bare and a full one, or two different resources, are
//     refused as ambiguous-resource rather than guessing which one was meant;
//   - p.MinRSABits <= 0 means 2048, a negative p.ClockSkew means none;
//   - the signature is not verified (self-signed certificates are fine,
//     XEP-0257 needs them) and no chain is built.
//
// der is copied; the Upload does not alias it. An account without a
// localpart is a caller error, returned as a plain error. An account the XMPP
// server reads differently (ParseJID) is refused as wrong-account.
func CheckUpload(der []byte, account jid.JID, now time.Time, p Policy) (*Upload, error) {
	account = account.Bare()
	if account.Localpart() == "" {
		return nil, fmt.Errorf("sasl: CheckUpload: account %q is not a JID with a localpart", account.String())
	}
	var fe *JIDFormError
	if err := CanonicalJID(account); errors.As(err, &fe) {
		return nil, refuse(ReasonWrongAccount, "certificates cannot be stored for this account: its %s is %s here but %s for the XMPP server",
			fe.Part, quote(fe.Component), serverForm(fe))
	} else if err != nil {
		return nil, fmt.Errorf("sasl: CheckUpload: account %q: %w", account.String(), err)
	}
	if len(der) == 0 {
		return nil, refuse(ReasonMalformed, "no certificate data was sent; upload one DER-encoded X.509 certificate")
	}
	der = bytes.Clone(der)
	cert, sans, err := ParseCertificate(der)
	if err != nil {
		var td *trailingDataError
		if errors.As(err, &td) {
			if td.chain {
				return nil, refuse(ReasonTrailingData, "the data holds more than one certificate (%d bytes follow the first); upload only your own certificate, not a chain", td.n)
			}
			return nil, refuse(ReasonTrailingData, "%d bytes follow the certificate; upload exactly one DER-encoded certificate and nothing else", td.n)
		}
		if bytes.HasPrefix(der, []byte("-----BEGIN")) {
			return nil, refuse(ReasonMalformed, "the data is PEM text, not a DER certificate; send the base64 lines between BEGIN and END, without them")
		}
		return nil, refuse(ReasonMalformed, "the data is not a valid X.509 certificate (%s); upload one DER-encoded certificate",
			strings.TrimPrefix(strings.TrimPrefix(err.Error(), ErrMalformed.Error()), ": "))
	}
	if r := checkValidity(cert, now, p.ClockSkew); r != nil {
		return nil, r
	}
	resource, r := checkIdentity(sans, account)
	if r != nil {
		return nil, r
	}
	if r := CheckEmails(cert.EmailAddresses, cert.Subject, account); r != nil {
		return nil, r
	}
	if r := p.checkCertKey(cert); r != nil {
		return nil, r
	}
	if r := checkSignature(cert); r != nil {
		return nil, r
	}
	if cert.BasicConstraintsValid && cert.IsCA {
		return nil, refuse(ReasonCA, "the certificate is a CA certificate (basicConstraints CA:TRUE); upload an end-entity client certificate")
	}
	if r := checkEKU(cert); r != nil {
		return nil, r
	}
	if len(cert.UnhandledCriticalExtensions) > 0 {
		oids := make([]string, len(cert.UnhandledCriticalExtensions))
		for i, oid := range cert.UnhandledCriticalExtensions {
			oids[i] = oid.String()
		}
		return nil, refuse(ReasonCriticalExtension, "the certificate has critical extensions that cannot be processed (%s); upload a certificate without them",
			strings.Join(oids, ", "))
	}
	return &Upload{
		Cert:        cert,
		DER:         der,
		Fingerprint: storage.FingerprintOf(der),
		Account:     account,
		Resource:    resource,
		SANs:        sans,
	}, nil
}

// timeFormat is how refusals print times.
const timeFormat = time.RFC3339

// checkValidity refuses a certificate that is not valid at now, allowing
// skew on both ends.
func checkValidity(cert *x509.Certificate, now time.Time, skew time.Duration) *RefusalError {
	skew = max(skew, 0)
	if now.After(cert.NotAfter.Add(skew)) {
		return refuse(ReasonExpired, "the certificate expired on %s; upload a certificate that is valid now",
			cert.NotAfter.UTC().Format(timeFormat))
	}
	if now.Before(cert.NotBefore.Add(-skew)) {
		return refuse(ReasonNotYetValid, "the certificate is not valid before %s; upload a certificate that is valid now (or check your clock)",
			cert.NotBefore.UTC().Format(timeFormat))
	}
	return nil
}

// checkIdentity finds the xmppAddrs naming account and returns the resource
// they force.
func checkIdentity(sans *SANs, account jid.JID) (string, *RefusalError) {
	acct := account.String()
	if len(sans.XMPPAddrs) == 0 {
		switch {
		case len(sans.BadAddrs) > 0:
			return "", refuse(ReasonNoXMPPAddr, "the certificate's xmppAddr cannot be used: %s; it must be a UTF8String holding the JID %s",
				sans.BadAddrs[0].Reason, acct)
		case len(sans.OtherNames) > 0:
			return "", refuse(ReasonNoXMPPAddr, "the certificate has no id-on-xmppAddr; its otherName of type %s is not a JID; add the subjectAltName otherName:%s;UTF8:%s",
				sans.OtherNames[0].OID, OIDXMPPAddr, acct)
		}
		return "", refuse(ReasonNoXMPPAddr, "the certificate has no id-on-xmppAddr subjectAltName; add otherName:%s;UTF8:%s",
			OIDXMPPAddr, acct)
	}
	if len(sans.BadAddrs) > 0 {
		return "", refuse(ReasonBadXMPPAddr, "one of the certificate's xmppAddrs cannot be used: %s; every xmppAddr must be a UTF8String holding a valid JID",
			sans.BadAddrs[0].Reason)
	}
	var (
		matched  bool
		bare     bool   // an xmppAddr names the account without a resource
		resource string // the first resource seen for the account
	)
	for _, a := range sans.XMPPAddrs {
		if !a.Bare().Equal(account) {
			continue
		}
		matched = true
		res := a.Resourcepart()
		switch {
		case res == "":
			bare = true
		case resource == "":
			resource = res
		case res != resource:
			return "", refuse(ReasonAmbiguousResource, "the certificate names %s with the different resources %s and %s; it may force at most one resource",
				acct, quote(resource), quote(res))
		}
	}
	if !matched {
		var names []string
		for _, a := range sans.XMPPAddrs {
			if s := displayJID(a.Bare()); !slices.Contains(names, s) {
				names = append(names, s)
			}
		}
		return "", refuse(ReasonWrongAccount, "the certificate names %s but you are %s", strings.Join(names, ", "), displayJID(account))
	}
	if bare && resource != "" {
		return "", refuse(ReasonAmbiguousResource, "the certificate names %s both without a resource and with the resource %s; use either the bare JID or one full JID",
			acct, quote(resource))
	}
	return resource, nil
}

// ekuNames names the extended key usages refusals mention.
var ekuNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

// checkEKU refuses a certificate with an EKU extension that allows neither
// clientAuth nor any usage.
func checkEKU(cert *x509.Certificate) *RefusalError {
	if len(cert.ExtKeyUsage) == 0 && len(cert.UnknownExtKeyUsage) == 0 {
		return nil
	}
	var names []string
	for _, u := range cert.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return nil
		}
		name, ok := ekuNames[u]
		if !ok {
			name = fmt.Sprintf("usage %d", u)
		}
		names = append(names, name)
	}
	for _, oid := range cert.UnknownExtKeyUsage {
		names = append(names, oid.String())
	}
	return refuse(ReasonEKU, "the certificate's extended key usage (%s) does not allow clientAuth; upload a certificate whose extended key usage includes clientAuth, or has none",
		strings.Join(names, ", "))
}

// Record returns the storage record for u under name.
func (u *Upload) Record(name string, noCertManagement bool, src storage.Source) *storage.Cert {
	return &storage.Cert{
		Account:          u.Account.String(),
		Name:             name,
		DER:              u.DER,
		Fingerprint:      u.Fingerprint,
		NoCertManagement: noCertManagement,
		Resource:         u.Resource,
		NotBefore:        u.Cert.NotBefore,
		NotAfter:         u.Cert.NotAfter,
		Issuer:           u.Cert.Issuer.String(),
		Source:           src,
	}
}

// displayJID shows j for a person; a JID with non-ASCII characters is
// followed by its ASCII-escaped form, so that look-alikes (a Cyrillic "а"
// for a Latin "a") are visible.
func displayJID(j jid.JID) string {
	s := j.String()
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return s + " (" + strconv.QuoteToASCII(s) + ")"
		}
	}
	return s
}
