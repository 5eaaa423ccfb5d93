package component

import (
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/storage"
)

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	fp1, fp2 := storage.FingerprintOf([]byte("1")), storage.FingerprintOf([]byte("2"))
	alice := jid.MustParse("alice@example.org")
	r.Bound(jid.MustParse("alice@example.org/b"), fp1)
	r.Bound(jid.MustParse("Alice@example.org/a"), fp1) // normalised by jid.Parse
	r.Bound(jid.MustParse("alice@example.org/c"), fp2)
	r.Bound(jid.MustParse("bob@other.org/x"), fp1)

	if got := r.Resources(alice, fp1); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Resources(fp1) = %v", got)
	}
	if fp, ok := r.CertOf(jid.MustParse("alice@example.org/c")); !ok || fp != fp2 {
		t.Errorf("CertOf(c) = %v, %v", fp, ok)
	}
	if _, ok := r.CertOf(jid.MustParse("alice@example.org/zzz")); ok {
		t.Error("CertOf of an unknown session")
	}
	r.Closed(jid.MustParse("alice@example.org/b"))
	r.Closed(jid.MustParse("nobody@example.org/b")) // unknown: no-op
	if got := r.Resources(alice, fp1); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after Closed: %v", got)
	}
	r.Forget(alice, fp1)
	if got := r.Resources(alice, fp1); len(got) != 0 {
		t.Errorf("after Forget: %v", got)
	}
	if got := r.Resources(alice, fp2); !slices.Equal(got, []string{"c"}) {
		t.Errorf("Forget removed another certificate's session: %v", got)
	}
	r.Replace("example.org", []CertSession{
		{JID: jid.MustParse("carol@example.org/z"), Fingerprint: fp2},
		{JID: jid.MustParse("mallory@other.org/z"), Fingerprint: fp2}, // another domain: ignored
	})
	if got := r.Snapshot("example.org"); len(got) != 1 || got[0].JID.String() != "carol@example.org/z" {
		t.Errorf("after Replace: %v", got)
	}
	if got := r.Snapshot("other.org"); len(got) != 1 || got[0].JID.String() != "bob@other.org/x" {
		t.Errorf("Replace touched another domain: %v", got)
	}
	r.Replace("other.org", nil)
	if got := r.Snapshot("other.org"); len(got) != 0 {
		t.Errorf("Replace with nothing: %v", got)
	}
}

// FuzzUnwrapDelegation feeds arbitrary content of <delegation/> to the
// unwrapper: it must not panic, and whatever it accepts must be a get or set
// with an id and a from.
func FuzzUnwrapDelegation(f *testing.F) {
	for _, s := range []string{
		"<forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' from='a@b/c' id='1' type='get'><items xmlns='urn:xmpp:saslcert:1'/></iq></forwarded>",
		"<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay'/><iq xmlns='jabber:client' from='a@b' id='1' type='set'/></forwarded>",
		"<forwarded xmlns='urn:xmpp:forward:0'/>",
		"<forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' from='@@' id='1' type='get'/></forwarded>",
		"text<x/>",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		d := xml.NewDecoder(strings.NewReader("<delegation xmlns='urn:xmpp:delegation:2'>" + content + "</delegation>"))
		if _, err := d.Token(); err != nil {
			return
		}
		iq, err := unwrapDelegation(d)
		if err != nil {
			return
		}
		if iq.ID == "" || iq.From.Equal(jid.JID{}) || (iq.Type != "get" && iq.Type != "set") {
			t.Fatalf("accepted %+v from %q", iq, content)
		}
	})
}

func TestManyConcurrentRequests(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.MaxInFlight = 64 })
	alice := newCert(t, "alice@example.org")
	e.appendDirect(t, "alice@example.org/a", "alice", alice.DER, false)
	const n = 300
	var b strings.Builder
	for i := range n {
		switch i % 3 {
		case 0:
			b.WriteString(pluginIQ(fmt.Sprint("q", i), "get", domain, lookupXML("", alice.DER)))
		case 1:
			b.WriteString(direct(fmt.Sprint("q", i), "get", "alice@example.org/a", itemsXML))
		default:
			b.WriteString(delegation(fmt.Sprint("q", i), domain, fmt.Sprintf("from='alice@example.org/a' id='in%d' type='get'", i), itemsXML))
		}
	}
	e.fc.send(b.String())
	seen := make(map[string]bool)
	busy := 0
	for range n {
		m := e.fc.expect(t)
		id := m.attr("id")
		if seen[id] {
			t.Fatalf("two answers to %s", id)
		}
		seen[id] = true
		inner := m.path("delegation", "forwarded", "iq")
		switch {
		case m.attr("type") == "error" && m.path("error", "resource-constraint") != nil,
			inner != nil && inner.attr("type") == "error" && inner.path("error", "resource-constraint") != nil:
			busy++
		case m.attr("type") != "result" || (inner != nil && inner.attr("type") != "result"):
			t.Fatalf("unexpected answer: %s", m)
		}
	}
	e.fc.expectNone(t, 50*time.Millisecond)
	t.Logf("%d requests, %d refused as busy", n, busy)
}
