package stacktest

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/prosodytest"
)

// XML namespaces the raw client uses.
const (
	NSStreams      = "http://etherx.jabber.org/streams"
	NSTLS          = "urn:ietf:params:xml:ns:xmpp-tls"
	NSSASL         = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind         = "urn:ietf:params:xml:ns:xmpp-bind"
	NSStanzas      = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams"
	NSForge        = "urn:x-stacktest:forge:0"
)

// RawTimeout bounds each step of the raw client unless a call says
// otherwise.
var RawTimeout = 30 * time.Second

// Node is any XML element the server sent, children included.
type Node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []Node     `xml:",any"`
}

// Attr returns the value of the unqualified attribute name ("" if absent).
func (n *Node) Attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child called local in namespace space ("" for any
// namespace), or nil.
func (n *Node) Child(space, local string) *Node {
	for i := range n.Children {
		c := &n.Children[i]
		if c.XMLName.Local == local && (space == "" || c.XMLName.Space == space) {
			return c
		}
	}
	return nil
}

// String renders n compactly, without namespaces, for messages.
func (n *Node) String() string {
	var b strings.Builder
	b.WriteString("<" + n.XMLName.Local)
	for _, a := range n.Attrs {
		if a.Name.Space == "" && a.Name.Local != "xmlns" {
			fmt.Fprintf(&b, " %s='%s'", a.Name.Local, a.Value)
		}
	}
	text := strings.TrimSpace(n.Text)
	if len(n.Children) == 0 && text == "" {
		return b.String() + "/>"
	}
	b.WriteString(">")
	for i := range n.Children {
		b.WriteString(n.Children[i].String())
	}
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	b.WriteString(text + "</" + n.XMLName.Local + ">")
	return b.String()
}

// Outcome describes what n says, in one canonical line:
//
//	result                                  an IQ result
//	error TYPE/CONDITION[+APP]: TEXT        an IQ error (APP: a child of <error/> in another namespace)
//	success                                 SASL success
//	failure CONDITION: TEXT                 SASL failure
//	challenge TEXT                          SASL challenge
//	stream-error CONDITION: TEXT            stream error
//
// ": TEXT" is left out when there is no text.
func (n *Node) Outcome() string {
	if n == nil {
		return "nothing"
	}
	withText := func(s, text string) string {
		if text == "" {
			return s
		}
		return s + ": " + text
	}
	switch {
	case n.XMLName.Local == "iq":
		switch n.Attr("type") {
		case "result":
			return "result"
		case "error":
			e := n.Child("", "error")
			if e == nil {
				return "error (no <error/>)"
			}
			var cond, app, text string
			for _, c := range e.Children {
				switch {
				case c.XMLName.Space == NSStanzas && c.XMLName.Local == "text":
					text = c.Text
				case c.XMLName.Space == NSStanzas && cond == "":
					cond = c.XMLName.Local
				case c.XMLName.Space != NSStanzas && app == "":
					app = c.XMLName.Local
				}
			}
			s := "error " + e.Attr("type") + "/" + cond
			if app != "" {
				s += "+" + app
			}
			return withText(s, text)
		}
		return "iq " + n.Attr("type")
	case n.XMLName.Space == NSSASL:
		switch n.XMLName.Local {
		case "success":
			return "success"
		case "challenge":
			return "challenge " + n.Text
		case "failure":
			cond, text := n.Condition()
			return withText("failure "+cond, text)
		}
	case n.XMLName.Space == NSStreams && n.XMLName.Local == "error":
		cond, text := n.Condition()
		return withText("stream-error "+cond, text)
	}
	return n.String()
}

// Condition reads n as a SASL <failure/> or a stream <error/>: cond is the
// local name of its first child other than <text/> (the defined condition;
// "" if none) and text the character data of its <text/> child ("" if
// none). It does not check what n is.
func (n *Node) Condition() (cond, text string) {
	for _, c := range n.Children {
		if c.XMLName.Local == "text" {
			text = c.Text
		} else if cond == "" {
			cond = c.XMLName.Local
		}
	}
	return cond, text
}

// StreamError is a stream error the server sent where a reply was awaited.
type StreamError struct{ Node *Node }

func (e *StreamError) Error() string { return "stacktest: " + e.Node.Outcome() }

// RawClient is a hand-written c2s client: every byte it sends is the
// caller's choice.
type RawClient struct {
	Domain   string
	Features *Node  // the last stream features received
	Bound    string // the JID bound by Bind

	conn net.Conn
	dec  *xml.Decoder
	wmu  sync.Mutex
	ids  atomic.Int64
}

// DialRaw connects to the c2s port, negotiates STARTTLS presenting cert as
// the client certificate (nil: none) and opens the stream (DialRawServer on
// the stack's Prosody).
func (st *Stack) DialRaw(ctx context.Context, cert *certtest.Cert) (*RawClient, error) {
	return dialRaw(ctx, st.S, cert)
}

// DialRawServer connects to s's c2s port, negotiates STARTTLS trusting s's
// certificate and presenting cert as the client certificate (nil: none),
// and opens the stream: the returned client's Features are those offered
// after TLS. It works on any prosodytest server, with or without a
// component. On error the connection is closed.
func DialRawServer(ctx context.Context, s *prosodytest.Server, cert *certtest.Cert) (*RawClient, error) {
	return dialRaw(ctx, ProsodyServer(s), cert)
}

// dialRaw is DialRawServer on any Server.
func dialRaw(ctx context.Context, s Server, cert *certtest.Cert) (*RawClient, error) {
	conn, err := s.DialC2S(ctx)
	if err != nil {
		return nil, err
	}
	c, err := OpenRaw(conn, s.Domain())
	if err != nil {
		return nil, err
	}
	var certs []tls.Certificate
	if cert != nil {
		certs = append(certs, *TLSCert(cert))
	}
	if err := c.StartTLS(ctx, s.TLSConfig(certs...)); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// OpenRaw opens a c2s stream to domain on conn as it is (no TLS: call
// StartTLS next, or test what the server does without it): it sends the
// stream header, reads the server's and its stream features (Features). On
// error conn is closed.
func OpenRaw(conn net.Conn, domain string) (*RawClient, error) {
	c := &RawClient{Domain: domain, conn: conn}
	if err := c.Restart(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// StartTLS asks for STARTTLS (which the current Features must offer), does
// the TLS handshake with cfg (at most RawTimeout) and opens a new stream
// over TLS, whose features replace Features. An error leaves the client
// unusable; the caller closes it.
func (c *RawClient) StartTLS(ctx context.Context, cfg *tls.Config) error {
	if c.Features.Child(NSTLS, "starttls") == nil {
		return fmt.Errorf("stacktest: no starttls offered: %s", c.Features)
	}
	if err := c.Send(`<starttls xmlns='` + NSTLS + `'/>`); err != nil {
		return err
	}
	n, err := c.Next(RawTimeout)
	if err != nil {
		return err
	}
	if n.XMLName.Local != "proceed" {
		return fmt.Errorf("stacktest: starttls: %s", n)
	}
	tconn := tls.Client(c.conn, cfg)
	_ = tconn.SetDeadline(time.Now().Add(RawTimeout))
	if err := tconn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("stacktest: TLS handshake: %w", err)
	}
	_ = tconn.SetDeadline(time.Time{})
	c.conn = tconn
	return c.Restart()
}

// Conn is the connection the client reads and writes (the TLS connection
// after StartTLS). Closing it drops the connection without ending the
// stream, as a client that vanishes does; Close ends the stream first.
func (c *RawClient) Conn() net.Conn { return c.conn }

// Restart opens a new stream on the connection, as a client must after
// STARTTLS and after SASL <success/>: it sends a stream header, reads the
// server's, and stores the new stream features in Features. (DialRaw,
// AuthPlain and AuthExternal call it; a caller that authenticates with Auth
// calls it itself before Bind.)
func (c *RawClient) Restart() error {
	c.dec = xml.NewDecoder(bufio.NewReader(c.conn))
	if err := c.Send(fmt.Sprintf(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='%s' to='%s' version='1.0'>`, NSStreams, c.Domain)); err != nil {
		return err
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(RawTimeout))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return fmt.Errorf("stacktest: reading the stream header: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
			break
		}
	}
	f, err := c.Next(RawTimeout)
	if err != nil {
		return err
	}
	if f.XMLName.Local != "features" {
		return fmt.Errorf("stacktest: expected stream features, got %s", f.Outcome())
	}
	c.Features = f
	return nil
}

// Mechanisms lists the SASL mechanisms offered, in order.
func (c *RawClient) Mechanisms() []string {
	var out []string
	if m := c.Features.Child(NSSASL, "mechanisms"); m != nil {
		for _, n := range m.Children {
			out = append(out, strings.TrimSpace(n.Text))
		}
	}
	return out
}

// Send writes s as it is.
func (c *RawClient) Send(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(RawTimeout))
	_, err := io.WriteString(c.conn, s)
	return err
}

// Next reads the next top-level element, waiting at most d. The end of the
// server's stream gives io.EOF.
func (c *RawClient) Next(d time.Duration) (*Node, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			var n Node
			if err := c.dec.DecodeElement(&n, &tok); err != nil {
				return nil, err
			}
			return &n, nil
		case xml.EndElement:
			return nil, io.EOF
		}
	}
}

// Auth sends <auth mechanism='mech'>body</auth> (an empty element when body
// is "") and returns the server's answer.
func (c *RawClient) Auth(mech, body string) (*Node, error) {
	s := `<auth xmlns='` + NSSASL + `' mechanism='` + Escape(mech) + `'/>`
	if body != "" {
		s = `<auth xmlns='` + NSSASL + `' mechanism='` + Escape(mech) + `'>` + body + `</auth>`
	}
	if err := c.Send(s); err != nil {
		return nil, err
	}
	return c.Next(RawTimeout)
}

// AuthPlain authenticates with SASL PLAIN and restarts the stream.
func (c *RawClient) AuthPlain(user, password string) error {
	n, err := c.Auth("PLAIN", base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)))
	if err != nil {
		return err
	}
	if n.Outcome() != "success" {
		return fmt.Errorf("stacktest: PLAIN as %s: %s", user, n.Outcome())
	}
	return c.Restart()
}

// AuthExternal authenticates with SASL EXTERNAL (authzid "" sends "=") and
// restarts the stream. A refusal is returned as an error with the outcome.
func (c *RawClient) AuthExternal(authzid string) error {
	body := "="
	if authzid != "" {
		body = base64.StdEncoding.EncodeToString([]byte(authzid))
	}
	n, err := c.Auth("EXTERNAL", body)
	if err != nil {
		return err
	}
	if n.Outcome() != "success" {
		return fmt.Errorf("stacktest: EXTERNAL: %s", n.Outcome())
	}
	return c.Restart()
}

// Bind binds resource ("": the server picks) and returns the full JID.
func (c *RawClient) Bind(resource string) (string, error) { return c.BindThen(resource, "") }

// BindThen is Bind, sending then (raw XML, may be "") in the same write as
// the bind request, as a client that pipelines its first stanza does. It
// reads up to the bind reply; a reply to then is left for the caller (Await).
func (c *RawClient) BindThen(resource, then string) (string, error) {
	res := ""
	if resource != "" {
		res = "<resource>" + Escape(resource) + "</resource>"
	}
	id := c.NewID()
	if err := c.Send(`<iq type='set' id='` + id + `'><bind xmlns='` + NSBind + `'>` + res + `</bind></iq>` + then); err != nil {
		return "", err
	}
	n, err := c.Await(id, RawTimeout)
	if err != nil {
		return "", err
	}
	b := n.Child(NSBind, "bind")
	if n.Attr("type") != "result" || b == nil || b.Child("", "jid") == nil {
		return "", fmt.Errorf("stacktest: bind: %s", n.Outcome())
	}
	c.Bound = strings.TrimSpace(b.Child("", "jid").Text)
	return c.Bound, nil
}

// NewID returns a fresh stanza id.
func (c *RawClient) NewID() string { return fmt.Sprintf("raw%d", c.ids.Add(1)) }

// IQ sends <iq type='typ' id='…' [to='to']>payload</iq> (payload is raw XML)
// and returns the reply with that id. Other stanzas are skipped; a stream
// error is returned as a *StreamError.
func (c *RawClient) IQ(typ, to, payload string) (*Node, error) {
	return c.IQWithin(RawTimeout, typ, to, payload)
}

// IQWithin is IQ waiting at most d for the reply.
func (c *RawClient) IQWithin(d time.Duration, typ, to, payload string) (*Node, error) {
	id := c.NewID()
	toAttr := ""
	if to != "" {
		toAttr = " to='" + Escape(to) + "'"
	}
	if err := c.Send(fmt.Sprintf(`<iq type='%s' id='%s'%s>%s</iq>`, Escape(typ), id, toAttr, payload)); err != nil {
		return nil, err
	}
	return c.Await(id, d)
}

// Await reads until the IQ reply with id arrives (at most d).
func (c *RawClient) Await(id string, d time.Duration) (*Node, error) {
	deadline := time.Now().Add(d)
	for {
		n, err := c.Next(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		switch {
		case n.XMLName.Space == NSStreams && n.XMLName.Local == "error":
			return nil, &StreamError{Node: n}
		case n.XMLName.Local == "iq" && n.Attr("id") == id && (n.Attr("type") == "result" || n.Attr("type") == "error"):
			return n, nil
		}
	}
}

// Forge makes the server send raw (a stanza; its from should be the
// server's domain) with mod_stacktest_forge (Options.Forge) and returns the
// reply the server got, or nil if none came within 30 s. The outer error is
// the forge request's own failure.
func (c *RawClient) Forge(raw string) (*Node, error) {
	n, err := c.IQWithin(60*time.Second, "set", c.Domain, `<forge xmlns='`+NSForge+`'>`+Escape(raw)+`</forge>`)
	if err != nil {
		return nil, err
	}
	f := n.Child(NSForge, "forge")
	if n.Attr("type") != "result" || f == nil {
		return nil, fmt.Errorf("stacktest: forge: %s", n.Outcome())
	}
	text := strings.TrimSpace(f.Text)
	if text == "" {
		return nil, nil
	}
	var reply Node
	if err := xml.Unmarshal([]byte(text), &reply); err != nil {
		return nil, fmt.Errorf("stacktest: forge: unreadable reply %q: %w", text, err)
	}
	return &reply, nil
}

// WaitClosed waits up to d for the server to end the stream and returns the
// stream error it sent (nil if it just closed).
func (c *RawClient) WaitClosed(d time.Duration) (*Node, error) {
	deadline := time.Now().Add(d)
	for {
		n, err := c.Next(time.Until(deadline))
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, fmt.Errorf("stacktest: the stream is still open after %v", d)
			}
			return nil, nil // reset or closed
		}
		if n.XMLName.Space == NSStreams && n.XMLName.Local == "error" {
			return n, nil
		}
	}
}

// Close ends the stream and closes the connection.
func (c *RawClient) Close() error {
	_ = c.Send("</stream:stream>")
	return c.conn.Close()
}

// Escape escapes s for XML text or a single- or double-quoted attribute.
func Escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), "'", "&#39;")
}

// RawLogin registers nothing: it dials, logs user in with its password and
// binds.
func (st *Stack) RawLogin(ctx context.Context, user string) (*RawClient, error) {
	pw := st.Password(user)
	if pw == "" {
		return nil, fmt.Errorf("stacktest: %s is not registered", user)
	}
	c, err := st.DialRaw(ctx, nil)
	if err != nil {
		return nil, err
	}
	if err := c.AuthPlain(user, pw); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Bind(""); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// RawLoginCert dials presenting cert, logs in with SASL EXTERNAL and binds.
func (st *Stack) RawLoginCert(ctx context.Context, cert *certtest.Cert, authzid string) (*RawClient, error) {
	c, err := st.DialRaw(ctx, cert)
	if err != nil {
		return nil, err
	}
	if err := c.AuthExternal(authzid); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Bind(""); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// ---------------------------------------------------------------------------
// A raw XEP-0114 component client.

// NSComponent is the namespace of XEP-0114 component streams.
const NSComponent = "jabber:component:accept"

// DialRawComponent connects to the server's component port as the component
// jid and does the XEP-0114 handshake with secret. The handshake's answer is
// returned as a *StreamError if the server refuses it. The returned client
// sends stanzas as they are (a component must give them a to; a missing from
// is set to jid by Prosody).
func (st *Stack) DialRawComponent(ctx context.Context, jid, secret string) (*RawClient, error) {
	var d net.Dialer
	addr := st.S.ComponentAddr()
	if r, ok := st.S.(interface{ RogueComponentAddr() string }); ok && jid == st.RogueJID && r.RogueComponentAddr() != "" {
		addr = r.RogueComponentAddr() // a server that gives the second component its own listener
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &RawClient{Domain: jid, conn: conn}
	c.dec = xml.NewDecoder(bufio.NewReader(conn))
	if err := c.Send(fmt.Sprintf(`<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' to='%s'>`, NSComponent, NSStreams, Escape(jid))); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(RawTimeout))
	var id string
	for id == "" {
		tok, err := c.dec.Token()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("stacktest: reading the component stream header: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
			for _, a := range se.Attr {
				if a.Name.Local == "id" {
					id = a.Value
				}
			}
			if id == "" {
				conn.Close()
				return nil, errors.New("stacktest: the component stream header has no id")
			}
		}
	}
	sum := sha1.Sum([]byte(id + secret))
	if err := c.Send("<handshake>" + hex.EncodeToString(sum[:]) + "</handshake>"); err != nil {
		conn.Close()
		return nil, err
	}
	n, err := c.Next(RawTimeout)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if n.XMLName.Space == NSStreams && n.XMLName.Local == "error" {
		conn.Close()
		return nil, &StreamError{Node: n}
	}
	if n.XMLName.Local != "handshake" {
		conn.Close()
		return nil, fmt.Errorf("stacktest: component handshake: %s", n.Outcome())
	}
	return c, nil
}
