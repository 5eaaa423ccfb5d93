package component

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/lifecycle"
	"github.com/saslcert/saslcert/storage"
)

// sessionsQuery returns the <sessions/> query the component sent after
// connecting.
func sessionsQuery(t *testing.T, fc *fakeConn) *node {
	t.Helper()
	for {
		select {
		case n := <-fc.auto:
			if q := n.child(NSPlugin, "sessions"); q != nil {
				return q
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no <sessions/> query")
		}
	}
}

func fingerprintLookupXML(authzid, fp string) string {
	a := ""
	if authzid != "" {
		a = " authzid='" + authzid + "'"
	}
	return fmt.Sprintf("<lookup xmlns='%s' fingerprint='%s'%s/>", NSPlugin, fp, a)
}

// The <sessions/> query announces lookups by fingerprint always and the
// cache TTL when there is one; granted lookups carry max-age only with a
// TTL, never beyond the certificate's notAfter.
func TestCacheAnnouncementAndMaxAge(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ttl        time.Duration
		wantTTL    string
		wantMaxAge string // for a certificate valid for a year
	}{
		{"off", 0, "", ""},
		{"one minute", time.Minute, "60", "60"},
		{"sub-second rounds to off", 500 * time.Millisecond, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnv(t, func(c *Config) { c.CacheTTL = tc.ttl })
			q := sessionsQuery(t, e.fc)
			if q.attr("lookup") != "fingerprint" || q.attr("cache-ttl") != tc.wantTTL || q.hasAttr("cache-ttl") != (tc.wantTTL != "") {
				t.Fatalf("<sessions/> query %s", q)
			}
			alice := newCert(t, "alice@example.org")
			e.appendDirect(t, "alice@example.org/a", "alice", alice.DER, false)
			n := e.fc.roundTrip(t, pluginIQ("g", "get", domain, lookupXML("", alice.DER)))
			checkResult(t, n, "g", domain)
			if l := n.child(NSPlugin, "lookup"); l.attr("max-age") != tc.wantMaxAge || l.hasAttr("max-age") != (tc.wantMaxAge != "") {
				t.Errorf("lookup answer %s, want max-age %q", n, tc.wantMaxAge)
			}
		})
	}

	t.Run("bounded by notAfter", func(t *testing.T) {
		e := startEnv(t, func(c *Config) { c.CacheTTL = time.Hour })
		soon := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"},
			NotBefore: fixedNow().Add(-time.Hour), NotAfter: fixedNow().Add(90 * time.Second)})
		e.appendDirect(t, "alice@example.org/a", "soon", soon.DER, false)
		n := e.fc.roundTrip(t, pluginIQ("g", "get", domain, lookupXML("", soon.DER)))
		checkResult(t, n, "g", domain)
		if got := n.child(NSPlugin, "lookup").attr("max-age"); got != "90" {
			t.Errorf("max-age %q, want 90 (notAfter is 90 s away)", got)
		}
	})
}

// A lookup may name the certificate by its fingerprint: the stored record
// stands for it. Without trusted roots an unknown fingerprint is refused
// like an unknown certificate.
func TestLookupByFingerprint(t *testing.T) {
	e := startEnv(t, nil)
	alice := newCert(t, "alice@example.org")
	tablet := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org/tablet"}})
	e.appendDirect(t, "alice@example.org/a", "alice", alice.DER, false)
	e.appendDirect(t, "alice@example.org/a", "tablet", tablet.DER, false)
	fpA, fpT := storage.FingerprintOf(alice.DER).String(), storage.FingerprintOf(tablet.DER).String()

	for _, tc := range []struct {
		name, authzid, fp, jid, resource string
	}{
		{"no authzid", "", fpA, "alice@example.org", ""},
		{"authzid", "alice@example.org", fpA, "alice@example.org", ""},
		{"forced resource", "", fpT, "alice@example.org", "tablet"},
	} {
		t.Run("granted/"+tc.name, func(t *testing.T) {
			n := e.fc.roundTrip(t, pluginIQ("f", "get", domain, fingerprintLookupXML(tc.authzid, tc.fp)))
			checkResult(t, n, "f", domain)
			l := n.child(NSPlugin, "lookup")
			if l.attr("jid") != tc.jid || l.attr("resource") != tc.resource || l.attr("fingerprint") != tc.fp {
				t.Errorf("answer %s", n)
			}
		})
	}
	for _, tc := range []struct {
		name, authzid, fp, typ, cond, sasl string
	}{
		{"unknown fingerprint", "", storage.FingerprintOf([]byte("nothing")).String(), "auth", "not-authorized", "not-authorized"},
		{"another account", "bob@example.org", fpA, "auth", "not-authorized", "invalid-authzid"},
		{"malformed fingerprint", "", "sha256:zz", "modify", "bad-request", ""},
		{"md5 fingerprint", "", "md5:00", "modify", "bad-request", ""},
	} {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			n := e.fc.roundTrip(t, pluginIQ("f", "get", domain, fingerprintLookupXML(tc.authzid, tc.fp)))
			er := checkError(t, n, "f", tc.typ, tc.cond)
			if tc.sasl != "" && er.child("urn:ietf:params:xml:ns:xmpp-sasl", tc.sasl) == nil {
				t.Errorf("no SASL <%s/> in %s", tc.sasl, n)
			}
		})
	}
}

// observedEnv is startEnv with the store observed, a cache TTL and a short
// request timeout.
func observedEnv(t *testing.T, ttl time.Duration) *env {
	t.Helper()
	return startEnvStore(t, func(c *Config) {
		c.CacheTTL = ttl
		c.RequestTimeout = 500 * time.Millisecond
	}, true)
}

// Every committed change reaches the plugin as <changed/> before it is
// acknowledged; a refused change sends nothing; without a TTL nothing is
// sent; a plugin that refuses the notice is asked to forget everything (a
// new <sessions/> query) before the change is acknowledged; one that does
// not answer in time does not cost the link (issue 16): the notice stays on
// the stream ahead of the acknowledgement, and a late refusal is answered by
// the same forget-everything query. Only a plugin that refuses even that
// loses the link (it forgets everything when the link ends).
func TestNotifyChanged(t *testing.T) {
	const phone = "alice@example.org/phone"
	expectChanged := func(t *testing.T, fc *fakeConn) *node {
		t.Helper()
		n := fc.expect(t)
		c := n.child(NSPlugin, "changed")
		if n.attr("type") != "set" || n.attr("to") != domain || c == nil || c.attr("jid") != "alice@example.org" {
			t.Fatalf("want <changed jid='alice@example.org'/> to the server first, got %s", n)
		}
		return n
	}
	answer := func(fc *fakeConn, n *node, errXML string) {
		if errXML != "" {
			fc.send(fmt.Sprintf("<iq type='error' id='%s' from='%s' to='%s'>%s</iq>", n.attr("id"), domain, compJID, errXML))
			return
		}
		fc.send(fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'/>", n.attr("id"), domain, compJID))
	}
	answerChanged := func(t *testing.T, fc *fakeConn, errXML string) {
		t.Helper()
		answer(fc, expectChanged(t, fc), errXML)
	}
	stillUp := func(t *testing.T, e *env) {
		t.Helper()
		checkResult(t, e.fc.roundTrip(t, direct("alive", "get", phone, "<ping xmlns='urn:xmpp:ping'/>")), "alive", phone)
		if e.comp.Connects() != 1 || e.srv.accepted() != 1 {
			t.Fatalf("%d connects, %d connections: the link was dropped", e.comp.Connects(), e.srv.accepted())
		}
	}
	notImplemented := "<error type='cancel'><feature-not-implemented xmlns='" + nsStanzas + "'/></error>"

	t.Run("append and disable", func(t *testing.T) {
		e := observedEnv(t, time.Minute)
		c := newCert(t, "alice@example.org")
		e.fc.send(direct("a1", "set", phone, appendXML("laptop", c.DER, false)))
		answerChanged(t, e.fc, "")
		checkResult(t, e.fc.expect(t), "a1", phone)

		// A refused append (duplicate name) changes nothing and says nothing.
		e.fc.send(direct("a2", "set", phone, appendXML("laptop", newCert(t, "alice@example.org").DER, false)))
		checkError(t, e.fc.expect(t), "a2", "cancel", "conflict")

		e.fc.send(direct("d1", "set", phone, "<disable xmlns='urn:xmpp:saslcert:1'><name>laptop</name></disable>"))
		answerChanged(t, e.fc, "")
		checkResult(t, e.fc.expect(t), "d1", phone)
	})

	t.Run("a plugin that does not know <changed/>", func(t *testing.T) {
		e := observedEnv(t, time.Minute)
		sessionsQuery(t, e.fc) // the one after connecting
		e.fc.send(direct("a1", "set", phone, appendXML("laptop", newCert(t, "alice@example.org").DER, false)))
		answerChanged(t, e.fc, notImplemented)
		sessionsQuery(t, e.fc) // forget everything, answered (fake server)
		checkResult(t, e.fc.expect(t), "a1", phone)
		stillUp(t, e)
	})

	t.Run("a plugin that does not answer in time", func(t *testing.T) {
		e := observedEnv(t, time.Minute)
		sessionsQuery(t, e.fc)
		e.fc.send(direct("a1", "set", phone, appendXML("laptop", newCert(t, "alice@example.org").DER, false)))
		n := expectChanged(t, e.fc)
		// Unanswered: the change is acknowledged after the notice, on the
		// same link.
		checkResult(t, e.fc.expect(t), "a1", phone)
		if got := len(e.activeCerts(t, "alice@example.org")); got != 1 {
			t.Errorf("%d active certificates, want 1: the change itself is committed", got)
		}
		stillUp(t, e)
		// A late refusal: the plugin is asked to forget everything.
		answer(e.fc, n, notImplemented)
		sessionsQuery(t, e.fc)
		stillUp(t, e)
		if !strings.Contains(e.log.String(), "refused a change notice late") {
			t.Error("the late refusal was not logged")
		}
	})

	t.Run("a change committed at its request's deadline", func(t *testing.T) {
		// The store commits only once the request's context has ended:
		// the notice must still go out, with its own deadline.
		e := startEnvWrapped(t, func(c *Config) {
			c.CacheTTL = time.Minute
			c.RequestTimeout = 500 * time.Millisecond
		}, true, func(s storage.Store) storage.Store { return lateStore{s} })
		e.fc.send(direct("a1", "set", phone, appendXML("laptop", newCert(t, "alice@example.org").DER, false)))
		answerChanged(t, e.fc, "")
		if n := e.fc.expect(t); n.attr("id") != "a1" {
			t.Fatalf("want the answer to a1, got %s", n)
		}
		if got := len(e.activeCerts(t, "alice@example.org")); got != 1 {
			t.Errorf("%d active certificates, want 1", got)
		}
		stillUp(t, e)
		if strings.Contains(e.log.String(), "has not confirmed") {
			t.Error("the notice was not confirmed although the plugin answered at once")
		}
	})

	t.Run("a revoke committed at its request's deadline", func(t *testing.T) {
		e := startEnvWrapped(t, func(c *Config) {
			c.CacheTTL = time.Minute
			c.RequestTimeout = 500 * time.Millisecond
		}, true, func(s storage.Store) storage.Store { return lateStore{s} })
		c := newCert(t, "alice@example.org")
		e.fc.send(direct("a1", "set", phone, appendXML("laptop", c.DER, false)))
		answerChanged(t, e.fc, "")
		e.fc.expect(t) // the answer to a1
		e.fc.send(direct("r1", "set", phone, revokeXML("laptop")))
		answerChanged(t, e.fc, "")
		// The revocation notice (close the certificate's sessions) still
		// goes out.
		n := e.fc.expect(t)
		if r := n.child(NSPlugin, "revoked"); r == nil || r.attr("fingerprint") != storage.FingerprintOf(c.DER).String() {
			t.Fatalf("want <revoked/> for the laptop, got %s", n)
		}
		e.fc.send(fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'><revoked xmlns='%s' closed='1'/></iq>", n.attr("id"), domain, compJID, NSPlugin))
		if n := e.fc.expect(t); n.attr("id") != "r1" {
			t.Fatalf("want the answer to r1, got %s", n)
		}
		stillUp(t, e)
		// ... and its answer is waited for (it used to be given up at once,
		// with the request's expired deadline).
		if strings.Contains(e.log.String(), "could not tell the server plugin about a revocation") {
			t.Error("the revocation notice was given up")
		}
	})

	t.Run("a plugin that refuses to forget anything", func(t *testing.T) {
		e := observedEnv(t, time.Minute)
		sessionsQuery(t, e.fc)
		e.srv.mu.Lock()
		e.srv.sessionsError = notImplemented
		e.srv.mu.Unlock()
		e.fc.send(direct("a1", "set", phone, appendXML("laptop", newCert(t, "alice@example.org").DER, false)))
		answerChanged(t, e.fc, notImplemented)
		// The last resort: the link ends, and the plugin forgets with it.
		e.fc.waitClosed(t, 5*time.Second)
		if got := len(e.activeCerts(t, "alice@example.org")); got != 1 {
			t.Errorf("%d active certificates, want 1: the change itself is committed", got)
		}
	})

	t.Run("no TTL, no notice", func(t *testing.T) {
		e := observedEnv(t, 0)
		e.fc.send(direct("a1", "set", phone, appendXML("laptop", newCert(t, "alice@example.org").DER, false)))
		checkResult(t, e.fc.expect(t), "a1", phone)
	})
}

// lateStore commits additions only once the request's context has ended,
// as a slow disk or CA would just before --request-timeout.
type lateStore struct{ storage.Store }

func (s lateStore) AddCert(ctx context.Context, c *storage.Cert, opts storage.AddOptions) error {
	<-ctx.Done()
	return s.Store.AddCert(context.WithoutCancel(ctx), c, opts)
}

func (s lateStore) SetState(ctx context.Context, account, name string, to storage.State, actor string) (*storage.Cert, error) {
	<-ctx.Done()
	return s.Store.SetState(context.WithoutCancel(ctx), account, name, to, actor)
}

// WatchAudit passes on changes the admin commands wrote to the store (actor
// "cli"): <changed/> per account, and the revocation callback (which closes
// sessions) per revoke; entries already there when it starts, and changes
// this process made through the life-cycle owner, are not passed on. (The
// watch is lifecycle.Manager.Watch; it follows every writer that is not
// this process, whatever its actor.)
func TestWatchAudit(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.CacheTTL = time.Minute })
	const phone = "alice@example.org/phone"
	a, b := newCert(t, "alice@example.org"), newCert(t, "alice@example.org")
	e.appendDirect(t, phone, "a", a.DER, false)
	e.appendDirect(t, phone, "b", b.DER, false)
	// An old change by the CLI, before the watch starts: not replayed.
	if _, err := e.db.SetState(t.Context(), "alice@example.org", "b", storage.StateDisabled, "cli"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var revoked []string
	mgr := lifecycle.New(e.db, e.comp.log)
	mgr.Register(lifecycle.Effects{
		Changed: func(ctx context.Context, account string) { _ = e.comp.NotifyChanged(ctx, account) },
		Revoked: func(ctx context.Context, c *storage.Cert) {
			mu.Lock()
			revoked = append(revoked, c.Name)
			mu.Unlock()
			e.comp.NotifyRevoked(ctx, c)
		},
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		mgr.Watch(ctx, lifecycle.WatchOptions{Interval: 20 * time.Millisecond, Watcher: compJID})
	}()
	defer func() { cancel(); <-done }()
	e.fc.expectNone(t, 200*time.Millisecond)

	// Someone else's change (here: a user's, as the component writes it,
	// through the life-cycle owner, which passes it on itself) is not
	// passed on again.
	wrote := make(chan error, 1)
	go func() {
		_, err := mgr.SetState(t.Context(), "alice@example.org", "a", storage.StateDisabled, phone)
		wrote <- err
	}()
	n := e.fc.expect(t)
	if c := n.child(NSPlugin, "changed"); c == nil || c.attr("jid") != "alice@example.org" {
		t.Fatalf("want the change's own <changed/>, got %s", n)
	}
	e.fc.send(fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'/>", n.attr("id"), domain, compJID))
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	e.fc.expectNone(t, 200*time.Millisecond)

	// The CLI revokes: <changed/>, then <revoked/> (answered by the plugin).
	if _, err := e.db.SetStateByFingerprint(t.Context(), storage.FingerprintOf(a.DER), storage.StateRevoked, "cli"); err != nil {
		t.Fatal(err)
	}
	n = e.fc.expect(t)
	if c := n.child(NSPlugin, "changed"); c == nil || c.attr("jid") != "alice@example.org" {
		t.Fatalf("want <changed/> first, got %s", n)
	}
	e.fc.send(fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'/>", n.attr("id"), domain, compJID))
	n = e.fc.expect(t)
	if r := n.child(NSPlugin, "revoked"); r == nil || r.attr("fingerprint") != storage.FingerprintOf(a.DER).String() {
		t.Fatalf("want <revoked/> for a, got %s", n)
	}
	e.fc.send(fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'><revoked xmlns='%s' closed='0'/></iq>", n.attr("id"), domain, compJID, NSPlugin))
	waitFor(t, "the revocation callback", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(revoked) == 1 && revoked[0] == "a"
	})
	if !strings.Contains(e.log.String(), "passing on a change made outside the component") {
		t.Error("the change was not logged")
	}
}
