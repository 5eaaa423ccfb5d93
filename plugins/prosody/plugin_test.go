// Tests of mod_saslcert.lua against a real Prosody (internal/prosodytest)
// with a stand-in component that answers the plugin protocol from a map.
package prosody_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/pluginproto"
	"github.com/saslcert/saslcert/sasl"
)

const revokedText = "This client certificate has been revoked."

// startServer starts Prosody with the plugin and registers alice, the account
// the tests' certificates name (the plugin refuses certificates of accounts
// that do not exist). The prefetch is off, so that every lookup the fake
// component sees was caused by an <auth/>; TestPrefetch covers it.
func startServer(t *testing.T) *prosodytest.Server {
	t.Helper()
	return startServerWith(t, "	saslcert_prefetch = false")
}

// startServerWith is startServer with extra VirtualHost settings.
func startServerWith(t *testing.T, extraHost string) *prosodytest.Server {
	t.Helper()
	s := prosodytest.Start(t, prosodytest.Options{Plugin: true, PluginTimeout: time.Second, ExtraHost: extraHost})
	s.Register(t, "alice", "alicepw")
	return s
}

// melliumLogin logs in with SASL EXTERNAL through mellium, presenting cert
// and sending authzid; it returns the session (closed at cleanup).
func melliumLogin(t *testing.T, s *prosodytest.Server, cert *certtest.Cert, authzid, resource string) (*xmpp.Session, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	origin := jid.MustParse("alice@" + s.Domain)
	if resource != "" {
		origin = jid.MustParse("alice@" + s.Domain + "/" + resource)
	}
	tc := s.TLSConfig(tls.Certificate{Certificate: [][]byte{cert.DER}, PrivateKey: cert.Key})
	sess, err := s.DialClient(ctx, origin, xmpp.StartTLS(tc), xmpp.SASL(authzid, "", sasl.External), xmpp.BindResource())
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { sess.Close(); sess.Conn().Close() })
	return sess, nil
}

func TestExternal(t *testing.T) {
	s := startServer(t)
	s.Register(t, "bob", "bobpw")
	s.Register(t, "strasse", "strassepw")
	fc := startComponent(t, s)

	alice := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	fc.set(alice.DER, answer{JID: "alice@example.org", Fingerprint: fingerprint(alice.DER)})

	t.Run("offered first only with a client certificate", func(t *testing.T) {
		c := dialRaw(t, s, alice)
		m := c.Mechanisms()
		if len(m) < 2 || m[0] != "EXTERNAL" {
			t.Fatalf("mechanisms with a certificate: %v", m)
		}
		t.Logf("with a certificate: %v", m)
		c = dialRaw(t, s, nil)
		m = c.Mechanisms()
		for _, x := range m {
			if x == "EXTERNAL" {
				t.Fatalf("EXTERNAL offered without a client certificate: %v", m)
			}
		}
		t.Logf("without: %v", m)
	})

	t.Run("success with = (mellium)", func(t *testing.T) {
		sess, err := melliumLogin(t, s, alice, "", "")
		if err != nil {
			t.Fatalf("login: %v\n", err)
		}
		if got := sess.LocalAddr(); got.Bare().String() != "alice@example.org" || got.Resourcepart() == "" {
			t.Fatalf("bound as %s", got)
		}
		t.Logf("bound as %s", sess.LocalAddr())
		l := fc.takeLookups()
		if len(l) != 1 {
			t.Fatalf("%d lookups", len(l))
		}
		if l[0].From != "example.org" || l[0].To != "certs.example.org" || l[0].HasAuthzid || l[0].Cert != b64(alice.DER) {
			t.Fatalf("lookup %+v", l[0])
		}
	})

	t.Run("success with a bare authzid (raw)", func(t *testing.T) {
		c := dialRaw(t, s, alice)
		n := c.authExternal(b64([]byte("alice@example.org")))
		if n.XMLName.Local != "success" || strings.TrimSpace(n.Text) != "" {
			t.Fatalf("got %s", n)
		}
		if got := c.bind("laptop"); got != "alice@example.org/laptop" {
			t.Fatalf("bound %s", got)
		}
		l := fc.takeLookups()
		if len(l) != 1 || !l[0].HasAuthzid || l[0].Authzid != "alice@example.org" {
			t.Fatalf("lookups %+v", l)
		}
	})

	t.Run("success with a bare authzid (mellium)", func(t *testing.T) {
		sess, err := melliumLogin(t, s, alice, "alice@example.org", "")
		if err != nil {
			t.Fatal(err)
		}
		if got := sess.LocalAddr().Bare().String(); got != "alice@example.org" {
			t.Fatalf("bound as %s", sess.LocalAddr())
		}
		if l := fc.takeLookups(); len(l) != 1 || l[0].Authzid != "alice@example.org" {
			t.Fatalf("lookups %+v", l)
		}
	})

	t.Run("empty auth gets a = challenge, response is the initial response", func(t *testing.T) {
		c := dialRaw(t, s, alice)
		n := c.authExternal("-")
		if n.XMLName.Local != "challenge" || n.Text != "=" {
			t.Fatalf("got %s", n)
		}
		c.send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</response>`)
		if n := c.next(); n.XMLName.Local != "success" {
			t.Fatalf("got %s", n)
		}
		if got := c.bind(""); !strings.HasPrefix(got, "alice@example.org/") {
			t.Fatalf("bound %s", got)
		}
		fc.takeLookups()
	})

	t.Run("empty auth then abort", func(t *testing.T) {
		c := dialRaw(t, s, alice)
		if n := c.authExternal("-"); n.XMLName.Local != "challenge" {
			t.Fatalf("got %s", n)
		}
		c.send(`<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`)
		failure(t, c.next(), "aborted")
		if l := fc.takeLookups(); len(l) != 0 {
			t.Fatalf("lookups after abort: %+v", l)
		}
		// The stream is still usable: a new EXTERNAL attempt succeeds.
		if n := c.authExternal("="); n.XMLName.Local != "success" {
			t.Fatalf("after abort: %s", n)
		}
		fc.takeLookups()
	})

	t.Run("forced resource", func(t *testing.T) {
		tablet := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org/tablet"}})
		fc.set(tablet.DER, answer{JID: "alice@example.org", Resource: "tablet", Fingerprint: fingerprint(tablet.DER)})
		c := dialRaw(t, s, tablet)
		if n := c.authExternal("="); n.XMLName.Local != "success" {
			t.Fatalf("got %s", n)
		}
		if got := c.bind("phone"); got != "alice@example.org/tablet" {
			t.Fatalf("bound %s, want alice@example.org/tablet", got)
		}
		t.Logf("asked for phone, bound alice@example.org/tablet")
		sess, err := melliumLogin(t, s, tablet, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if got := sess.LocalAddr().String(); got != "alice@example.org/tablet" {
			t.Fatalf("mellium bound as %s", got)
		}
		// The second login took the resource over (conflict_resolve default
		// kick_old): the first stream gets <conflict/>.
		se := c.expectStreamError(5 * time.Second)
		if se.Child("", "conflict") == nil {
			t.Fatalf("first session: %s", se)
		}
		fc.takeLookups()
	})

	refusals := []struct {
		name, want, text string
		a                answer
	}{
		{"invalid-authzid", "invalid-authzid", "a full JID is not an authorization identity",
			answer{ErrType: "auth", ErrCond: "not-authorized", SASLCond: "invalid-authzid", Text: "a full JID is not an authorization identity"}},
		{"account-disabled", "account-disabled", "", answer{ErrType: "auth", ErrCond: "not-authorized", SASLCond: "account-disabled"}},
		{"credentials-expired", "credentials-expired", "", answer{ErrType: "auth", ErrCond: "not-authorized", SASLCond: "credentials-expired"}},
		{"auth error without SASL child", "not-authorized", "", answer{ErrType: "auth", ErrCond: "not-authorized"}},
		{"auth error with unknown SASL child", "not-authorized", "", answer{ErrType: "auth", ErrCond: "not-authorized", SASLCond: "bogus"}},
		{"wait error", "temporary-auth-failure", "", answer{ErrType: "wait", ErrCond: "internal-server-error", SASLCond: "temporary-auth-failure"}},
		{"cancel error with SASL child", "temporary-auth-failure", "", answer{ErrType: "cancel", ErrCond: "internal-server-error", SASLCond: "not-authorized"}},
		{"grant for another domain", "not-authorized", "", answer{JID: "alice@elsewhere.example"}},
		{"grant of a full JID", "temporary-auth-failure", "", answer{JID: "alice@example.org/x"}},
		{"grant for another certificate", "temporary-auth-failure", "", answer{JID: "alice@example.org", Fingerprint: "sha256:" + strings.Repeat("00", 32)}},
		// Issue 10.5: a JID that stringprep changes names another account
		// here (strasse exists; straße is what the component decided on).
		{"grant of a JID stringprep changes (ß)", "not-authorized", "", answer{JID: "straße@example.org"}},
		{"grant of a JID stringprep changes (case)", "not-authorized", "", answer{JID: "Alice@example.org"}},
		{"grant of a resource stringprep changes", "not-authorized", "", answer{JID: "alice@example.org", Resource: "\ufb00"}},
		// Unknown is not allowed: a grant must name the certificate and say
		// whether it may manage certificates.
		{"grant without a fingerprint", "temporary-auth-failure", "", answer{JID: "alice@example.org", NoFingerprint: true}},
		{"grant without no-cert-management", "temporary-auth-failure", "", answer{JID: "alice@example.org", NCM: "-"}},
		{"grant with no-cert-management='yes'", "temporary-auth-failure", "", answer{JID: "alice@example.org", NCM: "yes"}},
	}
	for _, r := range refusals {
		t.Run("refusal: "+r.name, func(t *testing.T) {
			cert := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
			if r.a.Fingerprint == "" && r.a.ErrType == "" {
				r.a.Fingerprint = fingerprint(cert.DER)
			}
			fc.set(cert.DER, r.a)
			c := dialRaw(t, s, cert)
			text := failure(t, c.authExternal("="), r.want)
			if text != r.text {
				t.Errorf("text %q, want %q", text, r.text)
			}
			if l := fc.takeLookups(); len(l) != 1 {
				t.Errorf("%d lookups", len(l))
			}
			// Still unauthenticated: binding is refused.
			c.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`)
			if n, err := c.Next(3 * time.Second); err == nil && n.XMLName.Local == "iq" {
				if v := n.Attr("type"); v == "result" {
					t.Fatalf("bind after failure succeeded: %s", n)
				}
			}
		})
	}

	t.Run("unknown certificate (mellium sees an error)", func(t *testing.T) {
		stranger := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
		_, err := melliumLogin(t, s, stranger, "", "")
		if err == nil {
			t.Fatal("login with an unknown certificate succeeded")
		}
		t.Logf("mellium: %v", err)
		fc.takeLookups()
	})

	t.Run("no client certificate: failure, not a hang", func(t *testing.T) {
		c := dialRaw(t, s, nil)
		start := time.Now()
		text := failure(t, c.authExternal("="), "not-authorized")
		if text != "no client certificate was presented" {
			t.Errorf("text %q", text)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
		c = dialRaw(t, s, nil)
		failure(t, c.authExternal("-"), "not-authorized")
		if l := fc.takeLookups(); len(l) != 0 {
			t.Fatalf("lookups: %+v", l)
		}
	})

	t.Run("no TLS: encryption-required", func(t *testing.T) {
		c := dialPlain(t, s)
		failure(t, c.authExternal("="), "encryption-required")
	})

	t.Run("bad base64", func(t *testing.T) {
		for _, bad := range []string{"!!!!", "YWJj=", "Y", "YW=j"} {
			c := dialRaw(t, s, alice)
			failure(t, c.authExternal(bad), "incorrect-encoding")
		}
		if l := fc.takeLookups(); len(l) != 0 {
			t.Fatalf("lookups: %+v", l)
		}
	})

	t.Run("authzid too long or not text: invalid-authzid without asking", func(t *testing.T) {
		long := strings.Repeat("a", 3072-len("@example.org")) + "@example.org"
		c := dialRaw(t, s, alice)
		failure(t, c.authExternal(b64([]byte(long))), "invalid-authzid")
		c = dialRaw(t, s, alice)
		failure(t, c.authExternal(b64([]byte("alice\x00@example.org"))), "invalid-authzid")
		c = dialRaw(t, s, alice)
		failure(t, c.authExternal(b64([]byte{0xff, 0xfe})), "invalid-authzid")
		if l := fc.takeLookups(); len(l) != 0 {
			t.Fatalf("lookups: %+v", l)
		}
		// 3071 bytes is still asked about (and refused by the component here).
		ok := strings.Repeat("a", 3071-len("@example.org")) + "@example.org"
		c = dialRaw(t, s, alice)
		n := c.authExternal(b64([]byte(ok)))
		if l := fc.takeLookups(); len(l) != 1 || l[0].Authzid != ok {
			t.Fatalf("3071-byte authzid: %d lookups", len(l))
		}
		failure(t, n, "invalid-authzid") // the component granted alice, not the authzid
	})

	t.Run("EXTERNAL refused, then PLAIN on the same stream", func(t *testing.T) {
		stranger := certtest.New(t, certtest.Options{XMPPAddrs: []string{"bob@example.org"}})
		c := dialRaw(t, s, stranger)
		failure(t, c.authExternal("="), "not-authorized")
		c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + b64([]byte("\x00bob\x00bobpw")) + `</auth>`)
		if n := c.next(); n.XMLName.Local != "success" {
			t.Fatalf("PLAIN after EXTERNAL failure: %s", n)
		}
		if got := c.bind("desk"); got != "bob@example.org/desk" {
			t.Fatalf("bound %s", got)
		}
		fc.takeLookups()
		// No session notice for a password session.
		time.Sleep(100 * time.Millisecond)
		if n := fc.takeNotices(); len(n) != 0 {
			for _, x := range n {
				if strings.HasPrefix(x.JID, "bob@") {
					t.Fatalf("notice for a password session: %+v", x)
				}
			}
		}
	})

	t.Run("password login unaffected", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sess, err := s.DialClient(ctx, jid.MustParse("bob@example.org"),
			xmpp.StartTLS(s.TLSConfig(tls.Certificate{Certificate: [][]byte{alice.DER}, PrivateKey: alice.Key})),
			xmpp.SASL("", "bobpw", msasl.Plain), xmpp.BindResource())
		if err != nil {
			t.Fatal(err)
		}
		sess.Close()
		sess.Conn().Close()
	})

	t.Run("quiet log, no certificates in it", func(t *testing.T) {
		log := s.Log()
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, ":saslcert\t") && (strings.Contains(line, "\terror\t") || strings.Contains(line, "\twarn\t")) &&
				!strings.Contains(line, "Component answered") && !strings.Contains(line, "Component granted") {
				t.Errorf("unexpected log line: %s", line)
			}
		}
		if strings.Contains(log, b64(alice.DER)[:40]) {
			t.Error("the certificate appears in the log")
		}
	})
}

func TestComponentSilent(t *testing.T) {
	s := startServer(t)
	fc := startComponent(t, s)
	alice := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	fc.set(alice.DER, answer{Silent: true})
	c := dialRaw(t, s, alice)
	start := time.Now()
	n := c.authExternal("=")
	d := time.Since(start)
	failure(t, n, "temporary-auth-failure")
	t.Logf("after %v (saslcert_timeout = 1s)", d.Round(time.Millisecond))
	if d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("failure after %v, want about 1s", d)
	}
	// The client disconnecting while a lookup is outstanding is harmless.
	c = dialRaw(t, s, alice)
	c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`)
	c.Conn().Close()
	time.Sleep(1500 * time.Millisecond)
	if strings.Contains(s.Log(), "Traceback") {
		t.Errorf("traceback in the log")
	}
}

func TestComponentDisconnected(t *testing.T) {
	// A long timeout: a disconnected component must fail fast, not time out.
	s := prosodytest.Start(t, prosodytest.Options{Plugin: true, PluginTimeout: 30 * time.Second})
	s.Register(t, "alice", "alicepw")
	alice := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})

	// Never connected.
	c := dialRaw(t, s, alice)
	start := time.Now()
	failure(t, c.authExternal("="), "temporary-auth-failure")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	t.Logf("never connected: after %v", time.Since(start).Round(time.Millisecond))

	// Connected, grants, then gone.
	fc := startComponent(t, s)
	fc.set(alice.DER, answer{JID: "alice@example.org", Fingerprint: fingerprint(alice.DER)})
	c = dialRaw(t, s, alice)
	if n := c.authExternal("="); n.XMLName.Local != "success" {
		t.Fatalf("got %s", n)
	}
	fc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.Log(), "component disconnected") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c = dialRaw(t, s, alice)
	start = time.Now()
	failure(t, c.authExternal("="), "temporary-auth-failure")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	t.Logf("disconnected: after %v", time.Since(start).Round(time.Millisecond))
}

func TestSessionsAndRevocation(t *testing.T) {
	s := startServer(t)
	fc := startComponent(t, s)
	alice := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	other := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	fpA, fpO := fingerprint(alice.DER), fingerprint(other.DER)
	fc.set(alice.DER, answer{JID: "alice@example.org", Fingerprint: fpA})
	fc.set(other.DER, answer{JID: "alice@example.org", Fingerprint: fpO})

	c1 := dialRaw(t, s, alice)
	if n := c1.authExternal("="); n.XMLName.Local != "success" {
		t.Fatalf("got %s", n)
	}
	c1.bind("one")
	c2 := dialRaw(t, s, alice)
	if n := c2.authExternal("="); n.XMLName.Local != "success" {
		t.Fatalf("got %s", n)
	}
	c2.bind("two")
	c3 := dialRaw(t, s, other)
	if n := c3.authExternal("="); n.XMLName.Local != "success" {
		t.Fatalf("got %s", n)
	}
	c3.bind("three")
	// Authenticated with the revoked certificate but not bound yet.
	c4 := dialRaw(t, s, alice)
	if n := c4.authExternal("="); n.XMLName.Local != "success" {
		t.Fatalf("got %s", n)
	}
	c4.open() // restarted stream, resource not bound yet
	// A password session of the same account is not touched.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Register(t, "alice", "alicepw")
	pw, err := s.DialClient(ctx, jid.MustParse("alice@example.org"),
		xmpp.StartTLS(s.TLSConfig()), xmpp.SASL("", "alicepw", msasl.Plain), xmpp.BindResource())
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Conn().Close()
	pwDone := make(chan error, 1)
	go func() { pwDone <- pw.Serve(nil) }()

	t.Run("bound notices", func(t *testing.T) {
		got := map[string]notice{}
		for _, n := range fc.waitNotices(t, 3) {
			got[n.JID] = n
		}
		want := map[string]string{"alice@example.org/one": fpA, "alice@example.org/two": fpA, "alice@example.org/three": fpO}
		if len(got) != len(want) {
			t.Fatalf("notices %+v", got)
		}
		for j, fp := range want {
			n := got[j]
			if n.Event != "bound" || n.Fingerprint != fp || n.From != "example.org" {
				t.Errorf("notice for %s: %+v", j, n)
			}
		}
	})

	t.Run("sessions list", func(t *testing.T) {
		r := fc.sendPayload(t, stanza.GetIQ, "q1", pluginproto.SessionsQuery{})
		t.Logf("reply %s", r)
		if v := r.Attr("type"); v != "result" {
			t.Fatalf("reply %s", r)
		}
		list := r.Child("", "sessions")
		if list == nil {
			t.Fatalf("reply %s", r)
		}
		got := map[string]string{}
		for _, n := range list.Children {
			j := n.Attr("jid")
			fp := n.Attr("fingerprint")
			got[j] = fp
		}
		want := map[string]string{"alice@example.org/one": fpA, "alice@example.org/two": fpA, "alice@example.org/three": fpO}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("sessions %v, want %v", got, want)
		}
	})

	t.Run("revoked from a user is forbidden", func(t *testing.T) {
		c3.send(fmt.Sprintf(`<iq type='set' id='evil' to='%s'><revoked xmlns='%s' jid='alice@example.org' fingerprint='%s'/></iq>`, s.Domain, nsPlugin, fpA))
		n := c3.next()
		if v := n.Attr("type"); v != "error" || n.Child("", "error") == nil || n.Child("", "error").Child("", "forbidden") == nil {
			t.Fatalf("reply %s", n)
		}
		t.Logf("reply %s", n)
		c3.send(fmt.Sprintf(`<iq type='get' id='evil2' to='%s'><sessions xmlns='%s'/></iq>`, s.Domain, nsPlugin))
		n = c3.next()
		if v := n.Attr("type"); v != "error" || n.Child("", "error").Child("", "forbidden") == nil {
			t.Fatalf("reply %s", n)
		}
	})

	t.Run("revoked closes matching sessions with reset", func(t *testing.T) {
		r := fc.sendPayload(t, stanza.SetIQ, "r1", pluginproto.Revoked{JID: "alice@example.org", Fingerprint: fpA})
		t.Logf("reply %s", r)
		rv := r.Child("", "revoked")
		if v := r.Attr("type"); v != "result" || rv == nil {
			t.Fatalf("reply %s", r)
		}
		if closed := rv.Attr("closed"); closed != "3" {
			t.Fatalf("closed=%q, want 3", closed)
		}
		for i, c := range []*rawClient{c1, c2, c4} {
			se := c.expectStreamError(5 * time.Second)
			if se.Child("", "reset") == nil || se.Child("", "text") == nil || se.Child("", "text").Text != revokedText {
				t.Fatalf("session %d: %s", i, se)
			}
			if i == 0 {
				t.Logf("stream error: %s", se)
			}
		}
		// The other certificate's session and the password session live on.
		c3.send(`<iq type='get' id='p1' to='example.org'><ping xmlns='urn:xmpp:ping'/></iq>`)
		if n := c3.next(); n.XMLName.Local != "iq" {
			t.Fatalf("other session: %s", n)
		}
		select {
		case err := <-pwDone:
			t.Fatalf("password session ended: %v", err)
		default:
		}
		closed := map[string]bool{}
		for _, n := range fc.waitNotices(t, 2) {
			if n.Event == "closed" {
				closed[n.JID] = true
			}
		}
		if !closed["alice@example.org/one"] || !closed["alice@example.org/two"] || len(closed) != 2 {
			t.Errorf("closed notices %v", closed)
		}
	})

	t.Run("revoked with nothing to close", func(t *testing.T) {
		r := fc.sendPayload(t, stanza.SetIQ, "r2", pluginproto.Revoked{JID: "carol@example.org", Fingerprint: fpO})
		if rv := r.Child("", "revoked"); rv == nil {
			t.Fatalf("reply %s", r)
		} else if closed := rv.Attr("closed"); closed != "0" {
			t.Fatalf("closed=%q", closed)
		}
		r = fc.sendPayload(t, stanza.SetIQ, "r3", pluginproto.Revoked{JID: "alice@elsewhere.example", Fingerprint: fpO})
		if e := r.Child("", "error"); e == nil || e.Child("", "bad-request") == nil {
			t.Fatalf("reply %s", r)
		}
	})

	t.Run("revocation racing a grant", func(t *testing.T) {
		late := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
		fc.set(late.DER, answer{JID: "alice@example.org", Fingerprint: fingerprint(late.DER), Hold: true})
		c := dialRaw(t, s, late)
		c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`)
		// The grant is on its way when the revocation arrives.
		var held string
		select {
		case held = <-fc.held:
			fc.held <- held
		case <-time.After(5 * time.Second):
			t.Fatal("no lookup")
		}
		r := fc.sendPayload(t, stanza.SetIQ, "r9", pluginproto.Revoked{JID: "alice@example.org", Fingerprint: fingerprint(late.DER)})
		if closed := r.Child("", "revoked").Attr("closed"); closed != "0" {
			t.Fatalf("closed=%q", closed)
		}
		fc.release(t)
		if text := failure(t, c.next(), "not-authorized"); text != revokedText {
			t.Errorf("text %q", text)
		}
	})

	t.Run("revoked session seen by mellium", func(t *testing.T) {
		sess, err := melliumLogin(t, s, other, "", "four")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- sess.Serve(nil) }()
		fc.waitNotices(t, 1)
		r := fc.sendPayload(t, stanza.SetIQ, "r4", pluginproto.Revoked{JID: "alice@example.org", Fingerprint: fpO})
		if closed := r.Child("", "revoked").Attr("closed"); closed != "2" {
			t.Fatalf("closed=%q, want 2", closed)
		}
		select {
		case err := <-done:
			var se stream.Error
			if !errors.As(err, &se) || se.Err != "reset" {
				t.Fatalf("Serve: %v", err)
			}
			t.Logf("mellium Serve: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("session not closed")
		}
	})
}

func TestMissingComponentOption(t *testing.T) {
	s := prosodytest.Start(t, prosodytest.Options{Plugin: true, PluginNoComponent: true})
	alice := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	c := dialRaw(t, s, alice)
	for _, m := range c.Mechanisms() {
		if m == "EXTERNAL" {
			t.Fatalf("EXTERNAL offered: %v", c.Mechanisms())
		}
	}
	failure(t, c.authExternal("="), "invalid-mechanism")
	if !strings.Contains(s.Log(), "saslcert_component is not set") {
		t.Error("no error logged")
	}
}

func TestWithDelegation(t *testing.T) {
	s := prosodytest.Start(t, prosodytest.Options{Plugin: true, Delegation: true})
	s.Register(t, "alice", "alicepw")
	fc := startComponent(t, s)
	alice := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org/tablet"}})
	fc.set(alice.DER, answer{JID: "alice@example.org", Resource: "tablet", Fingerprint: fingerprint(alice.DER)})
	sess, err := melliumLogin(t, s, alice, "alice@example.org", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := sess.LocalAddr().String(); got != "alice@example.org/tablet" {
		t.Fatalf("bound as %s", got)
	}
	if n := fc.waitNotices(t, 1); len(n) != 1 || n[0].Event != "bound" {
		t.Fatalf("notices %+v", n)
	}
}

// waitLookups waits until the fake component has seen n lookups and takes
// them.
func waitLookups(t *testing.T, fc *fakeComponent, n int) []lookupReq {
	t.Helper()
	var got []lookupReq
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		got = append(got, fc.takeLookups()...)
		time.Sleep(5 * time.Millisecond)
	}
	if len(got) != n {
		t.Fatalf("%d lookups, want %d: %+v", len(got), n, got)
	}
	return got
}

// The prefetch: the lookup for the authzid "=" leaves when the stream
// features are offered after TLS, before any <auth/>, and the <auth/> that
// follows uses its answer. An authzid asks again, and so does an <auth/>
// after the component said something changed: a prefetched answer is never
// used once anything was forgotten since it was asked for.
func TestPrefetch(t *testing.T) {
	s := startServerWith(t, "")
	fc := startComponent(t, s)
	alice := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	fc.set(alice.DER, answer{JID: "alice@example.org", Fingerprint: fingerprint(alice.DER)})

	t.Run("asked before auth, used by auth", func(t *testing.T) {
		c := dialRaw(t, s, alice)
		l := waitLookups(t, fc, 1)
		if l[0].HasAuthzid || l[0].Cert != b64(alice.DER) {
			t.Fatalf("prefetch %+v", l[0])
		}
		if n := c.authExternal("="); n.XMLName.Local != "success" {
			t.Fatalf("auth: %s", n)
		}
		if l := fc.takeLookups(); len(l) != 0 {
			t.Fatalf("the login asked again: %+v", l)
		}
	})

	t.Run("an authzid asks again", func(t *testing.T) {
		c := dialRaw(t, s, alice)
		waitLookups(t, fc, 1)
		if n := c.authExternal(base64.StdEncoding.EncodeToString([]byte("alice@example.org"))); n.XMLName.Local != "success" {
			t.Fatalf("auth: %s", n)
		}
		if l := waitLookups(t, fc, 1); l[0].Authzid != "alice@example.org" {
			t.Fatalf("lookup %+v", l[0])
		}
	})

	t.Run("a change in between asks again", func(t *testing.T) {
		c := dialRaw(t, s, alice)
		waitLookups(t, fc, 1) // answered: granted
		fc.set(alice.DER, answer{ErrType: "auth", ErrCond: "not-authorized", SASLCond: "not-authorized", Text: "disabled meanwhile"})
		defer fc.set(alice.DER, answer{JID: "alice@example.org", Fingerprint: fingerprint(alice.DER)})
		r := fc.sendPayload(t, stanza.SetIQ, "c1", pluginproto.Changed{JID: "alice@example.org"})
		if typ := r.Attr("type"); typ != "result" {
			t.Fatalf("changed: %s", r)
		}
		if text := failure(t, c.authExternal("="), "not-authorized"); text != "disabled meanwhile" {
			t.Errorf("text %q", text)
		}
		waitLookups(t, fc, 1)
	})

	t.Run("a component that does not answer costs one timeout", func(t *testing.T) {
		fc.set(alice.DER, answer{Silent: true})
		defer fc.set(alice.DER, answer{JID: "alice@example.org", Fingerprint: fingerprint(alice.DER)})
		c := dialRaw(t, s, alice)
		failure(t, c.authExternal("="), "temporary-auth-failure")
		// Only the prefetch was sent: the login did not ask again (and wait
		// a second time) after the prefetch had gone unanswered.
		waitLookups(t, fc, 1)
		if l := fc.takeLookups(); len(l) != 0 {
			t.Fatalf("the login asked again: %+v", l)
		}
	})
}
