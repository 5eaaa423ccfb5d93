package xep0257_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/xep0257"
)

var _ mux.IQHandler = (*xep0257.Handler)(nil)

type tokenReadEncoder struct {
	xml.TokenReader
	xmlstream.Encoder
}

// serve feeds the stanza in to a mux holding h (on a stream of namespace
// ns) and returns what it wrote.
func serve(t *testing.T, h *xep0257.Handler, ns, in string) string {
	t.Helper()
	var b strings.Builder
	e := xml.NewEncoder(&b)
	d := xml.NewDecoder(strings.NewReader(in))
	tok, err := d.Token()
	if err != nil {
		t.Fatal(err)
	}
	start := tok.(xml.StartElement)
	m := mux.New(ns, xep0257.Handle(h))
	if err := m.HandleXMPP(tokenReadEncoder{TokenReader: d, Encoder: e}, &start); err != nil {
		t.Fatalf("HandleXMPP: %v", err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestHandleIQ(t *testing.T) {
	f := newFixture(t)
	der := certFor(t, "alice@example.org")
	f.sess.login(aliceBot, der)
	const from = ` from='alice@example.org/phone'`

	for _, tc := range []struct {
		name string
		ns   string // stream namespace; default jabber:client
		in   string
		want string
	}{{
		name: "items/empty",
		in:   `<iq xmlns='jabber:client' type='get' id='q1'` + from + `><items xmlns='urn:xmpp:saslcert:1'/></iq>`,
		want: `<iq xmlns="jabber:client" type="result" to="alice@example.org/phone" id="q1"><items xmlns="urn:xmpp:saslcert:1"></items></iq>`,
	}, {
		name: "append",
		in: `<iq xmlns='jabber:client' type='set' id='a1'` + from + `><append xmlns='urn:xmpp:saslcert:1'><name>Phone</name><x509cert>` +
			wrap64(b64(der), 64) + `</x509cert></append></iq>`,
		want: `<iq xmlns="jabber:client" type="result" to="alice@example.org/phone" id="a1"></iq>`,
	}, {
		name: "items/one",
		in:   `<iq xmlns='jabber:client' type='get' id='q2'` + from + ` to='alice@example.org'><items xmlns='urn:xmpp:saslcert:1'/></iq>`,
		want: `<iq xmlns="jabber:client" type="result" to="alice@example.org/phone" from="alice@example.org" id="q2"><items xmlns="urn:xmpp:saslcert:1">` +
			`<item><name>Phone</name><x509cert>` + b64(der) + `</x509cert><users><resource>bot</resource></users></item></items></iq>`,
	}, {
		name: "append/conflict",
		in: `<iq xmlns='jabber:client' type='set' id='a2'` + from + `><append xmlns='urn:xmpp:saslcert:1'><name>Phone</name><x509cert>` +
			b64(certFor(t, "alice@example.org")) + `</x509cert></append></iq>`,
		want: `<iq xmlns="jabber:client" type="error" to="alice@example.org/phone" id="a2"><error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></conflict>` +
			`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">a certificate named &#34;Phone&#34; already exists</text></error></iq>`,
	}, {
		name: "wrong-type",
		in:   `<iq xmlns='jabber:client' type='set' id='w1'` + from + `><items xmlns='urn:xmpp:saslcert:1'/></iq>`,
		want: `<iq xmlns="jabber:client" type="error" to="alice@example.org/phone" id="w1"><error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></bad-request>` +
			`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">&lt;items/&gt; must be sent in an IQ of type get, not &#34;set&#34;</text></error></iq>`,
	}, {
		name: "unknown-payload",
		in:   `<iq xmlns='jabber:client' type='set' id='u1'` + from + `><remove xmlns='urn:xmpp:saslcert:1'><name>Phone</name></remove></iq>`,
		want: `<iq xmlns="jabber:client" type="error" to="alice@example.org/phone" id="u1"><error type="cancel"><feature-not-implemented xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></feature-not-implemented>` +
			`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">&lt;remove/&gt; is not a urn:xmpp:saslcert:1 request; expected items, append, disable or revoke</text></error></iq>`,
	}, {
		name: "bad-request/unknown-child",
		in:   `<iq xmlns='jabber:client' type='set' id='b1'` + from + `><disable xmlns='urn:xmpp:saslcert:1'><name>Phone</name><force/></disable></iq>`,
		want: `<iq xmlns="jabber:client" type="error" to="alice@example.org/phone" id="b1"><error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></bad-request>` +
			`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">unexpected element &lt;force/&gt; in &lt;disable/&gt;</text></error></iq>`,
	}, {
		name: "result-ignored",
		in:   `<iq xmlns='jabber:client' type='result' id='r1'` + from + `><items xmlns='urn:xmpp:saslcert:1'/></iq>`,
		want: ``,
	}, {
		name: "component/revoke",
		ns:   "jabber:component:accept",
		in: `<iq xmlns='jabber:component:accept' type='set' id='c1' from='alice@example.org/phone' to='certs.example.org'>` +
			`<revoke xmlns='urn:xmpp:saslcert:1'><name>Phone</name></revoke></iq>`,
		want: `<iq xmlns="jabber:component:accept" type="result" to="alice@example.org/phone" from="certs.example.org" id="c1"></iq>`,
	}, {
		name: "component/revoke-again",
		ns:   "jabber:component:accept",
		in: `<iq xmlns='jabber:component:accept' type='set' id='c2' from='alice@example.org/phone' to='certs.example.org'>` +
			`<revoke xmlns='urn:xmpp:saslcert:1'><name>Phone</name></revoke></iq>`,
		want: `<iq xmlns="jabber:component:accept" type="error" to="alice@example.org/phone" from="certs.example.org" id="c2"><error type="cancel">` +
			`<item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></item-not-found>` +
			`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no active certificate named &#34;Phone&#34;</text></error></iq>`,
	}, {
		name: "other-namespace-not-ours",
		in:   `<iq xmlns='jabber:client' type='get' id='p1'` + from + `><ping xmlns='urn:xmpp:ping'/></iq>`,
		want: `<iq xmlns="jabber:client" type="error" to="alice@example.org/phone" id="p1"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></service-unavailable></error></iq>`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := tc.ns
			if ns == "" {
				ns = stanza.NSClient
			}
			if got := serve(t, f.h, ns, tc.in); got != tc.want {
				t.Errorf("reply:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
	if len(f.revoked) != 1 || f.revoked[0].Name != "Phone" {
		t.Errorf("Revoked calls: %+v", f.revoked)
	}
}

// TestHandleIQStoreBusy checks that a store failure becomes a wait error on
// the wire and HandleIQ itself returns nil (returning an error would kill
// the stream).
func TestHandleIQStoreBusy(t *testing.T) {
	f := newFixture(t)
	f.h.Store = faultyStore{Store: f.db, fail: map[string]bool{"ListCerts": true}}
	got := serve(t, f.h, stanza.NSClient, `<iq xmlns='jabber:client' type='get' id='q1' from='alice@example.org/phone'><items xmlns='urn:xmpp:saslcert:1'/></iq>`)
	want := `<iq xmlns="jabber:client" type="error" to="alice@example.org/phone" id="q1"><error type="wait"><internal-server-error xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></internal-server-error>` +
		`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">the certificate store is busy; try again</text></error></iq>`
	if got != want {
		t.Errorf("reply:\n got %s\nwant %s", got, want)
	}
}

// failingWriter fails every write.
type failingWriter struct{ xml.TokenReader }

var errWrite = errors.New("write failed")

func (failingWriter) EncodeToken(xml.Token) error               { return errWrite }
func (failingWriter) Encode(any) error                          { return errWrite }
func (failingWriter) EncodeElement(any, xml.StartElement) error { return errWrite }

func TestHandleIQWriteError(t *testing.T) {
	f := newFixture(t)
	d := xml.NewDecoder(strings.NewReader(`<items xmlns='urn:xmpp:saslcert:1'/>`))
	tok, _ := d.Token()
	start := tok.(xml.StartElement)
	iq := stanza.IQ{Type: stanza.GetIQ, ID: "x", From: alice}
	if err := f.h.HandleIQ(iq, failingWriter{d}, &start); !errors.Is(err, errWrite) {
		t.Errorf("HandleIQ = %v, want the write error", err)
	}
}
