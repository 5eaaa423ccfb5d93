package xep0257_test

import (
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// TestMayManage is the one management decision, from what the server
// vouched for (the stamp), not from what the component happens to know
// about the session: unknown means no, and a certificate login may manage
// only with an active record of its own account without
// <no-cert-management/>. Every refusal changes nothing; <items/> is never
// refused.
func TestMayManage(t *testing.T) {
	f := newFixture(t)
	phone := certFor(t, "alice@example.org")
	bot := certFor(t, "alice@example.org")
	old := certFor(t, "alice@example.org")
	bobs := certFor(t, "bob@example.org")
	mustAppend(t, f.h, alice, "Phone", phone, false)
	mustAppend(t, f.h, alice, "Bot", bot, true)
	mustAppend(t, f.h, alice, "Old", old, false)
	mustAppend(t, f.h, bob, "Laptop", bobs, false)
	if _, err := f.h.Process(t.Context(), alice, passwordAuth, &xep0257.Disable{Name: "Old"}); err != nil {
		t.Fatal(err)
	}
	certLogin := func(der []byte, manage bool) xep0257.Auth {
		return xep0257.Auth{Vouched: true, Certificate: true, Fingerprint: storage.FingerprintOf(der), Manage: manage}
	}
	forbidden := func(text string) wantErr { return wantErr{stanza.Auth, stanza.Forbidden, text} }
	notVouched := forbidden("the server did not say how this session logged in")
	noMgmt := forbidden("may not manage certificates")
	for _, tc := range []struct {
		name string
		auth xep0257.Auth
		err  wantErr
	}{
		{"nothing-vouched", xep0257.Auth{}, notVouched},
		{"unvouched-claims", xep0257.Auth{Certificate: true, Fingerprint: storage.FingerprintOf(phone), Manage: true}, notVouched},
		{"password", passwordAuth, wantErr{}},
		{"password-grant-without-management", xep0257.Auth{Vouched: true, Manage: false}, noMgmt},
		{"certificate", certLogin(phone, true), wantErr{}},
		{"certificate-grant-without-management", certLogin(phone, false), noMgmt},
		{"no-cert-management-record", certLogin(bot, true), noMgmt},
		{"trusted-root-grant", certLogin(certFor(t, "alice@example.org"), false), noMgmt},
		{"certificate-not-on-record", certLogin(certFor(t, "alice@example.org"), true), forbidden("not on record")},
		{"disabled-certificate", certLogin(old, true), forbidden("no longer active")},
		{"another-accounts-certificate", certLogin(bobs, true), forbidden("no longer active")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, f.h.MayManage(t.Context(), alice, tc.auth), tc.err)
			for _, req := range []xep0257.Request{
				&xep0257.Append{Name: "New", Cert: certFor(t, "alice@example.org")},
				&xep0257.Disable{Name: "Phone"},
				&xep0257.Revoke{Name: "Phone"},
			} {
				if tc.err == (wantErr{}) {
					continue // allowed: covered by the other tests
				}
				before := f.snapshot(t)
				_, err := f.h.Process(t.Context(), alice, tc.auth, req)
				checkErr(t, err, tc.err)
				if after := f.snapshot(t); after != before {
					t.Errorf("%T changed the store:\nbefore %s\nafter  %s", req, before, after)
				}
			}
			if _, err := f.h.Process(t.Context(), alice, tc.auth, &xep0257.Items{}); err != nil {
				t.Errorf("<items/>: %v", err)
			}
		})
	}
	t.Run("store-unavailable", func(t *testing.T) {
		h := *f.h
		h.Store = faultyStore{Store: f.db, fail: map[string]bool{"FindCertByFingerprint": true}}
		checkErr(t, h.MayManage(t.Context(), alice, certLogin(phone, true)),
			wantErr{stanza.Wait, stanza.InternalServerError, "busy"})
		checkErr(t, h.MayManage(t.Context(), alice, passwordAuth), wantErr{})
	})
	t.Run("handleiq-without-session-auth", func(t *testing.T) {
		h := *f.h
		h.SessionAuth = nil
		checkErr(t, h.MayManage(t.Context(), jid.MustParse("alice@example.org/x"), xep0257.Auth{}), notVouched)
	})
}
