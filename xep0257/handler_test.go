package xep0257_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/xep0257"
)

// fixture is a handler on a fresh SQLite store with injected sessions, that
// records the certificates it is told were revoked.
type fixture struct {
	h       *xep0257.Handler
	db      *sqlite.DB
	sess    *fakeSessions
	revoked []*storage.Cert
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{db: openStore(t), sess: &fakeSessions{}}
	f.h = newHandler(t, f.db)
	f.h.Sessions = f.sess
	f.h.SessionAuth = f.sess.auth
	f.h.Revoked = func(_ context.Context, c *storage.Cert) { f.revoked = append(f.revoked, c) }
	return f
}

// snapshot is everything the store holds, to check that refusals change
// nothing.
func (f *fixture) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := f.db.WalkCerts(t.Context(), func(c *storage.Cert) error {
		fmt.Fprintf(&b, "%d %s %q %s %s %v %q %s\n", c.ID, c.Account, c.Name, c.Fingerprint, c.State, c.NoCertManagement, c.Resource, c.Changed)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	audit, err := f.db.Audit(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "audit: %d entries", len(audit))
	return b.String()
}

func (f *fixture) active(t *testing.T, account string) []*storage.Cert {
	t.Helper()
	certs, err := f.db.ListCerts(t.Context(), account, storage.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func TestProcessAppend(t *testing.T) {
	type tc struct {
		name   string
		limits xep0257.Limits
		prep   func(t *testing.T, f *fixture, der []byte) // der: the certificate the request uploads, if certFor made it
		from   jid.JID
		addrs  []string // xmppAddrs of the uploaded certificate (default: alice@example.org)
		der    []byte   // uploaded instead, if set
		req    func(der []byte) *xep0257.Append
		err    wantErr
		check  func(t *testing.T, f *fixture, der []byte)
	}
	appendAs := func(name string) func([]byte) *xep0257.Append {
		return func(der []byte) *xep0257.Append { return &xep0257.Append{Name: name, Cert: der} }
	}
	expired := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"},
		NotBefore: certtest.Now.Add(-48 * time.Hour), NotAfter: certtest.Now.Add(-24 * time.Hour)}).DER
	future := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"},
		NotBefore: certtest.Now.Add(24 * time.Hour), NotAfter: certtest.Now.Add(48 * time.Hour)}).DER
	chain := append(certFor(t, "alice@example.org"), certtest.NewCA(t, "Test CA").DER...)

	for _, c := range []tc{{
		name: "ok",
		from: alice,
		req:  appendAs("Phone"),
		check: func(t *testing.T, f *fixture, der []byte) {
			got := f.active(t, "alice@example.org")
			if len(got) != 1 {
				t.Fatalf("%d active certificates, want 1", len(got))
			}
			c := got[0]
			if c.Name != "Phone" || !bytes.Equal(c.DER, der) || c.NoCertManagement || c.Source != storage.SourceUpload || c.Resource != "" {
				t.Errorf("stored %+v", c)
			}
			audit, err := f.db.Audit(t.Context(), "alice@example.org", 0)
			if err != nil || len(audit) != 1 || audit[0].Actor != alice.String() || audit[0].Action != storage.ActionAdd {
				t.Errorf("audit = %+v, %v; want one add by %s", audit, err, alice)
			}
		},
	}, {
		name: "ok/no-cert-management",
		from: alice,
		req: func(der []byte) *xep0257.Append {
			return &xep0257.Append{Name: "Bot", Cert: der, NoCertManagement: true}
		},
		check: func(t *testing.T, f *fixture, der []byte) {
			if got := f.active(t, "alice@example.org"); len(got) != 1 || !got[0].NoCertManagement {
				t.Errorf("stored %+v, want no-cert-management", got)
			}
		},
	}, {
		name:  "ok/forced-resource",
		from:  alice,
		addrs: []string{"alice@example.org/tablet"},
		req:   appendAs("Tablet"),
		check: func(t *testing.T, f *fixture, der []byte) {
			if got := f.active(t, "alice@example.org"); len(got) != 1 || got[0].Resource != "tablet" {
				t.Errorf("stored %+v, want resource tablet", got)
			}
		},
	}, {
		name: "ok/name-trimmed",
		from: alice,
		req:  appendAs("  Phone\n"),
		check: func(t *testing.T, f *fixture, der []byte) {
			if got := f.active(t, "alice@example.org"); len(got) != 1 || got[0].Name != "Phone" {
				t.Errorf("stored %+v, want name Phone", got)
			}
		},
	}, {
		name: "ok/name-free-again-after-disable",
		from: alice,
		prep: func(t *testing.T, f *fixture, _ []byte) {
			mustAppend(t, f.h, alice, "Phone", certFor(t, "alice@example.org"), false)
			if _, err := f.h.Process(t.Context(), alice, f.sess.auth(alice), &xep0257.Disable{Name: "Phone"}); err != nil {
				t.Fatal(err)
			}
		},
		req: appendAs("Phone"),
	}, {
		name: "ok/same-name-other-account",
		from: alice,
		prep: func(t *testing.T, f *fixture, _ []byte) {
			mustAppend(t, f.h, bob, "Phone", certFor(t, "bob@example.org"), false)
		},
		req: appendAs("Phone"),
	}, {
		name: "conflict/name",
		from: alice,
		prep: func(t *testing.T, f *fixture, _ []byte) {
			mustAppend(t, f.h, alice, "Phone", certFor(t, "alice@example.org"), false)
		},
		req: appendAs("Phone"),
		err: wantErr{stanza.Cancel, stanza.Conflict, `a certificate named "Phone" already exists`},
	}, {
		name: "conflict/same-cert",
		from: alice,
		prep: func(t *testing.T, f *fixture, der []byte) { mustAppend(t, f.h, alice, "Phone", der, false) },
		req:  appendAs("Phone 2"),
		err:  wantErr{stanza.Cancel, stanza.Conflict, "this certificate is already stored"},
	}, {
		name: "conflict/same-cert-disabled",
		from: alice,
		prep: func(t *testing.T, f *fixture, der []byte) {
			mustAppend(t, f.h, alice, "Phone", der, false)
			if _, err := f.h.Process(t.Context(), alice, f.sess.auth(alice), &xep0257.Revoke{Name: "Phone"}); err != nil {
				t.Fatal(err)
			}
		},
		req: appendAs("Phone"),
		err: wantErr{stanza.Cancel, stanza.Conflict, "this certificate is already stored"},
	}, {
		// bob stored a certificate naming both of them; alice learns only
		// that it is stored.
		name:  "conflict/same-cert-other-account",
		from:  alice,
		addrs: []string{"bob@example.org", "alice@example.org"},
		prep:  func(t *testing.T, f *fixture, der []byte) { mustAppend(t, f.h, bob, "Shared", der, false) },
		req:   appendAs("Mine"),
		err:   wantErr{stanza.Cancel, stanza.Conflict, "this certificate is already stored"},
	}, {
		name:   "limit",
		limits: xep0257.Limits{MaxPerAccount: 2},
		from:   alice,
		prep: func(t *testing.T, f *fixture, _ []byte) {
			mustAppend(t, f.h, alice, "A", certFor(t, "alice@example.org"), false)
			mustAppend(t, f.h, alice, "B", certFor(t, "alice@example.org"), false)
		},
		req: appendAs("C"),
		err: wantErr{stanza.Modify, stanza.PolicyViolation, "at most 2 active certificates per account; disable or revoke one first"},
	}, {
		name:   "limit/counts-active-only",
		limits: xep0257.Limits{MaxPerAccount: 1},
		from:   alice,
		prep: func(t *testing.T, f *fixture, _ []byte) {
			mustAppend(t, f.h, alice, "A", certFor(t, "alice@example.org"), false)
			if _, err := f.h.Process(t.Context(), alice, f.sess.auth(alice), &xep0257.Disable{Name: "A"}); err != nil {
				t.Fatal(err)
			}
		},
		req: appendAs("B"),
	}, {
		name: "refused/expired",
		from: alice,
		der:  expired,
		req:  appendAs("Old"),
		err:  wantErr{stanza.Modify, stanza.NotAcceptable, "the certificate expired on 2026-11-21T12:00:00Z"},
	}, {
		name: "refused/not-yet-valid",
		from: alice,
		der:  future,
		req:  appendAs("New"),
		err:  wantErr{stanza.Modify, stanza.NotAcceptable, "not valid before 2026-11-23T12:00:00Z"},
	}, {
		name:  "refused/wrong-account",
		from:  alice,
		addrs: []string{"bob@example.org"},
		req:   appendAs("Bob's"),
		err:   wantErr{stanza.Modify, stanza.NotAcceptable, "the certificate names bob@example.org but you are alice@example.org"},
	}, {
		name:  "refused/no-xmppaddr",
		from:  alice,
		addrs: []string{},
		req:   appendAs("Anonymous"),
		err:   wantErr{stanza.Modify, stanza.NotAcceptable, "no id-on-xmppAddr"},
	}, {
		name: "refused/garbage",
		from: alice,
		der:  []byte("this is not DER"),
		req:  appendAs("Garbage"),
		err:  wantErr{stanza.Modify, stanza.NotAcceptable, "not a valid X.509 certificate"},
	}, {
		name: "refused/chain",
		from: alice,
		der:  chain,
		req:  appendAs("Chain"),
		err:  wantErr{stanza.Modify, stanza.NotAcceptable, "more than one certificate"},
	}, {
		name: "refused/xep-example",
		from: jid.MustParse("hamlet@shakespeare.lit/denmark"),
		der:  xepDER(t),
		req:  appendAs("Mobile Client"),
		err:  wantErr{stanza.Modify, stanza.NotAcceptable, "the certificate expired on 2008-12-27"},
	}, {
		name: "refused/not-an-account",
		from: jid.MustParse("example.org"),
		req:  appendAs("Server"),
		err:  wantErr{stanza.Cancel, stanza.NotAllowed, "must come from a user account"},
	}, {
		// Issue 10.5: Prosody's Ꭰ@ is ꭰ@ here (unassigned in Unicode 3.2).
		name: "refused/account-two-forms",
		from: jid.MustParse("\u13A0@example.org/phone"),
		req:  appendAs("Phone"),
		err:  wantErr{stanza.Cancel, stanza.NotAllowed, "another form on the server"},
	}, {
		name:   "refused/name-too-long",
		limits: xep0257.Limits{MaxNameLen: 3},
		from:   alice,
		req:    appendAs("Phone"),
		err:    wantErr{stanza.Modify, stanza.NotAcceptable, "name is longer than 3 characters"},
	}, {
		name: "refused/name-control",
		from: alice,
		req:  appendAs("a\x00b"),
		err:  wantErr{stanza.Modify, stanza.NotAcceptable, "control character"},
	}, {
		name:   "refused/cert-too-large",
		limits: xep0257.Limits{MaxCertSize: 100},
		from:   alice,
		req:    appendAs("Phone"),
		err:    wantErr{stanza.Modify, stanza.PolicyViolation, "x509cert is larger than 100 bytes of base64"},
	}, {
		name: "refused/empty-cert",
		from: alice,
		der:  []byte{},
		req:  appendAs("Empty"),
		err:  wantErr{stanza.Modify, stanza.BadRequest, "<x509cert/> is empty"},
	}} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.h.Limits = c.limits
			der := c.der
			if der == nil {
				addrs := c.addrs
				if addrs == nil {
					addrs = []string{"alice@example.org"}
				}
				der = certFor(t, addrs...)
			}
			if c.prep != nil {
				c.prep(t, f, der)
			}
			before := f.snapshot(t)
			payload, err := f.h.Process(t.Context(), c.from, f.sess.auth(c.from), c.req(der))
			checkErr(t, err, c.err)
			if payload != nil {
				t.Errorf("append returned a payload: %s", encode(t, payload))
			}
			if err != nil {
				if after := f.snapshot(t); after != before {
					t.Errorf("a refused append changed the store:\nbefore %s\nafter  %s", before, after)
				}
			}
			if c.check != nil {
				c.check(t, f, der)
			}
		})
	}
}

func TestProcessDisableRevoke(t *testing.T) {
	for _, op := range []struct {
		name  string
		req   func(name string) xep0257.Request
		state storage.State
	}{
		{"disable", func(n string) xep0257.Request { return &xep0257.Disable{Name: n} }, storage.StateDisabled},
		{"revoke", func(n string) xep0257.Request { return &xep0257.Revoke{Name: n} }, storage.StateRevoked},
	} {
		t.Run(op.name+"/ok", func(t *testing.T) {
			f := newFixture(t)
			der := certFor(t, "alice@example.org")
			mustAppend(t, f.h, alice, "Phone", der, false)
			mustAppend(t, f.h, alice, "Laptop", certFor(t, "alice@example.org"), false)
			payload, err := f.h.Process(t.Context(), aliceBot, f.sess.auth(aliceBot), op.req(" Phone "))
			if err != nil || payload != nil {
				t.Fatalf("Process = %v, %v; want an empty result", payload, err)
			}
			c, err := f.db.FindCertByFingerprint(t.Context(), storage.FingerprintOf(der))
			if err != nil || c.State != op.state {
				t.Fatalf("record after %s: %+v, %v", op.name, c, err)
			}
			if got := f.active(t, "alice@example.org"); len(got) != 1 || got[0].Name != "Laptop" {
				t.Errorf("active after %s: %+v", op.name, got)
			}
			audit, err := f.db.Audit(t.Context(), "alice@example.org", 1)
			if err != nil || len(audit) != 1 || audit[0].Actor != aliceBot.String() || string(audit[0].Action) != op.name {
				t.Errorf("audit = %+v, %v", audit, err)
			}
			switch op.state {
			case storage.StateRevoked:
				if len(f.revoked) != 1 || f.revoked[0].Fingerprint != storage.FingerprintOf(der) || f.revoked[0].State != storage.StateRevoked {
					t.Errorf("Revoked called with %+v, want the revoked record", f.revoked)
				}
			default:
				if len(f.revoked) != 0 {
					t.Errorf("disable called Revoked: %+v", f.revoked)
				}
			}
		})
		for _, nf := range []struct {
			name string
			prep func(t *testing.T, f *fixture)
		}{
			{"unknown", func(t *testing.T, f *fixture) {}},
			{"other-account", func(t *testing.T, f *fixture) {
				mustAppend(t, f.h, bob, "Phone", certFor(t, "bob@example.org"), false)
			}},
			{"already-disabled", func(t *testing.T, f *fixture) {
				mustAppend(t, f.h, alice, "Phone", certFor(t, "alice@example.org"), false)
				if _, err := f.h.Process(t.Context(), alice, f.sess.auth(alice), &xep0257.Disable{Name: "Phone"}); err != nil {
					t.Fatal(err)
				}
			}},
		} {
			t.Run(op.name+"/not-found/"+nf.name, func(t *testing.T) {
				f := newFixture(t)
				nf.prep(t, f)
				before := f.snapshot(t)
				_, err := f.h.Process(t.Context(), alice, f.sess.auth(alice), op.req("Phone"))
				checkErr(t, err, wantErr{stanza.Cancel, stanza.ItemNotFound, `no active certificate named "Phone"`})
				if after := f.snapshot(t); after != before {
					t.Errorf("store changed:\nbefore %s\nafter  %s", before, after)
				}
				if len(f.revoked) != 0 {
					t.Errorf("Revoked called: %+v", f.revoked)
				}
			})
		}
	}
}

func TestProcessItems(t *testing.T) {
	f := newFixture(t)
	phone := certFor(t, "alice@example.org")
	bot := certFor(t, "alice@example.org")
	old := certFor(t, "alice@example.org")
	mustAppend(t, f.h, alice, "Phone", phone, false)
	mustAppend(t, f.h, alice, "Old", old, false)
	mustAppend(t, f.h, alice, "Bot", bot, true)
	mustAppend(t, f.h, bob, "Bob's", certFor(t, "bob@example.org"), false)
	if _, err := f.h.Process(t.Context(), alice, f.sess.auth(alice), &xep0257.Disable{Name: "Old"}); err != nil {
		t.Fatal(err)
	}
	f.sess.login(jid.MustParse("alice@example.org/phone"), phone)
	f.sess.login(jid.MustParse("alice@example.org/Phone 2"), phone)
	f.sess.login(jid.MustParse("bob@example.org/phone"), phone) // another account's session: not listed

	payload, err := f.h.Process(t.Context(), alice, f.sess.auth(alice), &xep0257.Items{})
	if err != nil {
		t.Fatal(err)
	}
	want := `<items xmlns="urn:xmpp:saslcert:1">` +
		`<item><name>Phone</name><x509cert>` + b64(phone) + `</x509cert><users><resource>Phone 2</resource><resource>phone</resource></users></item>` +
		`<item><name>Bot</name><x509cert>` + b64(bot) + `</x509cert><no-cert-management></no-cert-management></item>` +
		`</items>`
	if got := encode(t, payload); got != want {
		t.Errorf("items:\n got %s\nwant %s", got, want)
	}

	t.Run("empty", func(t *testing.T) {
		payload, err := f.h.Process(t.Context(), jid.MustParse("carol@example.org/x"), f.sess.auth(jid.MustParse("carol@example.org/x")), &xep0257.Items{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := encode(t, payload), `<items xmlns="urn:xmpp:saslcert:1"></items>`; got != want {
			t.Errorf("items = %s, want %s", got, want)
		}
	})
	t.Run("no-sessions", func(t *testing.T) {
		h := *f.h
		h.Sessions = nil
		payload, err := h.Process(t.Context(), alice, authOf(&h, alice), &xep0257.Items{})
		if err != nil {
			t.Fatal(err)
		}
		if got := encode(t, payload); strings.Contains(got, "<users>") {
			t.Errorf("items without session information list users: %s", got)
		}
	})
	t.Run("no-cert-management-session-may-list", func(t *testing.T) {
		f.sess.login(aliceBot, bot)
		if _, err := f.h.Process(t.Context(), aliceBot, f.sess.auth(aliceBot), &xep0257.Items{}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestProcessNoCertManagement(t *testing.T) {
	f := newFixture(t)
	bot := certFor(t, "alice@example.org")
	phone := certFor(t, "alice@example.org")
	mustAppend(t, f.h, alice, "Bot", bot, true)
	mustAppend(t, f.h, alice, "Phone", phone, false)
	f.sess.login(aliceBot, bot)
	f.sess.login(alice, phone)
	unknownSession := jid.MustParse("alice@example.org/ghost")
	f.sess.login(unknownSession, []byte("a certificate the store never saw"))

	forbidden := wantErr{stanza.Auth, stanza.Forbidden, "this session logged in with a certificate that may not manage certificates"}
	for _, tc := range []struct {
		name string
		from jid.JID
		req  xep0257.Request
		err  wantErr
	}{
		{"bot/append", aliceBot, &xep0257.Append{Name: "New", Cert: certFor(t, "alice@example.org")}, forbidden},
		{"bot/disable", aliceBot, &xep0257.Disable{Name: "Phone"}, forbidden},
		{"bot/revoke", aliceBot, &xep0257.Revoke{Name: "Phone"}, forbidden},
		{"bot/revoke-itself", aliceBot, &xep0257.Revoke{Name: "Bot"}, forbidden},
		{"bot/items", aliceBot, &xep0257.Items{}, wantErr{}},
		{"unknown-cert/append", unknownSession, &xep0257.Append{Name: "New", Cert: certFor(t, "alice@example.org")},
			wantErr{stanza.Auth, stanza.Forbidden, "not on record"}},
		{"phone/append", alice, &xep0257.Append{Name: "New", Cert: certFor(t, "alice@example.org")}, wantErr{}},
		{"password-session/disable", jid.MustParse("alice@example.org/desktop"), &xep0257.Disable{Name: "New"}, wantErr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot(t)
			_, err := f.h.Process(t.Context(), tc.from, f.sess.auth(tc.from), tc.req)
			checkErr(t, err, tc.err)
			if err != nil {
				if after := f.snapshot(t); after != before {
					t.Errorf("store changed:\nbefore %s\nafter  %s", before, after)
				}
			}
		})
	}
	if len(f.revoked) != 0 {
		t.Errorf("Revoked called: %+v", f.revoked)
	}
}

func TestProcessStoreUnavailable(t *testing.T) {
	busy := wantErr{stanza.Wait, stanza.InternalServerError, "the certificate store is busy; try again"}
	for _, tc := range []struct {
		name  string
		fail  string
		from  jid.JID
		req   func(t *testing.T) xep0257.Request
		login bool // alice's session logged in with the stored certificate
	}{
		{"append", "AddCert", alice, func(t *testing.T) xep0257.Request {
			return &xep0257.Append{Name: "New", Cert: certFor(t, "alice@example.org")}
		}, false},
		{"items", "ListCerts", alice, func(*testing.T) xep0257.Request { return &xep0257.Items{} }, false},
		{"disable", "SetState", alice, func(*testing.T) xep0257.Request { return &xep0257.Disable{Name: "Phone"} }, false},
		{"revoke", "RevokeKey", alice, func(*testing.T) xep0257.Request { return &xep0257.Revoke{Name: "Phone"} }, false},
		// The no-cert-management check fails closed.
		{"session-lookup/append", "FindCertByFingerprint", alice, func(t *testing.T) xep0257.Request {
			return &xep0257.Append{Name: "New", Cert: certFor(t, "alice@example.org")}
		}, true},
		{"session-lookup/revoke", "FindCertByFingerprint", alice, func(*testing.T) xep0257.Request { return &xep0257.Revoke{Name: "Phone"} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			der := certFor(t, "alice@example.org")
			mustAppend(t, f.h, alice, "Phone", der, false)
			if tc.login {
				f.sess.login(alice, der)
			}
			var logs bytes.Buffer
			f.h.Store = faultyStore{Store: f.db, fail: map[string]bool{tc.fail: true}}
			f.h.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			before := f.snapshot(t)
			payload, err := f.h.Process(t.Context(), tc.from, f.sess.auth(tc.from), tc.req(t))
			checkErr(t, err, busy)
			if payload != nil {
				t.Errorf("payload and error together")
			}
			if after := f.snapshot(t); after != before {
				t.Errorf("store changed:\nbefore %s\nafter  %s", before, after)
			}
			if len(f.revoked) != 0 {
				t.Errorf("Revoked called: %+v", f.revoked)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "database is locked") {
				t.Errorf("internal failure not logged at Warn with its cause: %q", logs.String())
			}
		})
	}
}

func TestProcessContextDone(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	before := f.snapshot(t)
	_, err := f.h.Process(ctx, alice, f.sess.auth(alice), &xep0257.Append{Name: "Phone", Cert: certFor(t, "alice@example.org")})
	checkErr(t, err, wantErr{stanza.Wait, stanza.InternalServerError, "busy"})
	if after := f.snapshot(t); after != before {
		t.Errorf("store changed:\nbefore %s\nafter  %s", before, after)
	}
}

func TestProcessBadRequests(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		req  xep0257.Request
		err  wantErr
	}{
		{"nil", nil, wantErr{stanza.Modify, stanza.BadRequest, "no request"}},
		{"nil-append", (*xep0257.Append)(nil), wantErr{stanza.Modify, stanza.BadRequest, "no request"}},
		{"blank-disable", &xep0257.Disable{Name: " "}, wantErr{stanza.Modify, stanza.NotAcceptable, "name is blank"}},
		{"empty-revoke", &xep0257.Revoke{}, wantErr{stanza.Modify, stanza.BadRequest, "<name/> is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload, err := f.h.Process(t.Context(), alice, f.sess.auth(alice), tc.req)
			checkErr(t, err, tc.err)
			if payload != nil {
				t.Error("payload and error together")
			}
		})
	}
}

// TestLogsNoCertificates checks that the handler logs fingerprints, never
// certificate data.
func TestLogsNoCertificates(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.h.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	der := certFor(t, "alice@example.org")
	mustAppend(t, f.h, alice, "Phone", der, false)
	f.sess.login(alice, der)
	for _, req := range []xep0257.Request{
		&xep0257.Items{},
		&xep0257.Append{Name: "Phone", Cert: der},
		&xep0257.Append{Name: "Bob", Cert: certFor(t, "bob@example.org")},
		&xep0257.Revoke{Name: "Phone"},
	} {
		_, _ = f.h.Process(t.Context(), alice, f.sess.auth(alice), req)
	}
	out := logs.String()
	if !strings.Contains(out, storage.FingerprintOf(der).String()) {
		t.Errorf("logs do not name the fingerprint:\n%s", out)
	}
	if strings.Contains(out, b64(der)[:40]) || strings.Contains(out, "BEGIN") {
		t.Errorf("logs contain certificate data:\n%s", out)
	}
}

func TestForFeatures(t *testing.T) {
	var h xep0257.Handler
	for _, node := range []string{"", "urn:xmpp:delegation:2::urn:xmpp:saslcert:1", "urn:xmpp:delegation:2:bare:urn:xmpp:saslcert:1", "other"} {
		var got []string
		err := h.ForFeatures(node, func(f info.Feature) error {
			got = append(got, f.Var)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{xep0257.NS}
		if node == "other" {
			want = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ForFeatures(%q) = %q, want %q", node, got, want)
		}
	}
}
