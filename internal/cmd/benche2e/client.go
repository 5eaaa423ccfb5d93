package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// The lean client: raw TCP, STARTTLS, SASL (EXTERNAL or PLAIN) and resource
// binding, written by hand so that the client costs little next to the
// servers it measures. Stanzas are written as literal strings; what the
// server sends is read with encoding/xml, one top-level element at a time.

// XML namespaces the client uses.
const (
	nsStreams = "http://etherx.jabber.org/streams"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsCerts   = "urn:xmpp:saslcert:1"
)

// negotiateTimeout bounds one login (connect to resource bound).
const negotiateTimeout = 15 * time.Second

// elem is one element the server sent, children included.
type elem struct {
	XMLName  xml.Name
	Attr     []xml.Attr `xml:",any,attr"`
	Children []elem     `xml:",any"`
	Text     string     `xml:",chardata"`
}

func (e *elem) attr(name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// child returns the first child called local in namespace space ("" matches
// any namespace), or nil.
func (e *elem) child(space, local string) *elem {
	for i := range e.Children {
		c := &e.Children[i]
		if c.XMLName.Local == local && (space == "" || c.XMLName.Space == space) {
			return c
		}
	}
	return nil
}

// describe is a short text form of an error stanza or SASL failure.
func (e *elem) describe() string {
	var parts []string
	var walk func(x *elem)
	walk = func(x *elem) {
		for i := range x.Children {
			c := &x.Children[i]
			switch {
			case c.XMLName.Local == "text":
				if t := strings.TrimSpace(c.Text); t != "" {
					parts = append(parts, fmt.Sprintf("%q", t))
				}
			case c.XMLName.Local == "error":
				if t := c.attr("type"); t != "" {
					parts = append(parts, t)
				}
				walk(c)
			default:
				parts = append(parts, c.XMLName.Local)
			}
		}
	}
	walk(e)
	return "<" + e.XMLName.Local + "> " + strings.Join(parts, " ")
}

// xconn is one client connection: the socket (TCP, then TLS) and the XML
// decoder of the current stream.
type xconn struct {
	raw  net.Conn
	conn net.Conn
	br   *bufio.Reader
	dec  *xml.Decoder
	wmu  sync.Mutex
	// sasl is how long the login's SASL exchange took: <auth/> sent to
	// <success/> read (the step a server's certificate check lengthens).
	sasl time.Duration
}

func (c *xconn) send(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write([]byte(s))
	return err
}

// openStream sends a stream header, reads the server's and returns its
// stream features.
func (c *xconn) openStream(domain string) (*elem, error) {
	err := c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='" + nsStreams +
		"' to='" + domain + "' version='1.0' xml:lang='en'>")
	if err != nil {
		return nil, err
	}
	// The reader implements io.ByteReader, so the decoder reads no further
	// than it must: a new decoder can take over for the next stream.
	c.dec = xml.NewDecoder(c.br)
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, fmt.Errorf("reading the stream header: %w", err)
		}
		if st, ok := tok.(xml.StartElement); ok {
			if st.Name.Local != "stream" || st.Name.Space != nsStreams {
				return nil, fmt.Errorf("expected a stream header, got <%s>", st.Name.Local)
			}
			break
		}
	}
	f, err := c.next()
	if err != nil {
		return nil, err
	}
	if f.XMLName.Local != "features" || f.XMLName.Space != nsStreams {
		return nil, fmt.Errorf("expected stream features, got %s", f.describe())
	}
	return f, nil
}

// errStreamEnd is returned when the server closes its stream.
var errStreamEnd = errors.New("the server closed the stream")

// next reads the next top-level element of the stream. A stream error is
// returned as an error.
func (c *xconn) next() (*elem, error) {
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			e := &elem{}
			if err := c.dec.DecodeElement(e, &t); err != nil {
				return nil, err
			}
			if e.XMLName.Local == "error" && e.XMLName.Space == nsStreams {
				return nil, fmt.Errorf("stream error: %s", e.describe())
			}
			return e, nil
		case xml.EndElement:
			return nil, errStreamEnd
		}
	}
}

// close ends the stream and closes the socket without waiting for the
// server's end of stream.
func (c *xconn) close() {
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.send("</stream:stream>")
	_ = c.conn.Close()
}

// account is who logs in and how.
type account struct {
	user     string           // localpart
	tls      *tls.Config      // with the user's client certificate, if any
	password string           // non-empty: SASL PLAIN; empty: SASL EXTERNAL
	der      []byte           // the user's certificate (DER), if any
	cert     *tls.Certificate // the same with its key
}

// login connects to addr, negotiates STARTTLS, authenticates a and binds a
// resource chosen by the server. It returns the connection and the bound
// JID; on error the connection is closed.
func login(ctx context.Context, addr, domain string, a *account) (*xconn, string, error) {
	ctx, cancel := context.WithTimeout(ctx, negotiateTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, "", err
	}
	c := &xconn{raw: raw, conn: raw, br: bufio.NewReaderSize(raw, 512)}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	jid, err := c.negotiate(domain, a)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = raw.Close()
		return nil, "", fmt.Errorf("login %s@%s: %w", a.user, domain, err)
	}
	return c, jid, nil
}

func (c *xconn) negotiate(domain string, a *account) (string, error) {
	f, err := c.openStream(domain)
	if err != nil {
		return "", err
	}
	if f.child(nsTLS, "starttls") == nil {
		return "", errors.New("the server does not offer STARTTLS")
	}
	if err := c.send("<starttls xmlns='" + nsTLS + "'/>"); err != nil {
		return "", err
	}
	e, err := c.next()
	if err != nil {
		return "", err
	}
	if e.XMLName.Local != "proceed" {
		return "", fmt.Errorf("STARTTLS refused: %s", e.describe())
	}
	tc := tls.Client(c.raw, a.tls)
	if err := tc.Handshake(); err != nil {
		return "", fmt.Errorf("TLS: %w", err)
	}
	c.conn = tc
	c.br = bufio.NewReaderSize(tc, 4096)

	if f, err = c.openStream(domain); err != nil {
		return "", err
	}
	mech := "EXTERNAL"
	payload := "="
	if a.password != "" {
		mech = "PLAIN"
		payload = base64.StdEncoding.EncodeToString([]byte("\x00" + a.user + "\x00" + a.password))
	}
	if !offers(f, mech) {
		return "", fmt.Errorf("the server does not offer SASL %s", mech)
	}
	authSent := time.Now()
	if err := c.send("<auth xmlns='" + nsSASL + "' mechanism='" + mech + "'>" + payload + "</auth>"); err != nil {
		return "", err
	}
	if e, err = c.next(); err != nil {
		return "", err
	}
	c.sasl = time.Since(authSent)
	if e.XMLName.Local != "success" {
		return "", fmt.Errorf("SASL %s failed: %s", mech, e.describe())
	}

	if f, err = c.openStream(domain); err != nil {
		return "", err
	}
	if f.child(nsBind, "bind") == nil {
		return "", errors.New("the server does not offer resource binding")
	}
	if err := c.send("<iq type='set' id='bind'><bind xmlns='" + nsBind + "'/></iq>"); err != nil {
		return "", err
	}
	if e, err = c.next(); err != nil {
		return "", err
	}
	if e.XMLName.Local != "iq" || e.attr("id") != "bind" || e.attr("type") != "result" {
		return "", fmt.Errorf("bind failed: %s", e.describe())
	}
	var j *elem
	if b := e.child(nsBind, "bind"); b != nil {
		j = b.child(nsBind, "jid")
	}
	if j == nil {
		return "", errors.New("bind result without a JID")
	}
	bound := strings.TrimSpace(j.Text)
	if want := a.user + "@" + domain + "/"; !strings.HasPrefix(bound, want) {
		return "", fmt.Errorf("bound as %q, want %s<resource>", bound, want)
	}
	return bound, nil
}

func offers(features *elem, mech string) bool {
	ms := features.child(nsSASL, "mechanisms")
	if ms == nil {
		return false
	}
	for i := range ms.Children {
		if m := &ms.Children[i]; m.XMLName.Local == "mechanism" && strings.TrimSpace(m.Text) == mech {
			return true
		}
	}
	return false
}

// session is a bound connection kept open for IQs. A goroutine reads the
// server's stanzas and hands IQ replies to whoever waits for them.
type session struct {
	*xconn
	jid string

	mu      sync.Mutex
	pending map[string]func(*elem, error)
	err     error // why the read loop ended
	done    chan struct{}
}

func newSession(c *xconn, jid string) *session {
	_ = c.conn.SetDeadline(time.Time{})
	s := &session{xconn: c, jid: jid, pending: map[string]func(*elem, error){}, done: make(chan struct{})}
	go s.readLoop()
	return s
}

func (s *session) readLoop() {
	defer close(s.done)
	for {
		e, err := s.next()
		if err != nil {
			s.mu.Lock()
			s.err = err
			p := s.pending
			s.pending = nil
			s.mu.Unlock()
			for _, cb := range p {
				cb(nil, fmt.Errorf("session %s: %w", s.jid, err))
			}
			return
		}
		if e.XMLName.Local != "iq" {
			continue
		}
		switch typ := e.attr("type"); typ {
		case "get", "set":
			// Nothing here serves requests; answer as RFC 6120 wants.
			_ = s.send("<iq type='error' id='" + xmlEscape(e.attr("id")) + "' to='" + xmlEscape(e.attr("from")) +
				"'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
			continue
		}
		s.mu.Lock()
		cb := s.pending[e.attr("id")]
		delete(s.pending, e.attr("id"))
		s.mu.Unlock()
		if cb != nil {
			cb(e, nil)
		}
	}
}

// request sends the IQ built by stanza(id) and calls cb with the reply (or
// an error) from the read loop.
func (s *session) request(id, stanza string, cb func(*elem, error)) {
	s.mu.Lock()
	if s.pending == nil {
		err := s.err
		s.mu.Unlock()
		cb(nil, fmt.Errorf("session %s: %w", s.jid, err))
		return
	}
	s.pending[id] = cb
	s.mu.Unlock()
	if err := s.send(stanza); err != nil {
		s.mu.Lock()
		_, still := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if still {
			cb(nil, fmt.Errorf("session %s: %w", s.jid, err))
		}
	}
}

// call sends one IQ and waits for its reply; an error reply is an error.
func (s *session) call(ctx context.Context, id, stanza string) (*elem, error) {
	type answer struct {
		e   *elem
		err error
	}
	ch := make(chan answer, 1)
	s.request(id, stanza, func(e *elem, err error) { ch <- answer{e, err} })
	select {
	case a := <-ch:
		if a.err == nil && a.e.attr("type") != "result" {
			a.err = fmt.Errorf("IQ %s: %s", id, a.e.describe())
		}
		return a.e, a.err
	case <-ctx.Done():
		return nil, fmt.Errorf("IQ %s from %s: %w", id, s.jid, ctx.Err())
	}
}

// closeSession ends the stream and waits briefly for the read loop.
func (s *session) closeSession() {
	s.close()
	select {
	case <-s.done:
	case <-time.After(2 * time.Second):
	}
}

// Stanzas the benchmark sends.

func itemsIQ(id string) string {
	return "<iq type='get' id='" + id + "'><items xmlns='" + nsCerts + "'/></iq>"
}

func appendIQ(id, name string, der []byte) string {
	return "<iq type='set' id='" + id + "'><append xmlns='" + nsCerts + "'><name>" + xmlEscape(name) +
		"</name><x509cert>" + base64.StdEncoding.EncodeToString(der) + "</x509cert></append></iq>"
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
