package xmpptest_test

import (
	"encoding/xml"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/xmpptest"
)

func TestPairPing(t *testing.T) {
	p := xmpptest.NewPair(t, xmpptest.Options{ServerHandler: mux.New(stanza.NSClient, ping.Handle())})
	if got, want := p.Client.LocalAddr().String(), "alice@example.org/phone"; got != want {
		t.Errorf("client LocalAddr = %s, want %s", got, want)
	}
	if got, want := p.Server.LocalAddr().String(), "example.org"; got != want {
		t.Errorf("server LocalAddr = %s, want %s", got, want)
	}
	if err := ping.Send(t.Context(), p.Client, p.Server.LocalAddr()); err != nil {
		t.Fatal(err)
	}
}

func TestStampFrom(t *testing.T) {
	from := jid.MustParse("alice@example.org/phone")
	var seen []string
	h := mux.New(stanza.NSClient, mux.IQFunc(stanza.GetIQ, xml.Name{Space: ping.NS, Local: "ping"},
		func(iq stanza.IQ, t xmlstream.TokenReadEncoder, _ *xml.StartElement) error {
			seen = append(seen, iq.From.String())
			_, err := xmlstream.Copy(t, iq.Result(nil))
			return err
		}))
	p := xmpptest.NewPair(t, xmpptest.Options{ServerHandler: xmpptest.StampFrom(from, h)})
	// No 'to': as a client asks its own server.
	if err := ping.Send(t.Context(), p.Client, jid.JID{}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != from.String() {
		t.Errorf("handler saw from %q, want [%s]", seen, from)
	}
}

func TestEncoding(t *testing.T) {
	type v struct {
		XMLName xml.Name `xml:"urn:example a"`
		B       string   `xml:"b"`
	}
	xmpptest.RunEncoding(t, []xmpptest.EncodingCase{
		{Name: "roundtrip", Value: &v{XMLName: xml.Name{Space: "urn:example", Local: "a"}, B: "x"}, XML: `<a xmlns="urn:example"><b>x</b></a>`},
		{Name: "unmarshal-only", NoMarshal: true, Value: &v{XMLName: xml.Name{Space: "urn:example", Local: "a"}, B: "x"}, XML: `<a xmlns="urn:example"> <b>x</b> </a>`},
	})
}
