package sasl

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/storage"
)

// Condition is a SASL failure condition (RFC 6120 §6.5).
type Condition string

// The conditions Authorize returns. AccountDisabled is not among them (a
// disabled or revoked certificate is not-authorized: the account itself may
// be fine); it is there for callers that know the account is disabled.
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

// Error returns "sasl: <condition>: <reason>", followed by ": <err>" if Err
// is set.
func (f *Failure) Error() string {
	msg := "sasl: " + string(f.Condition) + ": " + f.Reason
	if f.Err != nil {
		msg += ": " + f.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error, if any.
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
	// Fingerprint, used only when DER is empty, names the presented
	// certificate by its SHA-256 instead: the server computed it from the
	// certificate of the TLS session, and the stored record with that
	// fingerprint stands for the certificate (SHA-256 is collision
	// resistant). A fingerprint that is not stored gives ErrCertificateNeeded
	// when Trusted is set (the certificate may still verify against a CA),
	// not-authorized otherwise.
	Fingerprint storage.Fingerprint
}

// ErrCertificateNeeded is returned by Authorize for a Request that names an
// unstored certificate by fingerprint while Trusted is set: ask again with the
// certificate itself.
var ErrCertificateNeeded = errors.New("sasl: certificate not stored; the whole certificate is needed to judge it")

// Grant is a successful decision.
type Grant struct {
	JID              jid.JID // bare JID of the account
	Resource         string  // forced resource, "" if none
	Fingerprint      storage.Fingerprint
	NoCertManagement bool
	// Stored is true when the grant comes from a stored certificate record
	// (false for a trusted-roots login, which depends on CA state the store
	// does not hold). Only stored grants may be remembered by a cache that
	// the store's changes invalidate.
	Stored bool
	// Until is the instant the grant stops holding on its own: the
	// certificate's notAfter plus the allowed clock skew. A cache must not
	// use the grant from then on.
	Until time.Time
	// FromCA is true when the stored certificate was issued by a CA whose
	// revocations saslcert follows (Authorizer.IssuerRevoked): the grant
	// also depends on that CA's state, which the store does not hold, so a
	// cache that only the store's changes invalidate must not keep it.
	FromCA bool
}

// MaxDERSize is the largest presented certificate Authorize looks up; a
// larger one cannot have been stored (uploads are limited far below it) and
// is refused before it is hashed.
const MaxDERSize = 64 << 10

// Authorizer makes the login decision for SASL EXTERNAL. It is safe for
// concurrent use if its Store is.
type Authorizer struct {
	Store CertFinder
	Now   func() time.Time // nil means time.Now
	// Policy is the configured key and validity policy: its ClockSkew is
	// allowed on both ends of a certificate's validity period, and its key
	// policy (CheckKey) applies to certificates that log in through
	// Trusted. Stored certificates passed it when they were stored.
	Policy Policy

	// Trusted, if set, returns the CAs whose certificates may log in to
	// domain without being stored (nil roots: none), with intermediates to
	// build chains from the leaf the server passes on. It is consulted only
	// for a certificate whose fingerprint is not in the store. Such a
	// certificate logs in if it verifies with x509.Verify for clientAuth at
	// Now (no clock skew) to those roots, is no CA certificate, passes the
	// key and signature policy of uploads, carries exactly one usable
	// xmppAddr, naming an account of the domain (a full JID forces the
	// resource), agrees with the authzid, and IsRevoked says it is not
	// revoked. The Grant has NoCertManagement true: such a login may not
	// manage certificates.
	Trusted func(domain string) (roots, intermediates *x509.CertPool)
	// IsRevoked reports whether a certificate that verified against Trusted
	// (chain: the leaf, then its issuers) has been revoked. An error gives
	// temporary-auth-failure. Without it no certificate logs in through
	// Trusted.
	IsRevoked func(ctx context.Context, domain string, chain []*x509.Certificate) (bool, error)
	// IssuerRevoked, if set, is asked about every stored certificate that
	// passed the other checks: applies reports whether it was issued by a
	// CA whose revocations saslcert follows (a configured issuer, or one of
	// the domain's trusted roots and intermediates), and revoked whether
	// that CA revoked it. It is decided as for trusted-roots logins (see
	// authorizeStoredAtCA): an error gives temporary-auth-failure, revoked
	// gives not-authorized. Without it stored certificates are judged by
	// the store alone.
	IssuerRevoked func(ctx context.Context, domain string, cert *x509.Certificate) (applies, revoked bool, err error)
}

// Authorize decides whether req authenticates, and as whom: SHA-256
// fingerprint -> stored record -> exact DER equality -> state active ->
// validity at Now (within Policy.ClockSkew) -> xmppAddr -> XEP-0178 authzid rules
// (no authzid with one usable xmppAddr -> that account; bare-JID authzid must
// equal the owner; full-JID authzid or another domain -> invalid-authzid).
// Every error is a *Failure, except ErrCertificateNeeded (see
// Request.Fingerprint); a store error gives TemporaryAuthFailure. It never
// a nil error without a stored, active, exact match.
//
// In detail, and in this order:
//   - no certificate: malformed-request; larger than MaxDERSize: not-authorized;
//   - unknown fingerprint: not-authorized, unless Trusted is set (then the
//     certificate is judged by authorizeTrusted); any other store error (or
//     no Store): temporary-auth-failure;
//   - stored DER differs from the presented one, record disabled or revoked
//     (or in an unknown state), stored DER unparsable: not-authorized;
//   - after NotAfter+Policy.ClockSkew: credentials-expired; before
//     NotBefore-Policy.ClockSkew: not-authorized;
//   - authzid that is not a JID, is a full JID (RFC 6120 §6.3.8), or whose
//     domain is not req.Domain: invalid-authzid;
//   - the owner's domain is not req.Domain: not-authorized;
//   - the certificate has no usable xmppAddr whose bare JID is the owner (the
//     record and the certificate must agree): not-authorized;
//   - no authzid, but the certificate's xmppAddrs name more than one bare
//     JID (XEP-0178 §2: the client must then choose one): invalid-authzid;
//   - an authzid that is not the owner: invalid-authzid;
//   - IssuerRevoked says its CA revoked it: not-authorized; it fails:
//     temporary-auth-failure (checkStoredAtCA).
//
// The Grant carries the owner's bare JID, the stored forced resource and the
// record's NoCertManagement flag.
func (a *Authorizer) Authorize(ctx context.Context, req Request) (Grant, error) {
	der := req.DER
	byFingerprint := len(der) == 0 && req.Fingerprint != (storage.Fingerprint{})
	switch {
	case len(der) == 0 && !byFingerprint:
		return Grant{}, fail(MalformedRequest, "no client certificate presented", nil)
	case len(der) > MaxDERSize:
		return Grant{}, fail(NotAuthorized, "presented certificate is larger than any stored one", nil)
	case a.Store == nil:
		return Grant{}, fail(TemporaryAuthFailure, "no certificate store configured", nil)
	}
	fp := req.Fingerprint
	if !byFingerprint {
		fp = storage.FingerprintOf(der)
	}
	stored, err := a.Store.FindCertByFingerprint(ctx, fp)
	if byFingerprint && err == nil && stored != nil {
		der = stored.DER
	}
	switch {
	case errors.Is(err, storage.ErrNotFound) && a.Trusted != nil && byFingerprint:
		return Grant{}, ErrCertificateNeeded
	case errors.Is(err, storage.ErrNotFound) && a.Trusted != nil:
		return a.authorizeTrusted(ctx, req, fp)
	case errors.Is(err, storage.ErrNotFound):
		return Grant{}, fail(NotAuthorized, "unknown certificate "+fp.String(), nil)
	case err != nil:
		return Grant{}, fail(TemporaryAuthFailure, "certificate store failed", err)
	case stored == nil:
		return Grant{}, fail(TemporaryAuthFailure, "certificate store returned no record and no error", nil)
	case !bytes.Equal(stored.DER, der):
		return Grant{}, fail(NotAuthorized, "stored certificate with fingerprint "+fp.String()+" differs from the presented one", nil)
	case stored.State != storage.StateActive:
		return Grant{}, fail(NotAuthorized, "certificate "+fp.String()+" is "+stateName(stored.State), nil)
	}
	cert, sans, err := ParseCertificate(der)
	if err != nil {
		return Grant{}, fail(NotAuthorized, "stored certificate "+fp.String()+" cannot be parsed", err)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	t, skew := now(), max(a.Policy.ClockSkew, 0)
	if t.After(cert.NotAfter.Add(skew)) {
		return Grant{}, fail(CredentialsExpired, "certificate "+fp.String()+" expired on "+cert.NotAfter.UTC().Format(timeFormat), nil)
	}
	if t.Before(cert.NotBefore.Add(-skew)) {
		return Grant{}, fail(NotAuthorized, "certificate "+fp.String()+" is not valid before "+cert.NotBefore.UTC().Format(timeFormat), nil)
	}

	var authzid jid.JID
	if req.Authzid != "" {
		authzid, err = ParseJID(req.Authzid)
		switch {
		case err != nil:
			return Grant{}, fail(InvalidAuthzid, "authzid "+quote(req.Authzid)+" is not a JID", err)
		case authzid.Resourcepart() != "":
			return Grant{}, fail(InvalidAuthzid, "authzid "+quote(req.Authzid)+" is a full JID; a client authzid must be a bare JID", nil)
		case req.Domain != "" && !sameDomain(authzid.Domainpart(), req.Domain):
			return Grant{}, fail(InvalidAuthzid, "authzid "+quote(req.Authzid)+" is not in the domain "+quote(req.Domain), nil)
		}
	}
	owner, err := ParseJID(stored.Account)
	if err != nil || owner.Localpart() == "" || owner.Resourcepart() != "" {
		return Grant{}, fail(NotAuthorized, "stored owner "+quote(stored.Account)+" of certificate "+fp.String()+" is not a user's bare JID", err)
	}
	if req.Domain != "" && !sameDomain(owner.Domainpart(), req.Domain) {
		return Grant{}, fail(NotAuthorized, "certificate "+fp.String()+" belongs to another domain", nil)
	}
	named, distinct := false, 0
	for i, addr := range sans.XMPPAddrs {
		b := addr.Bare()
		named = named || b.Equal(owner)
		if !seenBefore(sans.XMPPAddrs[:i], b) {
			distinct++
		}
	}
	if !named {
		return Grant{}, fail(NotAuthorized, "certificate "+fp.String()+" has no usable xmppAddr naming its owner", nil)
	}
	switch {
	case req.Authzid == "" && distinct != 1:
		return Grant{}, fail(InvalidAuthzid, "certificate "+fp.String()+" names several JIDs and no authzid was sent", nil)
	case req.Authzid != "" && !authzid.Equal(owner):
		return Grant{}, fail(InvalidAuthzid, "authzid "+quote(req.Authzid)+" is not the owner of certificate "+fp.String(), nil)
	}
	if stored.Resource != "" {
		if _, err := owner.WithResource(stored.Resource); err != nil {
			return Grant{}, fail(NotAuthorized, "stored forced resource of certificate "+fp.String()+" is invalid", err)
		}
	}
	fromCA, err := a.checkStoredAtCA(ctx, owner.Domainpart(), cert, fp)
	if err != nil {
		return Grant{}, err
	}
	return Grant{
		JID:              owner,
		Resource:         stored.Resource,
		Fingerprint:      fp,
		NoCertManagement: stored.NoCertManagement,
		Stored:           true,
		Until:            cert.NotAfter.Add(skew),
		FromCA:           fromCA,
	}, nil
}

// fail builds a *Failure.
func fail(c Condition, reason string, err error) *Failure {
	return &Failure{Condition: c, Reason: reason, Err: err}
}

// stateName names a non-active state for a Failure reason.
func stateName(s storage.State) string {
	if s.Valid() {
		return string(s)
	}
	return "in the unknown state " + quote(string(s))
}

// seenBefore reports whether the bare part of one of addrs equals b.
func seenBefore(addrs []jid.JID, b jid.JID) bool {
	for _, a := range addrs {
		if a.Bare().Equal(b) {
			return true
		}
	}
	return false
}

// sameDomain reports whether the normalised domainpart d names the same
// domain as the (possibly unnormalised) domain name domain.
func sameDomain(d, domain string) bool {
	if d == domain {
		return true
	}
	j, err := jid.Parse(domain)
	return err == nil && j.Localpart() == "" && j.Resourcepart() == "" && j.Domainpart() == d
}
