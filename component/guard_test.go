package component

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// hangul is U+1100, which Prosody's stringprep accepts in a resource and
// mellium's PRECIS parser refuses.
const hangul = "\u1100"

// No stanza the server routes ends the stream: a JID mellium cannot parse,
// text before an IQ's payload, an IQ without a payload. IQ gets and sets
// get a precise error (addressed with the raw attributes); results, errors,
// messages and presences are dropped. After all of them, on the same
// connection, the component still answers.
func TestGuardKeepsTheStream(t *testing.T) {
	e := startEnv(t, nil)
	user := "alice@example.org/phone"
	bad := "alice@example.org/" + hangul
	for _, tc := range []struct {
		name     string
		raw      string
		id       string // "": no answer expected
		typ      string
		cond     string
		to, from string // of the answer
	}{
		{name: "message to a resource PRECIS refuses",
			raw: fmt.Sprintf("<message from='%s' to='%s/%s'><body>x</body></message>", user, compJID, hangul)},
		{name: "message from a resource PRECIS refuses",
			raw: fmt.Sprintf("<message from='%s' to='%s'><body>x</body></message>", bad, compJID)},
		{name: "presence from a resource PRECIS refuses",
			raw: fmt.Sprintf("<presence from='%s' to='%s'/>", bad, compJID)},
		{name: "session notices from a bad address",
			raw: fmt.Sprintf("<message from='%s' to='%s'><notices xmlns='%s'/></message>", bad, compJID, NSPlugin)},
		{name: "ping to a resource PRECIS refuses",
			raw: fmt.Sprintf("<iq type='get' id='g1' from='%s' to='%s/%s'><ping xmlns='urn:xmpp:ping'/></iq>", user, compJID, hangul),
			id:  "g1", typ: "modify", cond: "jid-malformed", to: user, from: compJID},
		{name: "ping from a resource PRECIS refuses",
			raw: fmt.Sprintf("<iq type='get' id='g2' from='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>", bad, compJID),
			id:  "g2", typ: "modify", cond: "jid-malformed", to: bad, from: compJID},
		{name: "set from a resource PRECIS refuses",
			raw: fmt.Sprintf("<iq type='set' id='s1' from='%s' to='%s'>%s</iq>", bad, compJID, revokeXML("x")),
			id:  "s1", typ: "modify", cond: "jid-malformed", to: bad, from: compJID},
		{name: "result from a resource PRECIS refuses",
			raw: fmt.Sprintf("<iq type='result' id='r1' from='%s' to='%s'/>", bad, compJID)},
		{name: "text before the payload of a get",
			raw: fmt.Sprintf("<iq type='get' id='g3' from='%s' to='%s'>x<ping xmlns='urn:xmpp:ping'/></iq>", user, compJID),
			id:  "g3", typ: "modify", cond: "bad-request", to: user, from: compJID},
		{name: "set without a payload",
			raw: fmt.Sprintf("<iq type='set' id='s2' from='%s' to='%s'/>", user, compJID),
			id:  "s2", typ: "modify", cond: "bad-request", to: user, from: compJID},
		{name: "text before the payload of a result",
			raw: fmt.Sprintf("<iq type='result' id='r2' from='%s' to='%s'>x<ping xmlns='urn:xmpp:ping'/></iq>", user, compJID)},
		{name: "text in an error",
			raw: fmt.Sprintf("<iq type='error' id='e1' from='%s' to='%s'>x<error type='cancel'/></iq>", user, compJID)},
		{name: "error without a payload",
			raw: fmt.Sprintf("<iq type='error' id='e2' from='%s' to='%s'/>", user, compJID)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.fc.send(tc.raw)
			if tc.id == "" {
				e.fc.expectNone(t, 100*time.Millisecond)
			} else {
				n := e.fc.expect(t)
				checkError(t, n, tc.id, tc.typ, tc.cond)
				if n.attr("to") != tc.to || n.attr("from") != tc.from {
					t.Errorf("answer %s, want to=%s from=%s", n, tc.to, tc.from)
				}
			}
			// The same connection still answers.
			n := e.fc.roundTrip(t, direct("alive", "get", user, "<ping xmlns='urn:xmpp:ping'/>"))
			checkResult(t, n, "alive", user)
		})
	}
	if got := e.comp.Connects(); got != 1 || e.srv.accepted() != 1 {
		t.Errorf("%d connects, %d connections accepted; want 1 and 1", got, e.srv.accepted())
	}
	select {
	case <-e.fc.closed:
		t.Fatal("the stream ended")
	default:
	}
}

// recorder is a TokenReadEncoder over a fixed stanza that records what is
// written to it.
type recorder struct {
	xml.TokenReader
	out []xml.Token
}

func (r *recorder) EncodeToken(tok xml.Token) error {
	r.out = append(r.out, xml.CopyToken(tok))
	return nil
}
func (r *recorder) Encode(any) error                          { return nil }
func (r *recorder) EncodeElement(any, xml.StartElement) error { return nil }

func (r *recorder) String() string {
	var b strings.Builder
	e := xml.NewEncoder(&b)
	for _, tok := range r.out {
		_ = e.EncodeToken(tok)
	}
	_ = e.Flush()
	return b.String()
}

// A handler that fails, panics or writes broken output after part of a reply
// ends nothing: what it wrote is dropped and the IQ gets one clean error;
// a handler that succeeds gets its reply written as it is.
func TestGuardHandlerFailures(t *testing.T) {
	comp, err := newComponent(Config{Addr: "127.0.0.1:1", JID: jid.MustParse(compJID), Secret: []byte("s"), ServerDomains: []string{domain}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := &link{c: comp}
	partial := func(w xmlstream.TokenWriter) {
		_ = w.EncodeToken(xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "result"}}})
	}
	for _, tc := range []struct {
		name    string
		handler func(w xmlstream.TokenWriter) error
		want    string
	}{
		{"error after a partial reply", func(w xmlstream.TokenWriter) error { partial(w); return fmt.Errorf("boom") },
			`<iq type="error" id="i" from="certs.example.org" to="alice@example.org/a"><error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></bad-request><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">the stanza could not be processed</text></error></iq>`},
		{"panic after a partial reply", func(w xmlstream.TokenWriter) error { partial(w); panic("boom") },
			`<iq type="error" id="i" from="certs.example.org" to="alice@example.org/a"><error type="wait"><internal-server-error xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></internal-server-error></error></iq>`},
		{"unbalanced reply", func(w xmlstream.TokenWriter) error { partial(w); return nil },
			`<iq type="error" id="i" from="certs.example.org" to="alice@example.org/a"><error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></bad-request><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">the stanza could not be processed</text></error></iq>`},
		{"good reply", func(w xmlstream.TokenWriter) error {
			partial(w)
			return w.EncodeToken(xml.EndElement{Name: xml.Name{Local: "iq"}})
		}, `<iq type="result"></iq>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := xml.StartElement{Name: xml.Name{Space: "jabber:component:accept", Local: "iq"}, Attr: []xml.Attr{
				{Name: xml.Name{Local: "type"}, Value: "get"}, {Name: xml.Name{Local: "id"}, Value: "i"},
				{Name: xml.Name{Local: "from"}, Value: "alice@example.org/a"}, {Name: xml.Name{Local: "to"}, Value: compJID},
			}}
			rec := &recorder{TokenReader: xmlstream.MultiReader()}
			g := guard{l: l, next: xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, _ *xml.StartElement) error { return tc.handler(t) })}
			if err := g.HandleXMPP(rec, &start); err != nil {
				t.Fatalf("HandleXMPP returned %v: the stream would end", err)
			}
			if got := rec.String(); got != tc.want {
				t.Errorf("wrote\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
