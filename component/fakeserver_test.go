package component

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is the server side of XEP-0114, written by hand (mellium's
// server side panics): it listens on 127.0.0.1, checks the handshake and
// lets a test exchange raw stanzas with the component.
type fakeServer struct {
	t      *testing.T
	ln     net.Listener
	secret string
	conns  chan *fakeConn

	mu sync.Mutex
	// rejectHandshake makes the next handshakes fail with not-authorized.
	rejectHandshake bool
	// options copied into every new fakeConn
	noAutoPing   bool
	noCloseReply bool   // do not answer </stream:stream>
	sessionsXML  string // payload answering <sessions/>; "" -> empty <sessions/>
	// sessionsError, if set, is the <error/> every connection answers
	// <sessions/> queries with from now on.
	sessionsError string
	// accounts answers <accounts/> queries: exists= per account JID;
	// accounts not in it exist ("true").
	accounts map[string]string
	attempts int // connections accepted
	all      []*fakeConn
}

// node is a decoded element for assertions.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []node     `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n *node) attr(local string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attrs {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

func (n *node) hasAttr(local string) bool {
	for _, a := range n.Attrs {
		if a.Name.Local == local && a.Name.Space == "" {
			return true
		}
	}
	return false
}

// child returns the first child called local (in namespace space, unless
// space is "").
func (n *node) child(space, local string) *node {
	if n == nil {
		return nil
	}
	for i := range n.Nodes {
		c := &n.Nodes[i]
		if c.XMLName.Local == local && (space == "" || c.XMLName.Space == space) {
			return c
		}
	}
	return nil
}

// path follows children by local name.
func (n *node) path(locals ...string) *node {
	for _, l := range locals {
		n = n.child("", l)
	}
	return n
}

func (n *node) String() string {
	if n == nil {
		return "<nil>"
	}
	b, err := xml.Marshal(n.withoutXMLNS())
	if err != nil {
		return fmt.Sprintf("%#v", n)
	}
	return string(b)
}

// withoutXMLNS drops the namespace declarations the decoder kept as
// attributes (the encoder adds them again from the names).
func (n *node) withoutXMLNS() *node {
	c := *n
	c.Attrs = nil
	for _, a := range n.Attrs {
		if a.Name.Local != "xmlns" && a.Name.Space != "xmlns" {
			c.Attrs = append(c.Attrs, a)
		}
	}
	c.Nodes = make([]node, len(n.Nodes))
	for i := range n.Nodes {
		c.Nodes[i] = *n.Nodes[i].withoutXMLNS()
	}
	return &c
}

// elements returns the element children.
func (n *node) elements() []node {
	if n == nil {
		return nil
	}
	return n.Nodes
}

func newFakeServer(t *testing.T, secret string) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, secret: secret, conns: make(chan *fakeConn, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		s.mu.Lock()
		all := s.all
		s.mu.Unlock()
		for _, c := range all {
			c.conn.Close()
		}
	})
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// next waits for the next authenticated connection.
func (s *fakeServer) next(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the component did not connect")
	}
	return nil
}

// fakeConn is one component connection as the server sees it.
type fakeConn struct {
	s      *fakeServer
	conn   net.Conn
	dec    *xml.Decoder
	in     chan *node    // stanzas not answered automatically
	auto   chan *node    // stanzas answered automatically (pings, <sessions/>)
	closed chan struct{} // the component's input stream ended
	ended  bool          // it ended with </stream:stream>
	wmu    sync.Mutex

	noAutoPing   bool
	noCloseReply bool
	sessionsXML  string

	raw syncBuffer // everything the component sent
}

func (s *fakeServer) serve(conn net.Conn) {
	s.mu.Lock()
	s.attempts++
	reject := s.rejectHandshake
	c := &fakeConn{
		s: s, conn: conn,
		in: make(chan *node, 256), auto: make(chan *node, 256), closed: make(chan struct{}),
		noAutoPing: s.noAutoPing, noCloseReply: s.noCloseReply, sessionsXML: s.sessionsXML,
	}
	c.dec = xml.NewDecoder(io.TeeReader(conn, &c.raw))
	s.all = append(s.all, c)
	s.mu.Unlock()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var to string
	for {
		tok, err := c.dec.Token()
		if err != nil {
			conn.Close()
			return
		}
		if st, ok := tok.(xml.StartElement); ok {
			if st.Name.Local != "stream" || st.Name.Space != "http://etherx.jabber.org/streams" {
				conn.Close()
				return
			}
			for _, a := range st.Attr {
				if a.Name.Local == "to" {
					to = a.Value
				}
			}
			break
		}
	}
	id := fmt.Sprintf("fake%d", time.Now().UnixNano())
	fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='%s' from='%s'>", id, to)
	var hs struct {
		Text string `xml:",chardata"`
	}
	for {
		tok, err := c.dec.Token()
		if err != nil {
			conn.Close()
			return
		}
		if st, ok := tok.(xml.StartElement); ok {
			if st.Name.Local != "handshake" || c.dec.DecodeElement(&hs, &st) != nil {
				conn.Close()
				return
			}
			break
		}
	}
	sum := sha1.Sum([]byte(id + s.secret))
	if reject || !strings.EqualFold(strings.TrimSpace(hs.Text), hex.EncodeToString(sum[:])) {
		io.WriteString(conn, "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
		conn.Close()
		return
	}
	io.WriteString(conn, "<handshake/>")
	_ = conn.SetDeadline(time.Time{})
	go c.read()
	s.conns <- c
}

func (c *fakeConn) read() {
	defer close(c.closed)
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return
		}
		switch tok := tok.(type) {
		case xml.EndElement:
			// </stream:stream>: answer as Prosody does, unless told not to.
			c.ended = true
			if !c.noCloseReply {
				c.send("</stream:stream>")
				c.conn.Close()
			}
			return
		case xml.StartElement:
			n := new(node)
			if err := c.dec.DecodeElement(n, &tok); err != nil {
				return
			}
			if c.autoAnswer(n) {
				c.auto <- n
				continue
			}
			c.in <- n
		}
	}
}

// autoAnswer answers pings and <sessions/> queries like a server with the
// plugin would.
func (c *fakeConn) autoAnswer(n *node) bool {
	if n.XMLName.Local != "iq" || n.attr("type") != "get" {
		return false
	}
	switch {
	case n.child("urn:xmpp:ping", "ping") != nil && !c.noAutoPing:
		c.send(fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'/>", n.attr("id"), n.attr("to"), n.attr("from")))
		return true
	case n.child(NSPlugin, "accounts") != nil:
		var b strings.Builder
		b.WriteString("<accounts xmlns='" + NSPlugin + "'>")
		c.s.mu.Lock()
		for _, a := range n.child(NSPlugin, "accounts").elements() {
			exists, ok := c.s.accounts[a.attr("jid")]
			if !ok {
				exists = "true"
			}
			fmt.Fprintf(&b, "<account jid='%s' exists='%s'/>", a.attr("jid"), exists)
		}
		c.s.mu.Unlock()
		b.WriteString("</accounts>")
		c.send(fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'>%s</iq>", n.attr("id"), n.attr("to"), n.attr("from"), b.String()))
		return true
	case n.child(NSPlugin, "sessions") != nil:
		c.s.mu.Lock()
		errXML := c.s.sessionsError
		c.s.mu.Unlock()
		if errXML != "" {
			c.send(fmt.Sprintf("<iq type='error' id='%s' from='%s' to='%s'>%s</iq>", n.attr("id"), n.attr("to"), n.attr("from"), errXML))
			return true
		}
		payload := c.sessionsXML
		if payload == "" {
			payload = "<sessions xmlns='" + NSPlugin + "'/>"
		}
		c.send(fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'>%s</iq>", n.attr("id"), n.attr("to"), n.attr("from"), payload))
		return true
	}
	return false
}

// send writes raw XML to the component.
func (c *fakeConn) send(raw string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, _ = io.WriteString(c.conn, raw)
}

// expect returns the next stanza that is not answered automatically.
func (c *fakeConn) expect(t *testing.T) *node {
	t.Helper()
	select {
	case n := <-c.in:
		return n
	case <-c.closed:
		// Drain what arrived before the end.
		select {
		case n := <-c.in:
			return n
		default:
		}
		t.Fatal("the component closed the stream while a stanza was expected")
	case <-time.After(10 * time.Second):
		t.Fatal("no stanza from the component")
	}
	return nil
}

// expectNone checks that nothing arrives for d.
func (c *fakeConn) expectNone(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case n := <-c.in:
		t.Fatalf("unexpected stanza: %s", n)
	case <-time.After(d):
	}
}

// roundTrip sends raw and returns the next stanza.
func (c *fakeConn) roundTrip(t *testing.T, raw string) *node {
	t.Helper()
	c.send(raw)
	return c.expect(t)
}

// waitClosed waits for the component to end its stream or connection.
func (c *fakeConn) waitClosed(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-c.closed:
	case <-time.After(d):
		t.Fatal("the component did not close the connection")
	}
}
