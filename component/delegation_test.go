package component

import (
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/xep0257"
)

// innerOf checks the outer result of a delegated request and returns the
// inner IQ: outer result from the component to the server with the outer id,
// exactly one child per level, inner IQ in jabber:client with the inner id,
// to = the inner from and no from.
func innerOf(t *testing.T, n *node, outerID, innerID, innerFrom string) *node {
	t.Helper()
	checkResult(t, n, outerID, domain)
	if len(n.elements()) != 1 {
		t.Fatalf("outer result has %d children: %s", len(n.elements()), n)
	}
	d := n.child(NSDelegation, "delegation")
	if d == nil || len(d.elements()) != 1 {
		t.Fatalf("want exactly one <delegation/> child with one child: %s", n)
	}
	f := d.child(NSForward, "forwarded")
	if f == nil || len(f.elements()) != 1 {
		t.Fatalf("want exactly one <forwarded/> with one child: %s", n)
	}
	in := f.child("jabber:client", "iq")
	if in == nil {
		t.Fatalf("no <iq xmlns='jabber:client'/> in <forwarded/>: %s", n)
	}
	if in.attr("id") != innerID || in.attr("to") != innerFrom || in.hasAttr("from") {
		t.Fatalf("inner IQ: want id=%s to=%s and no from, got %s", innerID, innerFrom, in)
	}
	return in
}

func TestDelegation(t *testing.T) {
	e := startEnv(t, nil)
	const alice = "alice@example.org/phone"
	cert := newCert(t, "alice@example.org")

	// Append with no 'to', as unmodified clients send it.
	n := e.fc.roundTrip(t, delegation("o1", domain, "from='"+alice+"' id='a1' type='set'", appendXML("phone", cert.DER, false)))
	in := innerOf(t, n, "o1", "a1", alice)
	if in.attr("type") != "result" || len(in.elements()) != 0 {
		t.Fatalf("inner append answer: %s", in)
	}
	if got := e.activeCerts(t, "alice@example.org"); len(got) != 1 || got[0].Name != "phone" {
		t.Fatalf("stored: %v", got)
	}

	// Items addressed to the account and to the server, and with a <delay/>
	// before the forwarded IQ.
	for i, attrs := range []string{
		"from='" + alice + "' id='i1' type='get' to='alice@example.org'",
		"from='" + alice + "' id='i1' type='get' to='example.org'",
		"from='" + alice + "' id='i1' type='get'",
	} {
		raw := delegation("o2", domain, attrs, itemsXML)
		if i == 2 {
			raw = strings.Replace(raw, "<forwarded xmlns='urn:xmpp:forward:0'>", "<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2026-11-22T12:00:00Z'/>", 1)
		}
		n = e.fc.roundTrip(t, raw)
		in = innerOf(t, n, "o2", "i1", alice)
		items := in.child(xep0257.NS, "items")
		if in.attr("type") != "result" || items == nil || items.path("item", "name").Text != "phone" {
			t.Fatalf("case %d: inner items answer: %s", i, in)
		}
	}

	bobCert := newCert(t, "bob@example.org")
	tests := []struct {
		name string
		raw  string
		// outer error (typ, cond) if outerCond != "", else inner error
		outerTyp, outerCond string
		innerTyp, innerCond string
	}{
		{name: "error/append to another account",
			raw:      delegation("e1", domain, "from='"+alice+"' id='x' type='set' to='bob@example.org'", appendXML("evil", bobCert.DER, false)),
			innerTyp: "auth", innerCond: "forbidden"},
		{name: "error/items of another account",
			raw:      delegation("e2", domain, "from='"+alice+"' id='x' type='get' to='bob@example.org'", itemsXML),
			innerTyp: "auth", innerCond: "forbidden"},
		{name: "error/to the component",
			raw:      delegation("e3", domain, "from='"+alice+"' id='x' type='get' to='"+compJID+"'", itemsXML),
			innerTyp: "auth", innerCond: "forbidden"},
		{name: "error/to own full JID",
			raw:      delegation("e4", domain, "from='"+alice+"' id='x' type='get' to='alice@example.org/other'", itemsXML),
			innerTyp: "auth", innerCond: "forbidden"},
		{name: "error/inner from another domain",
			raw:      delegation("e5", domain, "from='mallory@evil.org/x' id='x' type='set'", appendXML("evil", newCert(t, "mallory@evil.org").DER, false)),
			innerTyp: "auth", innerCond: "forbidden"},
		{name: "error/inner from the server",
			raw:      delegation("e6", domain, "from='example.org' id='x' type='get'", itemsXML),
			innerTyp: "auth", innerCond: "forbidden"},
		{name: "error/unserved outer sender",
			raw:      delegation("e7", "evil.org", "from='mallory@evil.org/x' id='x' type='get'", itemsXML),
			outerTyp: "auth", outerCond: "forbidden"},
		{name: "error/outer sender is a user",
			raw:      delegation("e8", "alice@example.org/phone", "from='"+alice+"' id='x' type='get'", itemsXML),
			outerTyp: "auth", outerCond: "forbidden"},
		{name: "error/no forwarded",
			raw:      "<iq type='set' id='e9' from='example.org' to='" + compJID + "'><delegation xmlns='urn:xmpp:delegation:2'/></iq>",
			outerTyp: "modify", outerCond: "bad-request"},
		{name: "error/wrong wrapper child",
			raw:      "<iq type='set' id='e10' from='example.org' to='" + compJID + "'><delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:wrong'/></delegation></iq>",
			outerTyp: "modify", outerCond: "bad-request"},
		{name: "error/forwarded without iq",
			raw:      "<iq type='set' id='e11' from='example.org' to='" + compJID + "'><delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'/></forwarded></delegation></iq>",
			outerTyp: "modify", outerCond: "bad-request"},
		{name: "error/inner iq in the wrong namespace",
			raw:      strings.Replace(delegation("e12", domain, "from='"+alice+"' id='x' type='get'", itemsXML), "<iq xmlns='jabber:client'", "<iq xmlns='jabber:server'", 1),
			outerTyp: "modify", outerCond: "bad-request"},
		{name: "error/inner without id",
			raw:      delegation("e13", domain, "from='"+alice+"' type='get'", itemsXML),
			outerTyp: "modify", outerCond: "bad-request"},
		{name: "error/inner without from",
			raw:      delegation("e14", domain, "id='x' type='get'", itemsXML),
			outerTyp: "modify", outerCond: "bad-request"},
		{name: "error/inner result",
			raw:      delegation("e15", domain, "from='"+alice+"' id='x' type='result'", ""),
			outerTyp: "modify", outerCond: "bad-request"},
		// The server accepted the address; mellium refuses it: a precise
		// inner error for the client (it was an outer bad-request, which
		// the plugin turns into "unavailable; try again later").
		{name: "error/inner from not a JID",
			raw:      delegation("e16", domain, "from='@@' id='x' type='get'", itemsXML),
			innerTyp: "modify", innerCond: "jid-malformed"},
		{name: "error/inner without payload",
			raw:      delegation("e17", domain, "from='"+alice+"' id='x' type='get'", ""),
			innerTyp: "modify", innerCond: "bad-request"},
		{name: "error/inner payload of another namespace",
			raw:      delegation("e18", domain, "from='"+alice+"' id='x' type='get'", "<query xmlns='jabber:iq:roster'/>"),
			innerTyp: "cancel", innerCond: "service-unavailable"},
		{name: "error/inner malformed append",
			raw:      delegation("e19", domain, "from='"+alice+"' id='x' type='set'", "<append xmlns='urn:xmpp:saslcert:1'><name>n</name></append>"),
			innerTyp: "modify", innerCond: "bad-request"},
		{name: "error/inner wrong type",
			raw:      delegation("e20", domain, "from='"+alice+"' id='x' type='get'", appendXML("n", cert.DER, false)),
			innerTyp: "modify", innerCond: "bad-request"},
		{name: "error/duplicate name",
			raw:      delegation("e21", domain, "from='"+alice+"' id='x' type='set'", appendXML("phone", newCert(t, "alice@example.org").DER, false)),
			innerTyp: "cancel", innerCond: "conflict"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := e.fc.roundTrip(t, tc.raw)
			id := n.attr("id")
			if tc.outerCond != "" {
				checkError(t, n, id, tc.outerTyp, tc.outerCond)
				if n.attr("from") != compJID {
					t.Errorf("outer error from %q", n.attr("from"))
				}
				return
			}
			in := innerOf(t, n, id, "x", n.path("delegation", "forwarded", "iq").attr("to"))
			if in.attr("type") != "error" {
				t.Fatalf("want an inner error, got %s", in)
			}
			checkErrorChild(t, in, tc.innerTyp, tc.innerCond)
		})
	}
	if got := len(e.activeCerts(t, "alice@example.org")); got != 1 {
		t.Errorf("alice has %d active certificates after refused requests, want 1", got)
	}
	for _, acct := range []string{"bob@example.org", "mallory@evil.org"} {
		if got := len(e.activeCerts(t, acct)); got != 0 {
			t.Errorf("%s has %d certificates", acct, got)
		}
	}

	// The server's announcement is accepted silently.
	e.fc.send("<message from='example.org' to='" + compJID + "'><delegation xmlns='urn:xmpp:delegation:2'><delegated namespace='urn:xmpp:saslcert:1'/></delegation></message>")
	e.fc.expectNone(t, 100*time.Millisecond)
	// The announcement is logged on the stream goroutine: wait for it
	// (a loaded machine may not have got there yet).
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(e.log.String(), "urn:xmpp:saslcert:1"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Error("the delegation announcement was not logged")
			break
		}
	}
}

func TestCheckDelegated(t *testing.T) {
	server := jid.MustParse(domain)
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"alice@example.org/r", "", true},
		{"alice@example.org/r", "alice@example.org", true},
		{"alice@example.org/r", "example.org", true},
		{"alice@example.org/r", "ALICE@example.org", true}, // normalised
		{"alice@example.org/r", "bob@example.org", false},
		{"alice@example.org/r", "alice@example.org/r", false},
		{"alice@example.org/r", compJID, false},
		{"alice@other.org/r", "", false},
		{"example.org", "", false},
	} {
		iq := stanza.IQ{From: jid.MustParse(tc.from), Type: stanza.GetIQ, ID: "i"}
		if tc.to != "" {
			iq.To = jid.MustParse(tc.to)
		}
		if _, ok := checkDelegated(server, iq); ok != tc.ok {
			t.Errorf("from=%s to=%s: ok=%v, want %v", tc.from, tc.to, ok, tc.ok)
		}
	}
}

// TestDelegation1 is ejabberd 23.01's XEP-0355 namespace: the component
// serves a request wrapped in urn:xmpp:delegation:1, answers in the same
// namespace, and the inner answer carries from = the request's to (which
// ejabberd's mod_delegation matches); the :1 disco nodes list the feature.
func TestDelegation1(t *testing.T) {
	e := startEnv(t, nil)
	const alice = "alice@example.org/phone"
	raw := strings.Replace(delegation("o1", domain, "from='"+alice+"' id='i1' type='get' to='alice@example.org'", itemsXML),
		"urn:xmpp:delegation:2", NSDelegation1, 1)
	n := e.fc.roundTrip(t, raw)
	checkResult(t, n, "o1", domain)
	d := n.child(NSDelegation1, "delegation")
	if d == nil || n.child(NSDelegation, "delegation") != nil {
		t.Fatalf("want the answer wrapped in %s only: %s", NSDelegation1, n)
	}
	in := d.child(NSForward, "forwarded").child("jabber:client", "iq")
	if in == nil || in.attr("type") != "result" || in.attr("id") != "i1" || in.attr("to") != alice || in.attr("from") != "alice@example.org" {
		t.Fatalf("inner answer: want result id=i1 to=%s from=alice@example.org, got %s", alice, in)
	}
	for _, tc := range []struct{ node, feature string }{
		{"urn:xmpp:delegation:1::urn:xmpp:saslcert:1", xep0257.NS},
		{"urn:xmpp:delegation:1:bare:urn:xmpp:saslcert:1", ""},
	} {
		n = e.fc.roundTrip(t, "<iq type='get' id='d1' from='example.org' to='"+compJID+"'><query xmlns='http://jabber.org/protocol/disco#info' node='"+tc.node+"'/></iq>")
		checkResult(t, n, "d1", domain)
		q := n.child("http://jabber.org/protocol/disco#info", "query")
		got := ""
		if q != nil && len(q.elements()) == 1 {
			got = q.elements()[0].attr("var")
		}
		if q == nil || q.attr("node") != tc.node || got != tc.feature {
			t.Fatalf("disco#info %s: want feature %q, got %s", tc.node, tc.feature, n)
		}
	}
}
