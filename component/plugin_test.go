package component

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/pluginproto"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

const nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

func TestPluginLookup(t *testing.T) {
	e := startEnv(t, nil)
	alice := newCert(t, "alice@example.org")
	tablet := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org/tablet"}})
	kiosk := newCert(t, "alice@example.org")
	e.appendDirect(t, "alice@example.org/a", "alice", alice.DER, false)
	e.appendDirect(t, "alice@example.org/a", "tablet", tablet.DER, false)
	e.appendDirect(t, "alice@example.org/a", "kiosk", kiosk.DER, true)
	disabled := newCert(t, "alice@example.org")
	e.appendDirect(t, "alice@example.org/a", "old", disabled.DER, false)
	checkResult(t, e.fc.roundTrip(t, direct("dis", "set", "alice@example.org/a", "<disable xmlns='urn:xmpp:saslcert:1'><name>old</name></disable>")), "dis", "alice@example.org/a")

	t.Run("granted", func(t *testing.T) {
		for _, tc := range []struct {
			name, authzid string
			cert          *certtest.Cert
			resource, ncm string
		}{
			{"no authzid", "", alice, "", "false"},
			{"authzid", "alice@example.org", alice, "", "false"},
			{"forced resource", "", tablet, "tablet", "false"},
			{"no-cert-management", "", kiosk, "", "true"},
		} {
			n := e.fc.roundTrip(t, pluginIQ("g", "get", domain, lookupXML(tc.authzid, tc.cert.DER)))
			checkResult(t, n, "g", domain)
			l := n.child(NSPlugin, "lookup")
			if l == nil || l.attr("jid") != "alice@example.org" || l.attr("fingerprint") != storage.FingerprintOf(tc.cert.DER).String() ||
				l.attr("resource") != tc.resource || l.hasAttr("resource") != (tc.resource != "") || l.attr("no-cert-management") != tc.ncm {
				t.Errorf("%s: %s", tc.name, n)
			}
		}
	})

	refusals := []struct {
		name, authzid string
		der           []byte
		cond          string
	}{
		{"unknown certificate", "", newCert(t, "alice@example.org").DER, "not-authorized"},
		{"another account", "bob@example.org", alice.DER, "invalid-authzid"},
		{"full JID authzid", "alice@example.org/x", alice.DER, "invalid-authzid"},
		{"authzid of another domain", "alice@other.org", alice.DER, "invalid-authzid"},
		{"disabled", "", disabled.DER, "not-authorized"},
		{"garbage DER", "", []byte("not a certificate"), "not-authorized"},
	}
	for _, tc := range refusals {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			n := e.fc.roundTrip(t, pluginIQ("r", "get", domain, lookupXML(tc.authzid, tc.der)))
			er := checkError(t, n, "r", "auth", "not-authorized")
			if er.child("urn:ietf:params:xml:ns:xmpp-sasl", tc.cond) == nil {
				t.Errorf("no SASL <%s/> in %s", tc.cond, n)
			}
			if er.child(nsStanzas, "text") == nil {
				t.Errorf("no text in %s", n)
			}
		})
	}

	bad := []struct {
		name, raw, typ, cond string
	}{
		{"from a user", pluginIQ("b", "get", "alice@example.org/a", lookupXML("", alice.DER)), "auth", "forbidden"},
		{"from an unserved domain", pluginIQ("b", "get", "evil.org", lookupXML("", alice.DER)), "auth", "forbidden"},
		{"from the server with a resource", pluginIQ("b", "get", "example.org/x", lookupXML("", alice.DER)), "auth", "forbidden"},
		{"no x509cert", pluginIQ("b", "get", domain, "<lookup xmlns='"+NSPlugin+"'/>"), "modify", "bad-request"},
		{"empty x509cert", pluginIQ("b", "get", domain, "<lookup xmlns='"+NSPlugin+"'><x509cert/></lookup>"), "modify", "bad-request"},
		{"two x509cert", pluginIQ("b", "get", domain, "<lookup xmlns='"+NSPlugin+"'><x509cert>AAAA</x509cert><x509cert>AAAA</x509cert></lookup>"), "modify", "bad-request"},
		{"bad base64", pluginIQ("b", "get", domain, "<lookup xmlns='"+NSPlugin+"'><x509cert>!!!</x509cert></lookup>"), "modify", "bad-request"},
		{"too large", pluginIQ("b", "get", domain, "<lookup xmlns='"+NSPlugin+"'><x509cert>"+strings.Repeat("A", pluginproto.MaxLookupCert+4)+"</x509cert></lookup>"), "modify", "bad-request"},
		{"lookup as set", pluginIQ("b", "set", domain, lookupXML("", alice.DER)), "modify", "bad-request"},
		{"unknown element", pluginIQ("b", "get", domain, "<frob xmlns='"+NSPlugin+"'/>"), "cancel", "feature-not-implemented"},
		// pluginproto decodes strictly: nothing but one <x509cert/>.
		{"unknown child", pluginIQ("b", "get", domain, "<lookup xmlns='"+NSPlugin+"'><x509cert>AAAA</x509cert><frob/></lookup>"), "modify", "bad-request"},
		{"authzid twice", pluginIQ("b", "get", domain, "<lookup xmlns='"+NSPlugin+"' authzid='a@example.org' authzid='b@example.org'><x509cert>AAAA</x509cert></lookup>"), "modify", "bad-request"},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			checkError(t, e.fc.roundTrip(t, tc.raw), "b", tc.typ, tc.cond)
		})
	}

	// Line breaks in the base64 (as in PEM) are fine.
	wrapped := b64(alice.DER)
	wrapped = wrapped[:40] + "\n  " + wrapped[40:]
	n := e.fc.roundTrip(t, pluginIQ("w", "get", domain, "<lookup xmlns='"+NSPlugin+"'><x509cert>"+wrapped+"</x509cert></lookup>"))
	checkResult(t, n, "w", domain)
}

func TestPluginLookupStoreDown(t *testing.T) {
	e := startEnv(t, nil)
	alice := newCert(t, "alice@example.org")
	e.appendDirect(t, "alice@example.org/a", "alice", alice.DER, false)
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	n := e.fc.roundTrip(t, pluginIQ("t", "get", domain, lookupXML("", alice.DER)))
	er := checkError(t, n, "t", "wait", "internal-server-error")
	if er.child("urn:ietf:params:xml:ns:xmpp-sasl", "temporary-auth-failure") == nil {
		t.Errorf("no <temporary-auth-failure/> in %s", n)
	}
	// XEP-0257 requests fail softly too.
	n = e.fc.roundTrip(t, direct("i", "get", "alice@example.org/a", itemsXML))
	checkError(t, n, "i", "wait", "internal-server-error")
}

// items returns the <item/>s of alice's items answer for full.
func (e *env) items(t *testing.T, full string) []node {
	t.Helper()
	n := e.fc.roundTrip(t, direct("it", "get", full, itemsXML))
	checkResult(t, n, "it", full)
	return n.child(xep0257.NS, "items").elements()
}

func usersOf(it node) []string {
	var res []string
	for _, r := range it.path("users").elements() {
		res = append(res, r.Text)
	}
	return res
}

func TestSessionNotices(t *testing.T) {
	e := startEnv(t, nil)
	phone := newCert(t, "alice@example.org")
	kiosk := newCert(t, "alice@example.org")
	e.appendDirect(t, "alice@example.org/a", "phone", phone.DER, false)
	e.appendDirect(t, "alice@example.org/a", "kiosk", kiosk.DER, true)
	fpPhone, fpKiosk := storage.FingerprintOf(phone.DER), storage.FingerprintOf(kiosk.DER)

	for i, full := range []string{"alice@example.org/p1", "alice@example.org/p2"} {
		n := e.fc.roundTrip(t, pluginIQ(fmt.Sprint("s", i), "set", domain, sessionXML("bound", full, fpPhone)))
		checkResult(t, n, fmt.Sprint("s", i), domain)
		if len(n.elements()) != 0 {
			t.Errorf("session notice answer is not empty: %s", n)
		}
	}
	checkResult(t, e.fc.roundTrip(t, pluginIQ("s3", "set", domain, sessionXML("bound", "alice@example.org/k", fpKiosk))), "s3", domain)
	if fp, ok := e.comp.Sessions().CertOf(jid.MustParse("alice@example.org/p1")); !ok || fp != fpPhone {
		t.Errorf("CertOf(p1) = %v, %v", fp, ok)
	}

	its := e.items(t, "alice@example.org/a")
	if len(its) != 2 || strings.Join(usersOf(its[0]), ",") != "p1,p2" || strings.Join(usersOf(its[1]), ",") != "k" {
		t.Fatalf("items with users: %v", its)
	}

	// The kiosk session may not manage certificates; others may. (Its
	// stamp says it logged in with the kiosk certificate; the record's
	// <no-cert-management/> refuses it even if the grant did not.)
	n := e.fc.roundTrip(t, directRaw("k1", "set", "alice@example.org/k",
		appendXML("more", newCert(t, "alice@example.org").DER, false)+certStamp("alice@example.org/k", "k1", kiosk.DER, true)))
	checkError(t, n, "k1", "auth", "forbidden")
	e.appendDirect(t, "alice@example.org/p1", "more", newCert(t, "alice@example.org").DER, false)

	// Closed sessions disappear.
	checkResult(t, e.fc.roundTrip(t, pluginIQ("c1", "set", domain, sessionXML("closed", "alice@example.org/p1", fpPhone))), "c1", domain)
	if _, ok := e.comp.Sessions().CertOf(jid.MustParse("alice@example.org/p1")); ok {
		t.Error("p1 still known after closed")
	}
	if its := e.items(t, "alice@example.org/a"); strings.Join(usersOf(its[0]), ",") != "p2" {
		t.Errorf("users after close: %v", usersOf(its[0]))
	}

	// Refused notices change nothing.
	for _, tc := range []struct {
		name, raw, typ, cond string
	}{
		{"from a user", pluginIQ("x", "set", "alice@example.org/a", sessionXML("bound", "alice@example.org/evil", fpPhone)), "auth", "forbidden"},
		{"from an unserved domain", pluginIQ("x", "set", "evil.org", sessionXML("bound", "alice@example.org/evil", fpPhone)), "auth", "forbidden"},
		{"session of another domain", pluginIQ("x", "set", domain, sessionXML("bound", "alice@other.org/evil", fpPhone)), "auth", "forbidden"},
		{"bare jid", pluginIQ("x", "set", domain, sessionXML("bound", "alice@example.org", fpPhone)), "modify", "bad-request"},
		{"bad fingerprint", pluginIQ("x", "set", domain, strings.Replace(sessionXML("bound", "alice@example.org/evil", fpPhone), "sha256:", "sha1:", 1)), "modify", "bad-request"},
		{"bad event", pluginIQ("x", "set", domain, sessionXML("opened", "alice@example.org/evil", fpPhone)), "modify", "bad-request"},
		// Issue 10.5: the server's form must be the component's form.
		{"jid not its own RFC 7622 form", pluginIQ("x", "set", domain, sessionXML("bound", "Alice@example.org/evil", fpPhone)), "modify", "bad-request"},
		{"session as get", pluginIQ("x", "get", domain, sessionXML("bound", "alice@example.org/evil", fpPhone)), "modify", "bad-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.fc.roundTrip(t, tc.raw), "x", tc.typ, tc.cond)
			if _, ok := e.comp.Sessions().CertOf(jid.MustParse("alice@example.org/evil")); ok {
				t.Fatal("the refused notice was applied")
			}
		})
	}
}

// reconnect drops the current connection and returns the next one.
func (e *env) reconnect(t *testing.T) *fakeConn {
	t.Helper()
	n := e.comp.Connects()
	e.fc.conn.Close()
	fc := e.srv.next(t)
	deadline := time.Now().Add(10 * time.Second)
	for e.comp.Connects() <= n {
		if time.Now().After(deadline) {
			t.Fatal("the component did not reconnect")
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitConnected(t, e.comp)
	e.fc = fc
	return fc
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSessionsRefreshAfterConnect(t *testing.T) {
	e := startEnv(t, nil)
	fp := storage.FingerprintOf([]byte("x"))
	reg := e.comp.Sessions()
	reg.Bound(jid.MustParse("stale@example.org/gone"), fp)
	e.srv.mu.Lock()
	e.srv.sessionsXML = fmt.Sprintf("<sessions xmlns='%s'><session jid='alice@example.org/tablet' fingerprint='%s'/>"+
		"<session jid='mallory@evil.org/x' fingerprint='%s'/><session jid='bad' fingerprint='%s'/><session jid='bob@example.org/y' fingerprint='nope'/>"+
		"<session jid='Carol@example.org/z' fingerprint='%s'/></sessions>",
		NSPlugin, fp, fp, fp, fp)
	e.srv.mu.Unlock()
	e.reconnect(t)
	waitFor(t, "the session list", func() bool {
		_, ok := reg.CertOf(jid.MustParse("alice@example.org/tablet"))
		return ok
	})
	if _, ok := reg.CertOf(jid.MustParse("stale@example.org/gone")); ok {
		t.Error("the stale session survived the refresh")
	}
	if got := reg.Snapshot(domain); len(got) != 1 {
		t.Errorf("registry: %v", got)
	}
	if got := reg.Snapshot("evil.org"); len(got) != 0 {
		t.Errorf("sessions of an unserved domain were taken: %v", got)
	}
}

func TestRevokeNotifiesPlugin(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.RequestTimeout = 500 * time.Millisecond })
	const phone = "alice@example.org/phone"
	var fps []storage.Fingerprint
	for i := range 3 {
		c := newCert(t, "alice@example.org")
		e.appendDirect(t, phone, fmt.Sprint("c", i), c.DER, false)
		fps = append(fps, storage.FingerprintOf(c.DER))
	}
	checkResult(t, e.fc.roundTrip(t, pluginIQ("s", "set", domain, sessionXML("bound", "alice@example.org/tablet", fps[0]))), "s", domain)

	// The plugin is told before the revoke is answered; a spoofed answer is
	// ignored.
	e.fc.send(delegation("r0", domain, "from='"+phone+"' id='rv' type='set'", revokeXML("c0")))
	n := e.fc.expect(t)
	rv := n.child(NSPlugin, "revoked")
	if n.attr("type") != "set" || n.attr("to") != domain || n.attr("from") != compJID || rv == nil ||
		rv.attr("jid") != "alice@example.org" || rv.attr("fingerprint") != fps[0].String() {
		t.Fatalf("want <revoked/> to the server, got %s", n)
	}
	e.fc.send(fmt.Sprintf("<iq type='result' id='%s' from='alice@example.org/phone' to='%s'/>", n.attr("id"), compJID))
	e.fc.expectNone(t, 100*time.Millisecond)
	e.fc.send(fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'><revoked xmlns='%s' closed='1'/></iq>", n.attr("id"), domain, compJID, NSPlugin))
	in := innerOf(t, e.fc.expect(t), "r0", "rv", phone)
	if in.attr("type") != "result" {
		t.Fatalf("revoke answer: %s", in)
	}
	if _, ok := e.comp.Sessions().CertOf(jid.MustParse("alice@example.org/tablet")); ok {
		t.Error("the session of the revoked certificate is still registered")
	}
	if !strings.Contains(e.log.String(), "closed=1") {
		t.Error("the number of closed sessions was not logged")
	}

	// A plugin error, or no answer at all, does not stop the revoke.
	e.fc.send(direct("r1", "set", phone, revokeXML("c1")))
	n = e.fc.expect(t)
	if n.child(NSPlugin, "revoked") == nil {
		t.Fatalf("want <revoked/>, got %s", n)
	}
	e.fc.send(fmt.Sprintf("<iq type='error' id='%s' from='%s' to='%s'><error type='cancel'><service-unavailable xmlns='%s'/></error></iq>", n.attr("id"), domain, compJID, nsStanzas))
	checkResult(t, e.fc.expect(t), "r1", phone)

	start := time.Now()
	e.fc.send(direct("r2", "set", phone, revokeXML("c2")))
	if n := e.fc.expect(t); n.child(NSPlugin, "revoked") == nil {
		t.Fatalf("want <revoked/>, got %s", n)
	}
	checkResult(t, e.fc.expect(t), "r2", phone)
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("the revoke was answered after %v, before the plugin's timeout", d)
	}
	if got := len(e.activeCerts(t, "alice@example.org")); got != 0 {
		t.Errorf("%d active certificates left", got)
	}
}

func TestNotifyRevokedEdgeCases(t *testing.T) {
	e := startEnv(t, nil)
	ctx := context.Background()
	// Accounts the component does not serve, or malformed, are not sent.
	e.comp.NotifyRevoked(ctx, &storage.Cert{Account: "mallory@evil.org"})
	e.comp.NotifyRevoked(ctx, &storage.Cert{Account: "example.org"})
	e.comp.NotifyRevoked(ctx, nil)
	e.fc.expectNone(t, 100*time.Millisecond)
	// Disconnected: logged, not blocking.
	e.comp.setCurrent(nil)
	done := make(chan struct{})
	go func() {
		e.comp.NotifyRevoked(ctx, &storage.Cert{Account: "alice@example.org"})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("NotifyRevoked blocked while disconnected")
	}
	if !strings.Contains(e.log.String(), "not connected") {
		t.Error("no log line for a revocation while disconnected")
	}
}

func TestRevocationSweepAfterConnect(t *testing.T) {
	e := startEnv(t, nil)
	c := newCert(t, "alice@example.org")
	e.appendDirect(t, "alice@example.org/a", "gone", c.DER, false)
	// Revoked while the component could not reach the plugin (the CLI, say).
	if _, err := e.db.SetState(context.Background(), "alice@example.org", "gone", storage.StateRevoked, "cli"); err != nil {
		t.Fatal(err)
	}
	fp := storage.FingerprintOf(c.DER)
	e.srv.mu.Lock()
	e.srv.sessionsXML = fmt.Sprintf("<sessions xmlns='%s'><session jid='alice@example.org/old' fingerprint='%s'/></sessions>", NSPlugin, fp)
	e.srv.mu.Unlock()
	fc := e.reconnect(t)
	n := fc.expect(t)
	rv := n.child(NSPlugin, "revoked")
	if rv == nil || rv.attr("jid") != "alice@example.org" || rv.attr("fingerprint") != fp.String() {
		t.Fatalf("want <revoked/> for the swept session, got %s", n)
	}
	fc.send(fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'><revoked xmlns='%s' closed='1'/></iq>", n.attr("id"), domain, compJID, NSPlugin))
}
