package xep0257

import (
	"context"
	"errors"

	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// UploadObserver is told about every <append/> the handler answered
// (metrics.Metrics implements it). It is called on request goroutines: it
// must be quick and safe for concurrent use.
type UploadObserver interface {
	// Upload: result is UploadAccepted, UploadRefused (reason says why: a
	// sasl.Reason of the certificate check, or one of the Reason*
	// constants, or the stanza condition sent) or UploadFailed (reason
	// ReasonUnavailable or ReasonInternal).
	Upload(result, reason string)
}

// The results and the handler's own reasons reported to UploadObserver.
const (
	UploadAccepted = "accepted"
	UploadRefused  = "refused"
	UploadFailed   = "failed"

	ReasonRateLimited    = "rate-limited"
	ReasonNameTaken      = "name-taken"
	ReasonDuplicate      = "duplicate"
	ReasonLimit          = "limit"
	ReasonHistoryFull    = "history-full"
	ReasonAccountDeleted = "account-deleted"
	ReasonForbidden      = "forbidden"   // MayManage refused the session
	ReasonNotAllowed     = "not-allowed" // not a user account, or two forms
	ReasonUnavailable    = "unavailable" // store unavailable, timeout
	ReasonInternal       = "internal"
)

// uploadReasons name the refusals of an append by the error that caused
// them, checked in order after a *sasl.RefusalError.
var uploadReasons = []struct {
	err    error
	reason string
}{
	{storage.ErrNameTaken, ReasonNameTaken},
	{storage.ErrDuplicate, ReasonDuplicate},
	{storage.ErrLimit, ReasonLimit},
	{storage.ErrHistoryFull, ReasonHistoryFull},
	{storage.ErrAccountDeleted, ReasonAccountDeleted},
	{errNotVouched, ReasonForbidden},
	{errNoCertManagement, ReasonForbidden},
	{errSessionCertUnknown, ReasonForbidden},
	{errSessionCertState, ReasonForbidden},
	{errNotAccount, ReasonNotAllowed},
	{errAccountForms, ReasonNotAllowed},
}

// uploadOutcome is the result and reason of an append that ended with err
// (nil: accepted); se and internal are toStanzaError's answer for err.
func uploadOutcome(err error, se stanza.Error, internal bool) (result, reason string) {
	if err == nil {
		return UploadAccepted, ""
	}
	if internal {
		if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return UploadFailed, ReasonUnavailable
		}
		return UploadFailed, ReasonInternal
	}
	var re *sasl.RefusalError
	if errors.As(err, &re) {
		return UploadRefused, string(re.Reason)
	}
	if isRate(err) {
		return UploadRefused, ReasonRateLimited
	}
	for _, r := range uploadReasons {
		if errors.Is(err, r.err) {
			return UploadRefused, r.reason
		}
	}
	return UploadRefused, string(se.Condition)
}
