package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
)

// XML namespaces the raw client looks at.
const (
	nsStreams = "http://etherx.jabber.org/streams"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

// elem is any XML element, decoded generically.
type elem struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []elem     `xml:",any"`
}

func (e *elem) child(space, local string) *elem {
	for i := range e.Children {
		if c := &e.Children[i]; c.XMLName.Local == local && (space == "" || c.XMLName.Space == space) {
			return c
		}
	}
	return nil
}

// String renders e compactly (namespaces left out) for messages.
func (e *elem) String() string {
	var b strings.Builder
	b.WriteString("<" + e.XMLName.Local)
	for _, a := range e.Attrs {
		if a.Name.Space == "" && a.Name.Local != "xmlns" {
			fmt.Fprintf(&b, " %s='%s'", a.Name.Local, a.Value)
		}
	}
	text := strings.TrimSpace(e.Text)
	if len(e.Children) == 0 && text == "" {
		return b.String() + "/>"
	}
	b.WriteString(">")
	for i := range e.Children {
		b.WriteString(e.Children[i].String())
	}
	b.WriteString(text + "</" + e.XMLName.Local + ">")
	return b.String()
}

// saslFailure returns the condition and text of a SASL <failure/>.
func (e *elem) saslFailure() (cond, text string) {
	for _, c := range e.Children {
		if c.XMLName.Local == "text" {
			text = c.Text
		} else if cond == "" {
			cond = c.XMLName.Local
		}
	}
	return cond, text
}

// rawClient speaks c2s XML by hand, so that tests control every SASL
// element and see the server's exact answers.
type rawClient struct {
	t      *testing.T
	domain string
	conn   net.Conn
	dec    *xml.Decoder
	// features are the stream features of the current stream.
	features *elem
}

// dialRaw connects to st's c2s port, negotiates STARTTLS presenting cert
// (nil: no client certificate) and opens the encrypted stream.
func dialRaw(t *testing.T, st *stack, cert *certtest.Cert) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", st.S.C2SAddr, stepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, domain: st.S.Domain, conn: conn}
	t.Cleanup(func() { _ = c.conn.Close() })
	c.open()
	if c.features.child(nsTLS, "starttls") == nil {
		t.Fatalf("STARTTLS not offered: %s", c.features)
	}
	c.send(`<starttls xmlns='` + nsTLS + `'/>`)
	if n := c.next(); n.XMLName.Local != "proceed" {
		t.Fatalf("STARTTLS: got %s", n)
	}
	var certs []tls.Certificate
	if cert != nil {
		certs = append(certs, *tlsCert(cert))
	}
	tc := tls.Client(conn, st.S.TLSConfig(certs...))
	_ = tc.SetDeadline(time.Now().Add(stepTimeout))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	_ = tc.SetDeadline(time.Time{})
	c.conn = tc
	c.open()
	return c
}

// open sends a stream header and reads the server's header and features.
func (c *rawClient) open() {
	c.t.Helper()
	c.dec = xml.NewDecoder(bufio.NewReader(c.conn))
	c.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='` + nsStreams +
		`' to='` + c.domain + `' version='1.0'>`)
	_ = c.conn.SetReadDeadline(time.Now().Add(stepTimeout))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			c.t.Fatalf("reading the stream header: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" && se.Name.Space == nsStreams {
			break
		}
	}
	f := c.next()
	if f.XMLName.Local != "features" {
		c.t.Fatalf("want stream features, got %s", f)
	}
	c.features = f
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(stepTimeout))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// nextWithin reads the next top-level element, waiting at most d. The end
// of the server's stream is io.EOF.
func (c *rawClient) nextWithin(d time.Duration) (*elem, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			var e elem
			if err := c.dec.DecodeElement(&e, &tok); err != nil {
				return nil, err
			}
			return &e, nil
		case xml.EndElement:
			return nil, io.EOF
		}
	}
}

func (c *rawClient) next() *elem {
	c.t.Helper()
	e, err := c.nextWithin(stepTimeout)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("no answer from the server within %v (the stream hangs)", stepTimeout)
		}
		c.t.Fatalf("reading: %v", err)
	}
	return e
}

// mechanisms lists the offered SASL mechanisms in order.
func (c *rawClient) mechanisms() []string {
	var out []string
	if m := c.features.child(nsSASL, "mechanisms"); m != nil {
		for _, n := range m.Children {
			out = append(out, strings.TrimSpace(n.Text))
		}
	}
	return out
}

// wantSASLFailure asserts e is <failure><cond/></failure> and returns its
// text.
func wantSASLFailure(t *testing.T, e *elem, cond string) string {
	t.Helper()
	if e.XMLName.Local != "failure" || e.XMLName.Space != nsSASL {
		t.Fatalf("want <failure><%s/></failure>, got %s", cond, e)
	}
	got, text := e.saslFailure()
	if got != cond {
		t.Fatalf("want <failure><%s/></failure>, got %s", cond, e)
	}
	t.Logf("got %s", e)
	return text
}

// authExternal sends <auth mechanism='EXTERNAL'>initial</auth> and returns
// the server's answer.
func (c *rawClient) authExternal(initial string) *elem {
	c.t.Helper()
	c.send(`<auth xmlns='` + nsSASL + `' mechanism='EXTERNAL'>` + initial + `</auth>`)
	return c.next()
}

// bind restarts the stream after <success/>, binds resource ("" lets the
// server pick) and returns the bound JID.
func (c *rawClient) bind(resource string) string {
	c.t.Helper()
	return c.bindThen(resource, "")
}

// bindThen is bind, sending then (raw XML) in the same write as the bind
// request, as a client that pipelines its first stanza does.
func (c *rawClient) bindThen(resource, then string) string {
	c.t.Helper()
	c.open()
	res := ""
	if resource != "" {
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(resource))
		res = "<resource>" + b.String() + "</resource>"
	}
	c.send(`<iq type='set' id='bind1'><bind xmlns='` + nsBind + `'>` + res + `</bind></iq>` + then)
	e := c.iqReply("bind1")
	b := e.child(nsBind, "bind")
	if e.attr("type") != "result" || b == nil || b.child(nsBind, "jid") == nil {
		c.t.Fatalf("bind %q: got %s", resource, e)
	}
	return strings.TrimSpace(b.child(nsBind, "jid").Text)
}

// attr returns e's attribute name (no namespace).
func (e *elem) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// iqReply reads until the IQ with id arrives and returns it.
func (c *rawClient) iqReply(id string) *elem {
	c.t.Helper()
	for {
		e := c.next()
		if e.XMLName.Local == "iq" && e.attr("id") == id {
			return e
		}
	}
}
