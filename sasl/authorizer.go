package sasl

import (
	"context"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/storage"
)

// Condition is a SASL failure condition (RFC 6120 §6.5).
type Condition string

// The conditions Authorize returns.
const (
	NotAuthorized        Condition = "not-authorized"
	InvalidAuthzid       Condition = "invalid-authzid"
	CredentialsExpired   Condition = "credentials-expired"
	AccountDisabled      Condition = "account-disabled"
	TemporaryAuthFailure Condition = "temporary-auth-failure"
	MalformedRequest     Condition = "malformed-request"
)

// Failure is Authorize's error: exactly one SASL condition, a reason for logs
// (never sent to the client verbatim if it could leak another account's
// data), and the underlying error if any.
type Failure struct {
	Condition Condition
	Reason    string
	Err       error
}

func (f *Failure) Error() string { panic("TODO") }
func (f *Failure) Unwrap() error { return f.Err }

// CertFinder is the part of storage.Store the Authorizer needs.
type CertFinder interface {
	FindCertByFingerprint(ctx context.Context, fp storage.Fingerprint) (*storage.Cert, error)
}

// Request is one login attempt.
type Request struct {
	DER     []byte // the certificate the client presented in TLS
	Authzid string // "" when the client sent "=" (no authzid)
	Domain  string // the server domain the client connected to; "" skips the check
}

// Grant is a successful decision.
type Grant struct {
	JID              jid.JID // bare JID of the account
	Resource         string  // forced resource, "" if none
	Fingerprint      storage.Fingerprint
	NoCertManagement bool
}

// Authorizer makes the login decision for SASL EXTERNAL.
type Authorizer struct {
	Store     CertFinder
	Now       func() time.Time
	ClockSkew time.Duration
}

// Authorize decides whether req authenticates, and as whom: SHA-256
// fingerprint -> stored record -> exact DER equality -> state active ->
// validity at Now (within ClockSkew) -> xmppAddr -> XEP-0178 authzid rules
// (no authzid with one usable xmppAddr -> that account; bare-JID authzid must
// equal the owner; full-JID authzid or another domain -> invalid-authzid).
// Every error is a *Failure; a store error gives TemporaryAuthFailure. It
// never returns a nil error without a stored, active, exact match.
func (a *Authorizer) Authorize(ctx context.Context, req Request) (Grant, error) {
	panic("TODO")
}
