package xep0257

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// The stanza errors this package sends. XEP-0257 names none of them except
// implicitly; these are our choices (see ARCHITECTURE.md, "Decisions already
// taken"):
//
//	case                                             type    condition                text
//	payload not items/append/disable/revoke in NS    cancel  feature-not-implemented  what was sent
//	wrong IQ type, missing/empty/repeated <name/> or
//	  <x509cert/>, unknown child, text or child where
//	  none belongs, XML ending early                 modify  bad-request              what is wrong
//	name blank, with a control character, too long  modify  not-acceptable           what is wrong
//	<x509cert/> not base64, or PEM                   modify  not-acceptable           what is wrong
//	<x509cert/> over Limits.MaxCertSize              modify  policy-violation         the limit
//	certificate refused by sasl.CheckUpload          modify  not-acceptable           RefusalError.Detail
//	name in use (storage.ErrNameTaken)               cancel  conflict                 the name
//	certificate stored already (storage.ErrDuplicate,
//	  whichever account has it)                      cancel  conflict                 no account
//	over Limits.MaxPerAccount (storage.ErrLimit)     modify  policy-violation         the limit
//	account deleted (storage.ErrAccountDeleted)      cancel  not-allowed              why
//	over Limits.MaxHistory (storage.ErrHistoryFull)  modify  policy-violation         the limit
//	over Handler.AppendRate                          wait    resource-constraint      when to retry
//	no active certificate of that name (ErrNotFound) cancel  item-not-found           the name
//	the server did not vouch for the session, its
//	  grant or certificate has <no-cert-management/>,
//	  its certificate is not on record or not active
//	  (MayManage)                                    auth    forbidden                why
//	sender is not a user account (no localpart)      cancel  not-allowed              why
//	sender's account has two forms (ErrJIDForms)     cancel  not-allowed              why
//	store unavailable (storage.ErrUnavailable) or
//	  the request timed out                          wait    internal-server-error    "busy; try again"
//	anything else                                    cancel  internal-server-error    "internal error"
//
// The limits are local policy, hence policy-violation (RFC 6120 §8.3.3.12:
// type modify); wait/internal-server-error for an unavailable store matches
// the plugin protocol's temporary failure. Only the last two rows are logged
// at Warn.
var domainErrors = []mapping{
	{is(errNotAccount), stanza.Cancel, stanza.NotAllowed, fixed("XEP-0257 requests must come from a user account"), false},
	{is(errAccountForms), stanza.Cancel, stanza.NotAllowed, fixed("this account's address has another form on the server (RFC 3920 stringprep) than here (RFC 7622); its certificates cannot be managed"), false},
	{is(errNotVouched), stanza.Auth, stanza.Forbidden, fixed(textNotVouched), false},
	{is(errNoCertManagement), stanza.Auth, stanza.Forbidden, fixed("this session logged in with a certificate that may not manage certificates"), false},
	{is(errSessionCertUnknown), stanza.Auth, stanza.Forbidden, fixed("the certificate this session logged in with is not on record (a certificate of a trusted CA), so it may not manage certificates"), false},
	{is(errSessionCertState), stanza.Auth, stanza.Forbidden, fixed("the certificate this session logged in with is no longer active, so it may not manage certificates"), false},
	{isRefusal, stanza.Modify, stanza.NotAcceptable, refusalDetail, false},
	{is(storage.ErrNameTaken), stanza.Cancel, stanza.Conflict, func(_ error, c errContext) string {
		return fmt.Sprintf("a certificate named %q already exists", c.name)
	}, false},
	{is(storage.ErrDuplicate), stanza.Cancel, stanza.Conflict, fixed("this certificate is already stored"), false},
	{is(storage.ErrLimit), stanza.Modify, stanza.PolicyViolation, func(_ error, c errContext) string {
		return fmt.Sprintf("at most %d active certificates per account; disable or revoke one first", c.limits.MaxPerAccount)
	}, false},
	{is(storage.ErrAccountDeleted), stanza.Cancel, stanza.NotAllowed, fixed(textAccountDeleted), false},
	{is(storage.ErrHistoryFull), stanza.Modify, stanza.PolicyViolation, func(_ error, c errContext) string {
		return fmt.Sprintf("this account keeps more than %d disabled or revoked certificates that have not expired; they are removed a day after they expire, or ask the administrator", c.limits.MaxHistory)
	}, false},
	{isRate, stanza.Wait, stanza.ResourceConstraint, func(err error, _ errContext) string {
		var re *rateError
		errors.As(err, &re)
		return fmt.Sprintf("too many certificate uploads for this account; try again in %s", re.wait.Round(time.Second))
	}, false},
	{is(storage.ErrNotFound), stanza.Cancel, stanza.ItemNotFound, func(_ error, c errContext) string {
		return fmt.Sprintf("no active certificate named %q", c.name)
	}, false},
	{is(storage.ErrUnavailable), stanza.Wait, stanza.InternalServerError, fixed(textBusy), true},
	{is(context.DeadlineExceeded), stanza.Wait, stanza.InternalServerError, fixed(textBusy), true},
	{is(context.Canceled), stanza.Wait, stanza.InternalServerError, fixed(textBusy), true},
}

// Errors of the handler that the table maps.
var (
	errNotAccount   = errors.New("xep0257: sender is not a user account")
	errAccountForms = errors.New("xep0257: sender's account has two forms")
)

// rateError: Handler.AppendRate refused an append; wait is when a token is
// there again.
type rateError struct{ wait time.Duration }

func (e *rateError) Error() string {
	return fmt.Sprintf("xep0257: append rate exceeded; retry in %s", e.wait)
}

func isRate(err error) bool {
	var re *rateError
	return errors.As(err, &re)
}

// Texts used in more than one place.
const (
	textBusy       = "the certificate store is busy; try again"
	textNotVouched = "the server did not say how this session logged in, so it may not manage certificates (is the saslcert server plugin loaded on its host?)"
	// textAccountDeleted answers a write for an account the server deleted
	// (storage.ErrAccountDeleted); the same name registered again may add
	// certificates once the component has learnt of the new registration.
	textAccountDeleted = "this account was deleted; certificates cannot be added until the server confirms a new registration of the name (try again later)"
	textInternal       = "internal error"
	textBadBase64      = "x509cert is not valid base64"
	textPEM            = "x509cert holds PEM; send the base64 of the DER certificate without the -----BEGIN/END----- lines"
)

// errContext is what an error text may mention.
type errContext struct {
	name   string // the certificate name of the request, if any
	limits Limits
}

// mapping is one row of the table.
type mapping struct {
	match    func(error) bool
	typ      stanza.ErrorType
	cond     stanza.Condition
	text     func(error, errContext) string
	internal bool // log at Warn with the cause
}

// toStanzaError maps err to the stanza error to send and reports whether it
// is an internal failure. A stanza.Error is returned as it is.
func toStanzaError(err error, c errContext) (stanza.Error, bool) {
	var se stanza.Error
	if errors.As(err, &se) {
		return se, false
	}
	for _, m := range domainErrors {
		if m.match(err) {
			return newError(m.typ, m.cond, m.text(err, c)), m.internal
		}
	}
	return newError(stanza.Cancel, stanza.InternalServerError, textInternal), true
}

func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func isRefusal(err error) bool {
	var r *sasl.RefusalError
	return errors.As(err, &r)
}

func refusalDetail(err error, _ errContext) string {
	var r *sasl.RefusalError
	errors.As(err, &r)
	return r.Detail
}

func fixed(s string) func(error, errContext) string {
	return func(error, errContext) string { return s }
}

func newError(typ stanza.ErrorType, cond stanza.Condition, text string) stanza.Error {
	return stanza.Error{Type: typ, Condition: cond, Text: map[string]string{"": text}}
}

func badRequest(text string) stanza.Error {
	return newError(stanza.Modify, stanza.BadRequest, text)
}

func notAcceptable(text string) stanza.Error {
	return newError(stanza.Modify, stanza.NotAcceptable, text)
}

func featureNotImplemented(text string) stanza.Error {
	return newError(stanza.Cancel, stanza.FeatureNotImplemented, text)
}

func nameTooLong(max int) stanza.Error {
	return notAcceptable(fmt.Sprintf("name is longer than %d characters", max))
}

func certTooLarge(max int) stanza.Error {
	return newError(stanza.Modify, stanza.PolicyViolation, fmt.Sprintf("x509cert is larger than %d bytes of base64", max))
}
