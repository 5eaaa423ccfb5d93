package sasl_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// authzFixture is a store with one certificate per situation.
type authzFixture struct {
	store                                   *memFinder
	alice, tablet, nocm, multi, notAlice    []byte
	disabled, revoked, expired, notYet, bob []byte
	unknown, barely, garbage                []byte
	strasse                                 []byte // xmppAddr straße@example.org, not stored
}

func newAuthzFixture(tb testing.TB) *authzFixture {
	tb.Helper()
	now := certtest.Now
	f := &authzFixture{store: newMemFinder()}
	mk := func(o certtest.Options) []byte { return certtest.New(tb, o).DER }
	a := []string{"alice@example.org"}
	f.alice = mk(certtest.Options{XMPPAddrs: a})
	f.tablet = mk(certtest.Options{XMPPAddrs: []string{"alice@example.org/tablet"}})
	f.nocm = mk(certtest.Options{XMPPAddrs: a})
	f.multi = mk(certtest.Options{XMPPAddrs: []string{"alice@example.org", "bob@example.org"}})
	f.notAlice = mk(certtest.Options{XMPPAddrs: []string{"carol@example.org"}})
	f.disabled = mk(certtest.Options{XMPPAddrs: a})
	f.revoked = mk(certtest.Options{XMPPAddrs: a})
	f.expired = mk(certtest.Options{XMPPAddrs: a, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	f.barely = mk(certtest.Options{XMPPAddrs: a, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Minute)})
	f.notYet = mk(certtest.Options{XMPPAddrs: a, NotBefore: now.Add(time.Hour)})
	f.bob = mk(certtest.Options{XMPPAddrs: []string{"bob@example.net"}})
	f.unknown = mk(certtest.Options{XMPPAddrs: a})
	f.garbage = []byte("\x30\x03\x02\x01\x00")
	f.strasse = mk(certtest.Options{XMPPAddrs: []string{"straße@example.org"}})

	f.store.add(f.alice, "alice@example.org", storage.StateActive, "")
	f.store.add(f.tablet, "alice@example.org", storage.StateActive, "tablet")
	f.store.add(f.nocm, "alice@example.org", storage.StateActive, "").NoCertManagement = true
	f.store.add(f.multi, "alice@example.org", storage.StateActive, "")
	f.store.add(f.notAlice, "alice@example.org", storage.StateActive, "")
	f.store.add(f.disabled, "alice@example.org", storage.StateDisabled, "")
	f.store.add(f.revoked, "alice@example.org", storage.StateRevoked, "")
	f.store.add(f.expired, "alice@example.org", storage.StateActive, "")
	f.store.add(f.barely, "alice@example.org", storage.StateActive, "")
	f.store.add(f.notYet, "alice@example.org", storage.StateActive, "")
	f.store.add(f.bob, "bob@example.net", storage.StateActive, "")
	f.store.add(f.garbage, "alice@example.org", storage.StateActive, "")
	return f
}

func (f *authzFixture) authorizer() *sasl.Authorizer {
	return &sasl.Authorizer{Store: f.store, Now: func() time.Time { return certtest.Now }, Policy: sasl.Policy{ClockSkew: 5 * time.Minute}}
}

func TestAuthorize(t *testing.T) {
	f := newAuthzFixture(t)
	otherDER := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}}).DER
	tests := []struct {
		name      string
		store     sasl.CertFinder // nil: the fixture
		noStore   bool
		req       sasl.Request
		want      sasl.Condition // "" means granted
		wantIn    string         // substring of the failure reason
		wantJID   string
		wantRes   string
		wantNoCM  bool
		wantErrIs error
	}{
		{name: "ok/no-authzid", req: sasl.Request{DER: f.alice}, wantJID: "alice@example.org"},
		{name: "ok/no-authzid-domain", req: sasl.Request{DER: f.alice, Domain: "example.org"}, wantJID: "alice@example.org"},
		{name: "ok/domain-unnormalised", req: sasl.Request{DER: f.alice, Domain: "EXAMPLE.org."}, wantJID: "alice@example.org"},
		{name: "ok/authzid-owner", req: sasl.Request{DER: f.alice, Authzid: "alice@example.org", Domain: "example.org"}, wantJID: "alice@example.org"},
		{name: "ok/authzid-uppercase", req: sasl.Request{DER: f.alice, Authzid: "ALICE@Example.ORG"}, wantJID: "alice@example.org"},
		{name: "ok/forced-resource", req: sasl.Request{DER: f.tablet}, wantJID: "alice@example.org", wantRes: "tablet"},
		{name: "ok/no-cert-management", req: sasl.Request{DER: f.nocm}, wantJID: "alice@example.org", wantNoCM: true},
		{name: "ok/multi-with-authzid", req: sasl.Request{DER: f.multi, Authzid: "alice@example.org"}, wantJID: "alice@example.org"},
		{name: "ok/expired-within-skew", req: sasl.Request{DER: f.barely}, wantJID: "alice@example.org"},

		{name: "error/empty-der", req: sasl.Request{}, want: sasl.MalformedRequest},
		{name: "error/oversized-der", req: sasl.Request{DER: make([]byte, sasl.MaxDERSize+1)}, want: sasl.NotAuthorized},
		{name: "error/unknown", req: sasl.Request{DER: f.unknown}, want: sasl.NotAuthorized, wantIn: "unknown certificate"},
		{name: "error/garbage-unknown", req: sasl.Request{DER: []byte("hello")}, want: sasl.NotAuthorized},
		{name: "error/no-store", noStore: true, req: sasl.Request{DER: f.alice}, want: sasl.TemporaryAuthFailure},
		{name: "error/store-unavailable", store: finderFunc(func(context.Context, storage.Fingerprint) (*storage.Cert, error) {
			return nil, fmt.Errorf("sqlite: database is locked: %w", storage.ErrUnavailable)
		}), req: sasl.Request{DER: f.alice}, want: sasl.TemporaryAuthFailure, wantErrIs: storage.ErrUnavailable},
		{name: "error/store-context-canceled", store: finderFunc(func(ctx context.Context, _ storage.Fingerprint) (*storage.Cert, error) {
			return nil, context.Canceled
		}), req: sasl.Request{DER: f.alice}, want: sasl.TemporaryAuthFailure, wantErrIs: context.Canceled},
		{name: "error/store-nil-record", store: finderFunc(func(context.Context, storage.Fingerprint) (*storage.Cert, error) {
			return nil, nil
		}), req: sasl.Request{DER: f.alice}, want: sasl.TemporaryAuthFailure},
		{name: "error/der-mismatch-same-fingerprint", store: finderFunc(func(_ context.Context, fp storage.Fingerprint) (*storage.Cert, error) {
			return &storage.Cert{Account: "alice@example.org", DER: otherDER, Fingerprint: fp, State: storage.StateActive}, nil
		}), req: sasl.Request{DER: f.alice}, want: sasl.NotAuthorized, wantIn: "differs"},
		{name: "error/disabled", req: sasl.Request{DER: f.disabled}, want: sasl.NotAuthorized, wantIn: "disabled"},
		{name: "error/revoked", req: sasl.Request{DER: f.revoked}, want: sasl.NotAuthorized, wantIn: "revoked"},
		{name: "error/unknown-state", store: finderFunc(func(_ context.Context, fp storage.Fingerprint) (*storage.Cert, error) {
			return &storage.Cert{Account: "alice@example.org", DER: f.alice, Fingerprint: fp, State: "paused"}, nil
		}), req: sasl.Request{DER: f.alice}, want: sasl.NotAuthorized, wantIn: "unknown state"},
		{name: "error/stored-garbage", req: sasl.Request{DER: f.garbage}, want: sasl.NotAuthorized, wantIn: "cannot be parsed", wantErrIs: sasl.ErrMalformed},
		{name: "error/expired", req: sasl.Request{DER: f.expired}, want: sasl.CredentialsExpired, wantIn: "expired"},
		{name: "error/not-yet-valid", req: sasl.Request{DER: f.notYet}, want: sasl.NotAuthorized, wantIn: "not valid before"},
		{name: "error/authzid-other-user", req: sasl.Request{DER: f.alice, Authzid: "bob@example.org"}, want: sasl.InvalidAuthzid},
		{name: "error/authzid-full-jid", req: sasl.Request{DER: f.alice, Authzid: "alice@example.org/tablet"}, want: sasl.InvalidAuthzid, wantIn: "full JID"},
		{name: "error/authzid-not-a-jid", req: sasl.Request{DER: f.alice, Authzid: "@@"}, want: sasl.InvalidAuthzid, wantIn: "not a JID"},
		{name: "error/authzid-nul", req: sasl.Request{DER: f.alice, Authzid: "alice@example.org\x00"}, want: sasl.InvalidAuthzid},
		{name: "error/authzid-domain-only", req: sasl.Request{DER: f.alice, Authzid: "example.org"}, want: sasl.InvalidAuthzid},
		{name: "error/authzid-other-domain", req: sasl.Request{DER: f.alice, Authzid: "alice@example.net", Domain: "example.org"}, want: sasl.InvalidAuthzid, wantIn: "not in the domain"},
		{name: "error/authzid-other-domain-no-domain-check", req: sasl.Request{DER: f.alice, Authzid: "alice@example.net"}, want: sasl.InvalidAuthzid},
		{name: "error/cert-of-other-domain", req: sasl.Request{DER: f.bob, Domain: "example.org"}, want: sasl.NotAuthorized, wantIn: "another domain"},
		{name: "error/cert-of-other-domain-authzid", req: sasl.Request{DER: f.bob, Authzid: "bob@example.net", Domain: "example.org"}, want: sasl.InvalidAuthzid},
		{name: "error/multi-no-authzid", req: sasl.Request{DER: f.multi}, want: sasl.InvalidAuthzid, wantIn: "several JIDs"},
		{name: "error/multi-authzid-other", req: sasl.Request{DER: f.multi, Authzid: "bob@example.org"}, want: sasl.InvalidAuthzid},
		{name: "error/cert-does-not-name-owner", req: sasl.Request{DER: f.notAlice}, want: sasl.NotAuthorized, wantIn: "no usable xmppAddr"},
		{name: "error/cert-does-not-name-owner-authzid", req: sasl.Request{DER: f.notAlice, Authzid: "carol@example.org"}, want: sasl.NotAuthorized},
		{name: "error/stored-owner-invalid", store: finderFunc(func(_ context.Context, fp storage.Fingerprint) (*storage.Cert, error) {
			return &storage.Cert{Account: "example.org", DER: f.alice, Fingerprint: fp, State: storage.StateActive}, nil
		}), req: sasl.Request{DER: f.alice}, want: sasl.NotAuthorized, wantIn: "is not a user's bare JID"},
		// Issue 10.5: a record (e.g. inserted before this check) whose owner
		// and xmppAddr are straße@: the server would bind strasse@.
		{name: "error/stored-owner-two-forms", store: finderFunc(func(_ context.Context, fp storage.Fingerprint) (*storage.Cert, error) {
			return &storage.Cert{Account: "straße@example.org", DER: f.strasse, Fingerprint: fp, State: storage.StateActive}, nil
		}), req: sasl.Request{DER: f.strasse}, want: sasl.NotAuthorized, wantIn: "is not a user's bare JID", wantErrIs: sasl.ErrJIDForms},
		{name: "error/stored-owner-two-forms-authzid", store: finderFunc(func(_ context.Context, fp storage.Fingerprint) (*storage.Cert, error) {
			return &storage.Cert{Account: "straße@example.org", DER: f.strasse, Fingerprint: fp, State: storage.StateActive}, nil
		}), req: sasl.Request{DER: f.strasse, Authzid: "strasse@example.org"}, want: sasl.NotAuthorized, wantErrIs: sasl.ErrJIDForms},
		{name: "error/stored-strasse-cert-says-sharp-s", store: finderFunc(func(_ context.Context, fp storage.Fingerprint) (*storage.Cert, error) {
			return &storage.Cert{Account: "strasse@example.org", DER: f.strasse, Fingerprint: fp, State: storage.StateActive}, nil
		}), req: sasl.Request{DER: f.strasse}, want: sasl.NotAuthorized, wantIn: "no usable xmppAddr"},
		{name: "error/authzid-two-forms", req: sasl.Request{DER: f.alice, Authzid: "alice@example.org/ﬀ"}, want: sasl.InvalidAuthzid, wantErrIs: sasl.ErrJIDForms},
		{name: "error/stored-resource-invalid", store: finderFunc(func(_ context.Context, fp storage.Fingerprint) (*storage.Cert, error) {
			return &storage.Cert{Account: "alice@example.org", DER: f.alice, Fingerprint: fp, State: storage.StateActive, Resource: "\xff"}, nil
		}), req: sasl.Request{DER: f.alice}, want: sasl.NotAuthorized, wantIn: "resource"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := f.authorizer()
			if tc.store != nil {
				a.Store = tc.store
			}
			if tc.noStore {
				a.Store = nil
			}
			g, err := a.Authorize(t.Context(), tc.req)
			if tc.want != "" {
				var fl *sasl.Failure
				if !errors.As(err, &fl) {
					t.Fatalf("Authorize error = %v (%T), want a *Failure %s", err, err, tc.want)
				}
				t.Logf("%v", err)
				if fl.Condition != tc.want {
					t.Fatalf("Condition = %s (%s), want %s", fl.Condition, fl.Reason, tc.want)
				}
				if !strings.Contains(fl.Reason, tc.wantIn) {
					t.Errorf("Reason = %q, want it to contain %q", fl.Reason, tc.wantIn)
				}
				if tc.wantErrIs != nil && !errors.Is(err, tc.wantErrIs) {
					t.Errorf("error %v does not wrap %v", err, tc.wantErrIs)
				}
				if !g.JID.Equal(jid.JID{}) || g.Resource != "" || g.Fingerprint != (storage.Fingerprint{}) || g.NoCertManagement {
					t.Errorf("Grant = %+v with an error, want the zero Grant", g)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if g.JID.String() != tc.wantJID || g.Resource != tc.wantRes || g.NoCertManagement != tc.wantNoCM {
				t.Errorf("Grant = {%s %q %v}, want {%s %q %v}", g.JID, g.Resource, g.NoCertManagement, tc.wantJID, tc.wantRes, tc.wantNoCM)
			}
			if g.Fingerprint != storage.FingerprintOf(tc.req.DER) {
				t.Errorf("Grant.Fingerprint = %s", g.Fingerprint)
			}
			if !g.JID.Equal(g.JID.Bare()) {
				t.Errorf("Grant.JID %s is not bare", g.JID)
			}
		})
	}
}

func TestAuthorizeDefaultClock(t *testing.T) {
	// A certificate valid around the real time authorizes with Now unset.
	now := time.Now()
	c := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	s := newMemFinder()
	s.add(c.DER, "alice@example.org", storage.StateActive, "")
	g, err := (&sasl.Authorizer{Store: s}).Authorize(t.Context(), sasl.Request{DER: c.DER})
	if err != nil || !g.JID.Equal(jid.MustParse("alice@example.org")) {
		t.Fatalf("Authorize = %+v, %v", g, err)
	}
}

func TestFailureError(t *testing.T) {
	tests := []struct {
		name string
		f    *sasl.Failure
		want string
	}{
		{name: "reason", f: &sasl.Failure{Condition: sasl.NotAuthorized, Reason: "unknown certificate"}, want: "sasl: not-authorized: unknown certificate"},
		{name: "wrapped", f: &sasl.Failure{Condition: sasl.TemporaryAuthFailure, Reason: "certificate store failed", Err: storage.ErrUnavailable},
			want: "sasl: temporary-auth-failure: certificate store failed: storage: unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}
