package prosody_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/prosodytest"
)

const nsPlugin = "urn:x-saslcert:plugin:0"

// esc escapes s for an XML attribute or text.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), "'", "&#39;")
}

func fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(h[:])
}

func b64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

// node is any XML element.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []node     `xml:",any"`
}

func (n *node) attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value, true
		}
	}
	return "", false
}

func (n *node) child(local string) *node {
	for i := range n.Nodes {
		if n.Nodes[i].XMLName.Local == local {
			return &n.Nodes[i]
		}
	}
	return nil
}

// String renders n compactly for messages (namespaces omitted).
func (n *node) String() string {
	var b strings.Builder
	b.WriteString("<" + n.XMLName.Local)
	for _, a := range n.Attrs {
		if a.Name.Local == "xmlns" || a.Name.Space == "xmlns" {
			continue
		}
		fmt.Fprintf(&b, " %s='%s'", a.Name.Local, a.Value)
	}
	if len(n.Nodes) == 0 && strings.TrimSpace(n.Text) == "" {
		b.WriteString("/>")
		return b.String()
	}
	b.WriteString(">")
	for i := range n.Nodes {
		b.WriteString(n.Nodes[i].String())
	}
	b.WriteString(strings.TrimSpace(n.Text))
	b.WriteString("</" + n.XMLName.Local + ">")
	return b.String()
}

// saslCondition is the condition of a SASL <failure/> and its text.
func (n *node) saslCondition() (cond, text string) {
	for _, c := range n.Nodes {
		if c.XMLName.Local == "text" {
			text = c.Text
		} else if cond == "" {
			cond = c.XMLName.Local
		}
	}
	return cond, text
}

// ---------------------------------------------------------------------------
// A stand-in for the saslcert component.

type answer struct {
	JID, Resource, Fingerprint string // result
	ErrType, ErrCond, SASLCond string // error (ErrType != "")
	Text                       string
	Silent                     bool
	Hold                       bool // do not answer now; the reply goes to fakeComponent.held
}

type lookupReq struct {
	From, To, Authzid string
	HasAuthzid        bool
	Cert              string
}

type notice struct {
	From, Event, JID, Fingerprint string
}

type fakeComponent struct {
	t    testing.TB
	s    *prosodytest.Server
	sess *xmpp.Session
	conn net.Conn
	done chan error

	mu      sync.Mutex
	answers map[string]answer // by base64 DER
	lookups []lookupReq
	notices []notice
	held    chan string // replies of Hold answers, to send with release
}

func startComponent(t testing.TB, s *prosodytest.Server) *fakeComponent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.ComponentAddr)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := component.NewSession(ctx, jid.MustParse(s.ComponentJID), []byte(s.ComponentSecret), conn)
	if err != nil {
		conn.Close()
		t.Fatalf("component handshake: %v", err)
	}
	fc := &fakeComponent{t: t, s: s, sess: sess, conn: conn, done: make(chan error, 1), answers: map[string]answer{}, held: make(chan string, 16)}
	m := mux.New(component.NSAccept,
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: nsPlugin, Local: "lookup"}, fc.handleLookup),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: nsPlugin, Local: "session"}, fc.handleSession),
		mux.MessageFunc(stanza.NormalMessage, xml.Name{Space: nsPlugin, Local: "notices"}, fc.handleNotices),
	)
	go func() { fc.done <- sess.Serve(m) }()
	t.Cleanup(fc.Close)
	return fc
}

func (fc *fakeComponent) set(der []byte, a answer) {
	fc.mu.Lock()
	fc.answers[b64(der)] = a
	fc.mu.Unlock()
}

func (fc *fakeComponent) takeLookups() []lookupReq {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	l := fc.lookups
	fc.lookups = nil
	return l
}

func (fc *fakeComponent) takeNotices() []notice {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	n := fc.notices
	fc.notices = nil
	return n
}

// waitNotices waits until at least n notices arrived and returns them.
func (fc *fakeComponent) waitNotices(t testing.TB, n int) []notice {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fc.mu.Lock()
		got := len(fc.notices)
		fc.mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			return fc.takeNotices()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close disconnects the component (idempotent).
func (fc *fakeComponent) Close() {
	_ = fc.sess.Close()
	_ = fc.conn.Close()
	<-fc.done
	fc.done <- nil
}

func (fc *fakeComponent) handleLookup(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var req lookupReq
	req.From, req.To = iq.From.String(), iq.To.String()
	for _, a := range start.Attr {
		if a.Name.Local == "authzid" {
			req.Authzid, req.HasAuthzid = a.Value, true
		}
	}
	var payload struct {
		Cert string `xml:"x509cert"`
	}
	d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t))
	if err := d.Decode(&payload); err != nil {
		return err
	}
	req.Cert = payload.Cert
	fc.mu.Lock()
	fc.lookups = append(fc.lookups, req)
	a, ok := fc.answers[req.Cert]
	fc.mu.Unlock()
	if !ok {
		a = answer{ErrType: "auth", ErrCond: "not-authorized", SASLCond: "not-authorized", Text: "unknown certificate"}
	}
	if a.Silent {
		return nil
	}
	var reply string
	head := fmt.Sprintf(`<iq type='%%s' id='%s' from='%s' to='%s'>`, esc(iq.ID), esc(iq.To.String()), esc(iq.From.String()))
	if a.ErrType == "" {
		res := ""
		if a.Resource != "" {
			res = fmt.Sprintf(` resource='%s'`, esc(a.Resource))
		}
		reply = fmt.Sprintf(head, "result") + fmt.Sprintf(`<lookup xmlns='%s' jid='%s' fingerprint='%s'%s no-cert-management='false'/></iq>`,
			nsPlugin, esc(a.JID), esc(a.Fingerprint), res)
	} else {
		reply = fmt.Sprintf(head, "error") + fmt.Sprintf(`<error type='%s'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>`, a.ErrType, a.ErrCond)
		if a.SASLCond != "" {
			reply += fmt.Sprintf(`<%s xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`, a.SASLCond)
		}
		if a.Text != "" {
			reply += fmt.Sprintf(`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>%s</text>`, esc(a.Text))
		}
		reply += `</error></iq>`
	}
	if a.Hold {
		fc.held <- reply
		return nil
	}
	_, err := xmlstream.Copy(t, xml.NewDecoder(strings.NewReader(reply)))
	return err
}

// release sends the next held lookup reply.
func (fc *fakeComponent) release(t testing.TB) {
	t.Helper()
	var reply string
	select {
	case reply = <-fc.held:
	case <-time.After(5 * time.Second):
		t.Fatal("no held lookup")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fc.sess.Send(ctx, xml.NewDecoder(strings.NewReader(reply))); err != nil {
		t.Fatal(err)
	}
}

// handleNotices records a batch of session notices sent as a message.
func (fc *fakeComponent) handleNotices(msg stanza.Message, t xmlstream.TokenReadEncoder) error {
	for {
		tok, err := t.Token()
		if err != nil {
			return nil
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Space == nsPlugin && s.Name.Local == "session" {
			fc.record(msg.From.String(), s)
		}
	}
}

func (fc *fakeComponent) handleSession(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	fc.record(iq.From.String(), *start)
	_, err := xmlstream.Copy(t, iq.Result(nil))
	return err
}

func (fc *fakeComponent) record(from string, start xml.StartElement) {
	n := notice{From: from}
	for _, a := range start.Attr {
		switch a.Name.Local {
		case "event":
			n.Event = a.Value
		case "jid":
			n.JID = a.Value
		case "fingerprint":
			n.Fingerprint = a.Value
		}
	}
	fc.mu.Lock()
	fc.notices = append(fc.notices, n)
	fc.mu.Unlock()
}

// sendIQ sends raw IQ XML to the server and returns the reply.
func (fc *fakeComponent) sendIQ(t testing.TB, raw string) *node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := fc.sess.SendIQ(ctx, xml.NewDecoder(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("component IQ: %v", err)
	}
	defer resp.Close()
	var n node
	if err := xml.NewTokenDecoder(resp).Decode(&n); err != nil {
		t.Fatalf("component IQ reply: %v", err)
	}
	return &n
}

// ---------------------------------------------------------------------------
// A raw XML c2s client: full control over SASL elements and exact replies.

type rawClient struct {
	t     testing.TB
	s     *prosodytest.Server
	conn  net.Conn
	br    *bufio.Reader
	dec   *xml.Decoder
	feats *node
}

// dialRaw connects, negotiates STARTTLS presenting cert (may be nil) and
// opens the stream; features are in c.feats.
func dialRaw(t testing.TB, s *prosodytest.Server, cert *certtest.Cert) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.C2SAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, s: s, conn: conn}
	t.Cleanup(func() { c.conn.Close() })
	c.reset(conn)
	c.open()
	if c.feats.child("starttls") == nil {
		t.Fatalf("no starttls offered: %s", c.feats)
	}
	c.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	if n := c.next(); n.XMLName.Local != "proceed" {
		t.Fatalf("starttls: %s", n)
	}
	var certs []tls.Certificate
	if cert != nil {
		certs = append(certs, tls.Certificate{Certificate: [][]byte{cert.DER}, PrivateKey: cert.Key})
	}
	tc := tls.Client(conn, s.TLSConfig(certs...))
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	c.reset(tc)
	c.open()
	return c
}

// dialPlain connects and opens the stream without TLS.
func dialPlain(t testing.TB, s *prosodytest.Server) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.C2SAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, s: s, conn: conn}
	t.Cleanup(func() { c.conn.Close() })
	c.reset(conn)
	c.open()
	return c
}

func (c *rawClient) reset(conn net.Conn) {
	c.conn = conn
	c.br = bufio.NewReader(conn)
}

// open sends a stream header and reads the server's header and features.
func (c *rawClient) open() {
	c.t.Helper()
	c.dec = xml.NewDecoder(c.br)
	c.send(fmt.Sprintf(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>`, c.s.Domain))
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			c.t.Fatalf("reading stream header: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
			break
		}
	}
	f := c.next()
	if f.XMLName.Local != "features" {
		c.t.Fatalf("expected features, got %s", f)
	}
	c.feats = f
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// nextErr reads the next top-level element within d.
func (c *rawClient) nextErr(d time.Duration) (*node, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			var n node
			if err := c.dec.DecodeElement(&n, &tok); err != nil {
				return nil, err
			}
			return &n, nil
		case xml.EndElement:
			return nil, io.EOF // </stream:stream>
		}
	}
}

func (c *rawClient) next() *node {
	c.t.Helper()
	n, err := c.nextErr(10 * time.Second)
	if err != nil {
		c.t.Fatalf("reading: %v", err)
	}
	return n
}

// mechanisms lists the offered SASL mechanisms in order.
func (c *rawClient) mechanisms() []string {
	var out []string
	if m := c.feats.child("mechanisms"); m != nil {
		for _, n := range m.Nodes {
			out = append(out, n.Text)
		}
	}
	return out
}

// bind binds resource (may be empty) after a stream restart and returns the
// bound JID.
func (c *rawClient) bind(resource string) string {
	c.t.Helper()
	c.open()
	res := ""
	if resource != "" {
		res = "<resource>" + esc(resource) + "</resource>"
	}
	c.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>` + res + `</bind></iq>`)
	n := c.next()
	if v, _ := n.attr("type"); v != "result" {
		c.t.Fatalf("bind: %s", n)
	}
	b := n.child("bind")
	if b == nil || b.child("jid") == nil {
		c.t.Fatalf("bind: %s", n)
	}
	return b.child("jid").Text
}

// expectStreamError waits for a stream error and returns it.
func (c *rawClient) expectStreamError(d time.Duration) *node {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		n, err := c.nextErr(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for a stream error: %v", err)
		}
		if n.XMLName.Local == "error" && n.XMLName.Space == "http://etherx.jabber.org/streams" {
			return n
		}
	}
}

// authExternal sends <auth mechanism='EXTERNAL'>text</auth> (no text when
// text is "-") and returns the reply.
func (c *rawClient) authExternal(text string) *node {
	c.t.Helper()
	if text == "-" {
		c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'/>`)
	} else {
		c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>` + text + `</auth>`)
	}
	return c.next()
}

// failure asserts n is a SASL failure with condition cond and returns its
// text.
func failure(t testing.TB, n *node, cond string) string {
	t.Helper()
	if n.XMLName.Local != "failure" {
		t.Fatalf("want <failure><%s/></failure>, got %s", cond, n)
	}
	got, text := n.saslCondition()
	if got != cond {
		t.Fatalf("want <failure><%s/></failure>, got %s", cond, n)
	}
	t.Logf("got %s", n)
	return text
}
