package component

import (
	"context"
	"fmt"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/storage"
)

// A session of a certificate being disabled stays when its bound notice
// reached the component before the plugin acknowledged the disable's
// <changed/> (it bound before the disable reached the plugin, as the plugin
// sends its queued notices before that answer), even though the component
// checks it only after the disable committed; a session whose notice comes
// after that acknowledgement logged in on an answer from before the disable
// and is closed with <disabled/>. Deterministic: the test plays the plugin
// and chooses the order.
func TestCheckBoundDisabledOrder(t *testing.T) {
	const phone = "alice@example.org/phone"
	e := observedEnv(t, time.Minute)
	c := newCert(t, "alice@example.org")
	fp := storage.FingerprintOf(c.DER)
	answer := func(n *node) {
		e.fc.send(fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'/>", n.attr("id"), domain, compJID))
	}
	expectChanged := func() *node {
		t.Helper()
		n := e.fc.expect(t)
		if n.child(NSPlugin, "changed") == nil {
			t.Fatalf("want <changed/>, got %s", n)
		}
		return n
	}
	e.fc.send(direct("a1", "set", phone, appendXML("laptop", c.DER, false)))
	answer(expectChanged())
	checkResult(t, e.fc.expect(t), "a1", phone)

	// The disable commits and its <changed/> is on its way; the plugin
	// sends the notice of a session that bound before, then answers.
	e.fc.send(direct("d1", "set", phone, "<disable xmlns='urn:xmpp:saslcert:1'><name>laptop</name></disable>"))
	changed := expectChanged()
	checkResult(t, e.fc.roundTrip(t, pluginIQ("s1", "set", domain, sessionXML("bound", "alice@example.org/early", fp))), "s1", domain)
	answer(changed)
	checkResult(t, e.fc.expect(t), "d1", phone)

	// A session that binds after the plugin acknowledged the change.
	// The component answers the notice and asks to close the late session,
	// and only that one (a <disabled/> for the early session would have
	// come before any of these). The check runs off the stream goroutine,
	// so the two may come in either order.
	e.fc.send(pluginIQ("s2", "set", domain, sessionXML("bound", "alice@example.org/late", fp)))
	n := e.fc.expect(t)
	if n.child(NSPlugin, "disabled") == nil {
		checkResult(t, n, "s2", domain)
		n = e.fc.expect(t)
	} else {
		defer func() { checkResult(t, e.fc.expect(t), "s2", domain) }()
	}
	d := n.child(NSPlugin, "disabled")
	if d == nil || d.attr("jid") != "alice@example.org/late" || d.attr("fingerprint") != fp.String() {
		t.Fatalf("want <disabled jid='alice@example.org/late'/>, got %s", n)
	}
	e.fc.send(fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'><disabled xmlns='%s' closed='1'/></iq>", n.attr("id"), domain, compJID, NSPlugin))
	if _, ok := e.comp.reg.CertOf(jid.MustParse("alice@example.org/early")); !ok {
		t.Error("the session that bound before the disable is gone from the registry")
	}
}

// boundOrder's marks: a notice is before an account's change only if that
// account's acknowledgement counted it; a waiting check sees a mark set
// after it started; marks expire; a lower count never lowers a mark.
func TestBoundOrder(t *testing.T) {
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	var b boundOrder
	s1, s2 := b.bound(), b.bound()
	if s1 != 1 || s2 != 2 || b.read() != 2 {
		t.Fatalf("numbers %d %d, read %d; want 1 2 2", s1, s2, b.read())
	}
	if b.before(short(), "alice@example.org", s1) {
		t.Fatal("before any acknowledgement: a notice counts as before")
	}
	b.changed("alice@example.org", 1, now, time.Minute)
	tests := []struct {
		name    string
		account string
		seq     uint64
		want    bool
	}{
		{"counted", "alice@example.org", 1, true},
		{"after-the-acknowledgement", "alice@example.org", 2, false},
		{"other-account", "bob@example.org", 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.before(short(), tc.account, tc.seq); got != tc.want {
				t.Fatalf("before(%s, %d) = %v, want %v", tc.account, tc.seq, got, tc.want)
			}
		})
	}
	b.changed("alice@example.org", 0, now, time.Minute)
	if !b.before(short(), "alice@example.org", 1) {
		t.Fatal("a lower count lowered the mark")
	}

	// Nothing on its way: no wait (a change another process made and the
	// audit watch has not passed on yet), even with no deadline.
	if b.before(t.Context(), "alice@example.org", 2) {
		t.Fatal("a notice after the mark counts as before with nothing on its way")
	}

	// A check waiting while a <changed/> is on its way, when the
	// acknowledgement comes.
	b.sending("alice@example.org")
	got := make(chan bool, 1)
	go func() { got <- b.before(t.Context(), "alice@example.org", 2) }()
	b.changed("alice@example.org", 2, now, time.Minute)
	b.sent("alice@example.org")
	if !<-got {
		t.Fatal("the waiting check missed the acknowledgement")
	}

	// A check waiting while a <changed/> is on its way that is never
	// acknowledged (refused, timed out) stops waiting when it is given up.
	b.sending("carol@example.org")
	go func() { got <- b.before(t.Context(), "carol@example.org", 1) }()
	b.sent("carol@example.org")
	if <-got {
		t.Fatal("a notice counts as before a change that was never acknowledged")
	}

	// Marks older than the TTL are dropped at the next change.
	b.changed("bob@example.org", 2, now.Add(2*time.Minute), time.Minute)
	if b.before(short(), "alice@example.org", 1) {
		t.Fatal("an expired mark still counts")
	}
}
