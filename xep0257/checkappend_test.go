package xep0257_test

import (
	"context"
	"errors"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/xep0257"
)

// CheckAppend sees only certificates sasl.CheckUpload accepted, for the
// sender's bare account; its refusal is sent as the stanza error it maps to
// and nothing is stored.
func TestProcessAppendCheckAppend(t *testing.T) {
	tests := []struct {
		name  string
		check error
		err   wantErr
	}{
		{name: "ok/allowed", check: nil},
		{name: "error/refusal", check: &sasl.RefusalError{Reason: "self-signed-not-allowed", Detail: "example.org accepts only CA-issued certificates"},
			err: wantErr{stanza.Modify, stanza.NotAcceptable, "example.org accepts only CA-issued certificates"}},
		{name: "error/stanza-error", check: stanza.Error{Type: stanza.Cancel, Condition: stanza.NotAllowed, Text: map[string]string{"": "no"}},
			err: wantErr{stanza.Cancel, stanza.NotAllowed, "no"}},
		{name: "error/internal", check: errors.New("boom"), err: wantErr{stanza.Cancel, stanza.InternalServerError, "internal error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			var calls int
			var gotAccount jid.JID
			f.h.CheckAppend = func(_ context.Context, account jid.JID, up *sasl.Upload) error {
				calls++
				gotAccount = account
				if up == nil || up.Cert == nil {
					t.Error("CheckAppend without the checked upload")
				}
				return tt.check
			}
			before := f.snapshot(t)
			_, err := f.h.Process(t.Context(), alice, f.sess.auth(alice), &xep0257.Append{Name: "laptop", Cert: certFor(t, "alice@example.org")})
			checkErr(t, err, tt.err)
			if calls != 1 || !gotAccount.Equal(alice.Bare()) {
				t.Fatalf("CheckAppend called %d times for %s; want once for %s", calls, gotAccount, alice.Bare())
			}
			if tt.err != (wantErr{}) {
				if after := f.snapshot(t); after != before {
					t.Fatalf("a refused upload changed the store:\n%s\nto\n%s", before, after)
				}
			} else if n := len(f.active(t, "alice@example.org")); n != 1 {
				t.Fatalf("%d active certificates after an allowed upload", n)
			}
			// A certificate CheckUpload refuses never reaches CheckAppend.
			calls = 0
			_, err = f.h.Process(t.Context(), alice, f.sess.auth(alice), &xep0257.Append{Name: "bob's", Cert: certFor(t, "bob@example.org")})
			if err == nil || calls != 0 {
				t.Fatalf("an upload for another account: err %v, CheckAppend called %d times", err, calls)
			}
		})
	}
}
