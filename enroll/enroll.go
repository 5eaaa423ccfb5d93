package enroll

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// DefaultLifetime is how long issued certificates are valid unless a policy
// or the request says otherwise. Short on purpose: most XMPP servers do not
// check revocation, so expiry is what ends a certificate.
const DefaultLifetime = 7 * 24 * time.Hour

// Issuer is a CA back-end: the embedded CA (enroll/localca), step-ca
// (enroll/stepca) or an EST server (enroll/est).
//
// Every method is safe for concurrent use and honours ctx. Issuers never take
// a name from the client: the account comes from the authenticated XMPP
// session (IssueRequest.Account) and is the only identity an issued
// certificate carries.
type Issuer interface {
	// Issue checks req (CheckCSR / CheckSelfSigned), has the CA sign it and
	// returns the result of CheckIssued. Errors wrap ErrBadRequest (refused
	// before anything was sent to a CA), ErrNotSupported, ErrRejected,
	// ErrPending, ErrUnavailable or ErrBadIssued.
	Issue(ctx context.Context, req *IssueRequest) (*Issued, error)
	// Revoke revokes a certificate this issuer issued. Revoking a certificate
	// twice is not an error. Errors wrap ErrBadRequest, ErrNotSupported (EST
	// has no revocation), ErrRejected or ErrUnavailable.
	Revoke(ctx context.Context, req *RevokeRequest) error
	// Roots returns the trust anchors certificates from this issuer chain to
	// (what a server's client-CA file should hold).
	Roots(ctx context.Context) ([]*x509.Certificate, error)
}

// IssueRequest asks for a client certificate. Exactly one of CSR,
// SelfSigned and Renew is set.
type IssueRequest struct {
	// Account is the authenticated bare JID of the XMPP session that asks.
	// It is the only name the certificate will carry; never fill it from the
	// request payload.
	Account jid.JID
	// CSR is a PKCS#10 request. Its signature proves possession of the key.
	// It may request no subjectAltName or exactly one xmppAddr equal to
	// Account, and a subject that is empty or only CN=Account (CheckCSR).
	CSR *x509.CertificateRequest
	// SelfSigned is the DER of a self-signed certificate (typically one the
	// account uploaded with XEP-0257); its self-signature proves possession
	// of the key. Only the embedded CA can sign from it: external CAs need a
	// CSR (ErrNotSupported).
	SelfSigned []byte
	// Renew is a certificate this issuer issued for Account earlier, still
	// valid and not revoked, whose public key is to be signed again
	// (possession of the key was proven when it was first issued). Only the
	// embedded CA can renew this way: external CAs need a CSR
	// (ErrNotSupported).
	Renew *x509.Certificate
	// Lifetime of the certificate; 0 means the issuer's default.
	Lifetime time.Duration
}

// Issued is a certificate an Issuer returned and CheckIssued accepted.
type Issued struct {
	Chain  [][]byte          // DER, the leaf first, then its issuers (the root may be absent)
	Cert   *x509.Certificate // the leaf, parsed
	Upload *sasl.Upload      // sasl.CheckUpload's verdict on the leaf
}

// Record returns the storage record for the issued certificate under name,
// with source "enrolled", ready for storage.Store.AddCert.
func (i *Issued) Record(name string, noCertManagement bool) *storage.Cert {
	return i.Upload.Record(name, noCertManagement, storage.SourceEnrolled)
}

// RevokeRequest asks to revoke a certificate. Set Cert when the certificate
// is known (the issuer can then check that it issued it); otherwise Serial.
type RevokeRequest struct {
	Cert   *x509.Certificate
	Serial *big.Int
	Reason RevocationReason
}

// SerialNumber returns the serial number to revoke: Cert's if set, else
// Serial. It fails if neither is set or the serial is not positive.
func (r *RevokeRequest) SerialNumber() (*big.Int, error) {
	sn := r.Serial
	if r.Cert != nil {
		sn = r.Cert.SerialNumber
	}
	switch {
	case sn == nil:
		return nil, Errorf(ErrBadRequest, "revoke: no certificate or serial number")
	case sn.Sign() <= 0:
		return nil, Errorf(ErrBadRequest, "revoke: serial number %s is not positive", sn)
	case !r.Reason.Valid():
		return nil, Errorf(ErrBadRequest, "revoke: reason code %d is not supported", int(r.Reason))
	}
	return sn, nil
}

// RevocationReason is a CRL reason code (RFC 5280 §5.3.1).
type RevocationReason int

// The reason codes saslcert uses. certificateHold (6) and removeFromCRL (8)
// are not supported: a revocation is final.
const (
	ReasonUnspecified          RevocationReason = 0
	ReasonKeyCompromise        RevocationReason = 1
	ReasonAffiliationChanged   RevocationReason = 3
	ReasonSuperseded           RevocationReason = 4
	ReasonCessationOfOperation RevocationReason = 5
	ReasonPrivilegeWithdrawn   RevocationReason = 9
)

// Valid reports whether r is one of the supported reason codes.
func (r RevocationReason) Valid() bool {
	switch r {
	case ReasonUnspecified, ReasonKeyCompromise, ReasonAffiliationChanged, ReasonSuperseded,
		ReasonCessationOfOperation, ReasonPrivilegeWithdrawn:
		return true
	}
	return false
}

// Errors Issuer methods wrap; test with errors.Is.
var (
	// ErrBadRequest: the request was refused before anything was sent to a
	// CA (bad CSR signature or self-signature, a name other than the
	// account, a weak key, a missing account, ...). Nothing was issued.
	ErrBadRequest = errors.New("enroll: request refused")
	// ErrNotSupported: the issuer cannot do this (an external CA asked to
	// sign from a self-signed certificate, revocation over EST).
	ErrNotSupported = errors.New("enroll: not supported by this issuer")
	// ErrRejected: the CA answered and refused (authentication, policy).
	ErrRejected = errors.New("enroll: rejected by the CA")
	// ErrPending: the CA accepted the request for manual approval (EST 202);
	// nothing was issued yet.
	ErrPending = errors.New("enroll: pending approval at the CA")
	// ErrUnavailable: the CA could not be reached or failed; retry later.
	ErrUnavailable = errors.New("enroll: CA unavailable")
	// ErrBadIssued: the CA issued a certificate saslcert will not use (a
	// misconfigured template: a wrong or extra name, no clientAuth, another
	// key, a broken chain). It must not be stored.
	ErrBadIssued = errors.New("enroll: the CA issued an unusable certificate")
)

// CheckAccount returns an error wrapping ErrBadRequest unless account is a
// bare JID with a localpart that the XMPP server reads as the same account
// (else the error also wraps sasl.ErrJIDForms: e.g. "straße@", which Prosody
// binds as "strasse@").
func CheckAccount(account jid.JID) error {
	switch {
	case account.Localpart() == "":
		return Errorf(ErrBadRequest, "account %q is not a JID with a localpart", account.String())
	case account.Resourcepart() != "":
		return Errorf(ErrBadRequest, "account %q is not a bare JID", account.String())
	}
	if err := sasl.CanonicalJID(account); err != nil {
		return Errorf(ErrBadRequest, "account %q: %w", account.String(), err)
	}
	return nil
}

// Check validates the shape of req (not the CSR's content; see CheckCSR): a
// bare account, exactly one of CSR, SelfSigned and Renew, a lifetime that is
// not negative.
func (req *IssueRequest) Check() error {
	if req == nil {
		return Errorf(ErrBadRequest, "no request")
	}
	if err := CheckAccount(req.Account); err != nil {
		return err
	}
	n := 0
	for _, set := range []bool{req.CSR != nil, len(req.SelfSigned) > 0, req.Renew != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return Errorf(ErrBadRequest, "neither a CSR nor a self-signed certificate")
	case n > 1 && req.Renew == nil:
		return Errorf(ErrBadRequest, "both a CSR and a self-signed certificate")
	case n > 1:
		return Errorf(ErrBadRequest, "a renewal together with a CSR or a self-signed certificate")
	case req.Lifetime < 0:
		return Errorf(ErrBadRequest, "negative lifetime %s", req.Lifetime)
	}
	return nil
}
