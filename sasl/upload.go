package sasl

import (
	"crypto/x509"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/storage"
)

// Policy holds the settings CheckUpload and Authorizer apply.
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
	ReasonWrongAccount      Reason = "wrong-account"      // usable xmppAddrs, none for this account
	ReasonAmbiguousResource Reason = "ambiguous-resource" // several xmppAddrs for the account with different resources
	ReasonWeakKey           Reason = "weak-key"           // RSA < MinRSABits, unsupported curve, unknown key type
	ReasonWeakSignature     Reason = "weak-signature"     // MD5 or SHA-1 signature
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
// the account (a full JID records a forced resource), has an acceptable key
// (RSA >= p.MinRSABits, ECDSA P-256/384/521, Ed25519), is not signed with MD5
// or SHA-1, is not a CA certificate and, if it has an EKU, allows clientAuth.
// Every refusal is a *RefusalError.
func CheckUpload(der []byte, account jid.JID, now time.Time, p Policy) (*Upload, error) {
	panic("TODO")
}

// Record returns the storage record for u under name.
func (u *Upload) Record(name string, noCertManagement bool, src storage.Source) *storage.Cert {
	panic("TODO")
}
