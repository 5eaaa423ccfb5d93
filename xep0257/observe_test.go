package xep0257

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

func TestUploadOutcome(t *testing.T) {
	tests := []struct {
		name           string
		err            error
		result, reason string
	}{
		{"accepted", nil, UploadAccepted, ""},
		{"certificate refused", &sasl.RefusalError{Reason: sasl.ReasonWrongAccount, Detail: "x"}, UploadRefused, "wrong-account"},
		{"wrapped refusal", fmt.Errorf("up: %w", &sasl.RefusalError{Reason: sasl.ReasonWeakKey}), UploadRefused, "weak-key"},
		{"rate", &rateError{}, UploadRefused, ReasonRateLimited},
		{"name taken", storage.ErrNameTaken, UploadRefused, ReasonNameTaken},
		{"duplicate", storage.ErrDuplicate, UploadRefused, ReasonDuplicate},
		{"limit", storage.ErrLimit, UploadRefused, ReasonLimit},
		{"history", storage.ErrHistoryFull, UploadRefused, ReasonHistoryFull},
		{"deleted", storage.ErrAccountDeleted, UploadRefused, ReasonAccountDeleted},
		{"not vouched", errNotVouched, UploadRefused, ReasonForbidden},
		{"no management", errNoCertManagement, UploadRefused, ReasonForbidden},
		{"not an account", errNotAccount, UploadRefused, ReasonNotAllowed},
		{"stanza error of CheckAppend", stanza.Error{Type: stanza.Cancel, Condition: stanza.NotAllowed}, UploadRefused, "not-allowed"},
		{"bad request", newError(stanza.Modify, stanza.BadRequest, "x"), UploadRefused, "bad-request"},
		{"store unavailable", fmt.Errorf("x: %w", storage.ErrUnavailable), UploadFailed, ReasonUnavailable},
		{"timeout", context.DeadlineExceeded, UploadFailed, ReasonUnavailable},
		{"internal", errors.New("boom"), UploadFailed, ReasonInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var se stanza.Error
			var internal bool
			if tc.err != nil {
				se, internal = toStanzaError(tc.err, errContext{limits: DefaultLimits()})
			}
			result, reason := uploadOutcome(tc.err, se, internal)
			if result != tc.result || reason != tc.reason {
				t.Errorf("uploadOutcome(%v) = %s/%s, want %s/%s", tc.err, result, reason, tc.result, tc.reason)
			}
		})
	}
}
