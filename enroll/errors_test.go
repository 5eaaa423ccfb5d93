package enroll

import (
	"errors"
	"fmt"
	"testing"

	"github.com/saslcert/saslcert/storage"
)

func TestErrorKinds(t *testing.T) {
	wrapped := Errorf(ErrBadRequest, "the CSR: %w", storage.ErrNotFound)
	tests := []struct {
		name       string
		err        error
		wantKind   Kind
		wantDetail string
		wantOK     bool
		wantIs     []error // errors.Is must hold for each
		wantText   string
	}{
		{name: "errorf/bad-request", err: Errorf(ErrBadRequest, "no CSR"), wantKind: KindBadRequest, wantDetail: "no CSR", wantOK: true,
			wantIs: []error{ErrBadRequest}, wantText: ErrBadRequest.Error() + ": no CSR"},
		{name: "errorf/wraps-cause", err: wrapped, wantKind: KindBadRequest, wantDetail: "the CSR: " + storage.ErrNotFound.Error(), wantOK: true,
			wantIs: []error{ErrBadRequest, storage.ErrNotFound}},
		{name: "errorf/outermost-wins", err: fmt.Errorf("issuing: %w", Errorf(ErrUnavailable, "timeout")), wantKind: KindUnavailable, wantDetail: "timeout", wantOK: true,
			wantIs: []error{ErrUnavailable}},
		{name: "sentinel/bare", err: fmt.Errorf("ca: %w", ErrPending), wantKind: KindPending, wantDetail: "ca: " + ErrPending.Error(), wantOK: true,
			wantIs: []error{ErrPending}},
		{name: "no-kind/other-error", err: errors.New("disk full"), wantOK: false},
		{name: "no-kind/errorf-unknown-sentinel", err: Errorf(storage.ErrLimit, "x"), wantOK: false, wantText: "enroll: x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, detail, ok := KindOf(tt.err)
			if ok != tt.wantOK || k != tt.wantKind || (ok && detail != tt.wantDetail) {
				t.Fatalf("KindOf = (%v, %q, %v); want (%v, %q, %v)", k, detail, ok, tt.wantKind, tt.wantDetail, tt.wantOK)
			}
			for _, target := range tt.wantIs {
				if !errors.Is(tt.err, target) {
					t.Errorf("errors.Is(%v, %v) = false", tt.err, target)
				}
			}
			if tt.wantText != "" && tt.err.Error() != tt.wantText {
				t.Errorf("Error() = %q; want %q", tt.err.Error(), tt.wantText)
			}
			if ok && tt.wantKind != KindRejected && errors.Is(tt.err, ErrRejected) {
				t.Errorf("errors.Is(%v, ErrRejected) = true for kind %v", tt.err, k)
			}
		})
	}
}
