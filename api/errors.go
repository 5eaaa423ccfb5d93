package api

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/storage"
)

// The error answers of the API, in one place:
//
//	from                                         code                      status
//	XEP-0257 refusal (xep0257.Handler.AppendAs, with XEP-0257's text):
//	  bad-request, not-acceptable                invalid_request           400
//	  conflict (name in use, stored already),
//	  not-allowed (account deleted),
//	  policy-violation (limits, size)            conflict                  409
//	  resource-constraint (upload rate)          too_many_requests         429
//	  item-not-found                             not_found                 404
//	  internal-server-error, type wait           temporarily_unavailable   503
//	  anything else                              server_error              500
//	enroll.KindOf (enroll.Service, its Detail):
//	  bad request (CSR, name)                    invalid_request           400
//	  not offered, not supported                 conflict                  409
//	  rate limited                               too_many_requests         429
//	  rejected by the CA                         invalid_request           400
//	  pending, CA unavailable                    temporarily_unavailable   503
//	  the CA issued an unusable certificate      server_error (502)        502
//	storage: ErrNotFound 404, ErrNameTaken / ErrLimit / ErrTransition /
//	  ErrAccountDeleted / ErrHistoryFull 409, ErrUnavailable 503; a
//	  context's end 503
//
// Texts never carry internal errors (those are logged).

// xmppErrors maps the stanza conditions of XEP-0257 refusals.
var xmppErrors = map[stanza.Condition]string{
	stanza.BadRequest:         httperr.InvalidRequest,
	stanza.NotAcceptable:      httperr.InvalidRequest,
	stanza.JIDMalformed:       httperr.InvalidRequest,
	stanza.Conflict:           httperr.Conflict,
	stanza.NotAllowed:         httperr.Conflict,
	stanza.PolicyViolation:    httperr.Conflict,
	stanza.ResourceConstraint: httperr.TooManyRequests,
	stanza.ItemNotFound:       httperr.NotFound,
	stanza.Forbidden:          httperr.InsufficientScope,
}

// fromStanza turns an XEP-0257 refusal into its HTTP answer with the same
// text.
func fromStanza(se stanza.Error) error {
	text := se.Text[""]
	if code, ok := xmppErrors[se.Condition]; ok {
		return &httperr.Error{Code: code, Description: text}
	}
	if se.Type == stanza.Wait {
		return &httperr.Error{Code: httperr.Unavailable, Description: text}
	}
	return fmt.Errorf("api: XEP-0257 answered %s/%s: %s", se.Type, se.Condition, text)
}

// enrollErrors maps enroll's kinds.
var enrollErrors = map[enroll.Kind]*httperr.Error{
	enroll.KindBadRequest:   {Code: httperr.InvalidRequest},
	enroll.KindNotOffered:   {Code: httperr.Conflict},
	enroll.KindNotSupported: {Code: httperr.Conflict},
	enroll.KindRateLimited:  {Code: httperr.TooManyRequests},
	enroll.KindRejected:     {Code: httperr.InvalidRequest},
	enroll.KindPending:      {Code: httperr.Unavailable},
	enroll.KindUnavailable:  {Code: httperr.Unavailable},
	enroll.KindBadIssued:    {Code: httperr.ServerError, Status: 502},
}

// enrollText are the words before an enroll error's Detail.
var enrollText = map[enroll.Kind]string{
	enroll.KindBadRequest:   "enrolment refused",
	enroll.KindNotOffered:   "certificates are not issued for this tenant",
	enroll.KindNotSupported: "the CA cannot do this",
	enroll.KindRateLimited:  "too many certificate requests for this account",
	enroll.KindRejected:     "the CA refused the request",
	enroll.KindPending:      "the CA holds the request for approval; try again later",
	enroll.KindUnavailable:  "the CA cannot be reached now; try again later",
	enroll.KindBadIssued:    "the CA issued an unusable certificate",
}

// storeErrors maps the store's errors (checked in this order).
var storeErrors = []struct {
	err  error
	code string
	text string
}{
	{storage.ErrNotFound, httperr.NotFound, "no such certificate"},
	{storage.ErrNameTaken, httperr.Conflict, "a certificate of that name exists"},
	{storage.ErrLimit, httperr.Conflict, "the account has as many active certificates as it may"},
	{storage.ErrTransition, httperr.Conflict, "the certificate cannot move to that state (revoked is final)"},
	{storage.ErrAccountDeleted, httperr.Conflict, "the account was deleted"},
	{storage.ErrHistoryFull, httperr.Conflict, "the account keeps too many disabled or revoked certificates"},
	{storage.ErrUnavailable, httperr.Unavailable, "the certificate store is busy; try again"},
	{context.DeadlineExceeded, httperr.Unavailable, "the certificate store is busy; try again"},
	{context.Canceled, httperr.Unavailable, "the request was cancelled"},
}

// apiError turns an error of the parts the API calls into its answer; an
// *httperr.Error passes as it is, anything unknown is a 500 (logged by
// serve).
func apiError(err error) error {
	var he *httperr.Error
	if errors.As(err, &he) {
		return he
	}
	var se stanza.Error
	if errors.As(err, &se) {
		return fromStanza(se)
	}
	if k, detail, ok := enroll.KindOf(err); ok {
		e := *enrollErrors[k]
		e.Description = enrollText[k] + ": " + detail
		if k != enroll.KindBadIssued {
			return &e
		}
		e.Cause = err
		return &e
	}
	for _, m := range storeErrors {
		if errors.Is(err, m.err) {
			return &httperr.Error{Code: m.code, Description: m.text, Cause: err}
		}
	}
	return err
}
