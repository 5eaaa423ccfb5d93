package prosody_test

import (
	"context"
	"crypto/sha256"
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
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/pluginproto"
)

const nsPlugin = pluginproto.NS

func fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(h[:])
}

func b64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

// ---------------------------------------------------------------------------
// A stand-in for the saslcert component.

type answer struct {
	JID, Resource, Fingerprint string // result
	ErrType, ErrCond, SASLCond string // error (ErrType != "")
	Text                       string
	NoCertManagement           bool // result: the grant's no-cert-management
	Silent                     bool
	Hold                       bool // do not answer now; the reply goes to fakeComponent.held
	// A grant normally carries fingerprint and no-cert-management='false':
	// NoFingerprint leaves fingerprint out; NCM, if set, is the value of
	// no-cert-management ("-": left out).
	NoFingerprint bool
	NCM           string
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

	mux     *mux.ServeMux
	mu      sync.Mutex
	probes  []probe           // stanzas whose first child is in nsProbe
	answers map[string]answer // by base64 DER
	lookups []lookupReq
	notices []notice
	held    chan string // replies of Hold answers, to send with release

	itemsPad   map[string]int // bytes of padding in the <items/> answer, by account (default 1800)
	itemsAsked map[string]int // forwarded <items/> requests seen, by account
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
	fc := &fakeComponent{t: t, s: s, sess: sess, conn: conn, done: make(chan error, 1), answers: map[string]answer{}, held: make(chan string, 16),
		itemsPad: map[string]int{}, itemsAsked: map[string]int{}}
	fc.mux = mux.New(component.NSAccept,
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: nsPlugin, Local: "lookup"}, fc.handleLookup),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: nsPlugin, Local: "session"}, fc.handleSession),
		mux.MessageFunc(stanza.NormalMessage, xml.Name{Space: nsPlugin, Local: "notices"}, fc.handleNotices),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: nsDelegation, Local: "delegation"}, fc.handleDelegation),
	)
	go func() { fc.done <- sess.Serve(xmpp.HandlerFunc(fc.serve)) }()
	t.Cleanup(fc.Close)
	return fc
}

// nsProbe marks the stanzas the fake component records (probe) instead of
// serving; it answers IQ gets and sets of it with an empty result.
const nsProbe = "urn:x-test:probe"

// probe is a recorded stanza: its name, attributes and top-level children.
type probe struct {
	Name     string
	Attr     map[string]string
	Children []probeChild
}

type probeChild struct {
	Name xml.Name
	Attr map[string]string
}

func attrMap(attrs []xml.Attr) map[string]string {
	m := make(map[string]string, len(attrs))
	for _, a := range attrs {
		if a.Name.Space == "" || a.Name.Space == "xmlns" {
			m[a.Name.Local] = a.Value
		}
	}
	return m
}

// tokenSlice replays tokens.
type tokenSlice []xml.Token

func (s *tokenSlice) Token() (xml.Token, error) {
	if len(*s) == 0 {
		return nil, io.EOF
	}
	t := (*s)[0]
	*s = (*s)[1:]
	return t, nil
}

// serve reads each stanza whole: one whose first child is in nsProbe is
// recorded (and an IQ get or set answered), any other is replayed to the
// mux.
func (fc *fakeComponent) serve(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var toks tokenSlice
	inner := xmlstream.Inner(t)
	for {
		tok, err := inner.Token()
		if tok != nil {
			toks = append(toks, xml.CopyToken(tok))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	p := probe{Name: start.Name.Local, Attr: attrMap(start.Attr)}
	depth := 0
	for _, tok := range toks {
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				p.Children = append(p.Children, probeChild{Name: tok.Name, Attr: attrMap(tok.Attr)})
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if len(p.Children) == 0 || p.Children[0].Name.Space != nsProbe {
		toks = append(toks, start.End())
		return fc.mux.HandleXMPP(struct {
			xml.TokenReader
			xmlstream.Encoder
		}{&toks, t}, start)
	}
	fc.mu.Lock()
	fc.probes = append(fc.probes, p)
	fc.mu.Unlock()
	if p.Name == "iq" && (p.Attr["type"] == "get" || p.Attr["type"] == "set") {
		reply := fmt.Sprintf(`<iq type='result' id='%s' from='%s' to='%s'/>`,
			stacktest.Escape(p.Attr["id"]), stacktest.Escape(p.Attr["to"]), stacktest.Escape(p.Attr["from"]))
		_, err := xmlstream.Copy(t, xml.NewDecoder(strings.NewReader(reply)))
		return err
	}
	return nil
}

// waitProbe waits for the next recorded stanza and takes it.
func (fc *fakeComponent) waitProbe(t testing.TB) probe {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		fc.mu.Lock()
		if len(fc.probes) > 0 {
			p := fc.probes[0]
			fc.probes = fc.probes[1:]
			fc.mu.Unlock()
			return p
		}
		fc.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no probe stanza reached the component")
	return probe{}
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

// handleLookup records a lookup (decoded strictly: a malformed one ends the
// session) and answers it as set for its certificate.
func (fc *fakeComponent) handleLookup(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var req lookupReq
	req.From, req.To = iq.From.String(), iq.To.String()
	for _, a := range start.Attr {
		if a.Name.Local == "authzid" {
			req.Authzid, req.HasAuthzid = a.Value, true
		}
	}
	var payload pluginproto.Lookup
	d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t))
	if err := d.Decode(&payload); err != nil {
		return err
	}
	if payload.Cert != nil {
		req.Cert = b64(payload.Cert)
	}
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
	reply := stanza.IQ{ID: iq.ID, From: iq.To, To: iq.From, Type: stanza.ResultIQ}
	var inner xml.TokenReader
	switch {
	case a.ErrType != "":
		reply.Type = stanza.ErrorIQ
		inner = pluginproto.LookupError{Type: stanza.ErrorType(a.ErrType), Condition: stanza.Condition(a.ErrCond), SASL: a.SASLCond, Text: a.Text}.TokenReader()
	case a.NCM != "":
		// A malformed grant the package cannot write: by hand.
		ncm := ""
		if a.NCM != "-" {
			ncm = fmt.Sprintf(` no-cert-management='%s'`, stacktest.Escape(a.NCM))
		}
		fp := ""
		if !a.NoFingerprint {
			fp = fmt.Sprintf(` fingerprint='%s'`, stacktest.Escape(a.Fingerprint))
		}
		inner = xml.NewDecoder(strings.NewReader(fmt.Sprintf(`<lookup xmlns='%s' jid='%s'%s%s/>`, nsPlugin, stacktest.Escape(a.JID), fp, ncm)))
	default:
		res := pluginproto.LookupResult{JID: a.JID, Resource: a.Resource, Fingerprint: a.Fingerprint, NoCertManagement: a.NoCertManagement}
		if a.NoFingerprint {
			res.Fingerprint = ""
		}
		inner = res.TokenReader()
	}
	text := xmlText(fc.t, reply.Wrap(inner))
	if a.Hold {
		fc.held <- text
		return nil
	}
	_, err := xmlstream.Copy(t, xml.NewDecoder(strings.NewReader(text)))
	return err
}

// xmlText is the XML of the tokens r.
func xmlText(t testing.TB, r xml.TokenReader) string {
	var b strings.Builder
	e := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(e, r); err != nil {
		t.Errorf("encoding: %v", err)
	}
	if err := e.Flush(); err != nil {
		t.Errorf("encoding: %v", err)
	}
	return b.String()
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

// handleNotices records a batch of session notices sent as a message
// (pluginproto.Notices).
func (fc *fakeComponent) handleNotices(msg stanza.Message, t xmlstream.TokenReadEncoder) error {
	for {
		tok, err := t.Token()
		if err != nil {
			return nil
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Space == nsPlugin && s.Name.Local == "session" {
			fc.record(msg.From.String(), s, t)
		}
	}
}

func (fc *fakeComponent) handleSession(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	fc.record(iq.From.String(), *start, t)
	_, err := xmlstream.Copy(t, iq.Result(nil))
	return err
}

// record decodes a <session/> notice (pluginproto.Session) whose start was
// read from r and records it; one that does not decode is recorded with
// the event "malformed: <why>", which no test expects.
func (fc *fakeComponent) record(from string, start xml.StartElement, r xml.TokenReader) {
	var s pluginproto.Session
	n := notice{From: from}
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(start), r)).Decode(&s); err != nil {
		n.Event = "malformed: " + err.Error()
	} else {
		n.Event, n.JID, n.Fingerprint = string(s.Event), s.JID, s.Fingerprint
	}
	fc.mu.Lock()
	fc.notices = append(fc.notices, n)
	fc.mu.Unlock()
}

// sendPayload sends an IQ of type typ with id and payload (a message of
// pluginproto) from the component to the server domain and returns the
// reply.
func (fc *fakeComponent) sendPayload(t testing.TB, typ stanza.IQType, id string, payload xmlstream.Marshaler) *stacktest.Node {
	t.Helper()
	iq := stanza.IQ{ID: id, Type: typ, From: jid.MustParse(fc.s.ComponentJID), To: jid.MustParse(fc.s.Domain)}
	return fc.sendIQ(t, xmlText(t, iq.Wrap(payload.TokenReader())))
}

// sendIQ sends raw IQ XML to the server and returns the reply.
func (fc *fakeComponent) sendIQ(t testing.TB, raw string) *stacktest.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := fc.sess.SendIQ(ctx, xml.NewDecoder(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("component IQ: %v", err)
	}
	defer resp.Close()
	var n stacktest.Node
	if err := xml.NewTokenDecoder(resp).Decode(&n); err != nil {
		t.Fatalf("component IQ reply: %v", err)
	}
	return &n
}

// ---------------------------------------------------------------------------
// A raw XML c2s client: full control over SASL elements and exact replies.

// rawTimeout bounds each step of rawClient's next and of dialing.
const rawTimeout = 10 * time.Second

// rawClient is a stacktest.RawClient (Send, Next, Auth, Mechanisms,
// Restart, Bind, WaitClosed, Conn) with short forms that fail the test
// instead of returning an error.
type rawClient struct {
	*stacktest.RawClient
	t testing.TB
}

// dialRaw connects, negotiates STARTTLS presenting cert (may be nil) and
// opens the stream (stacktest.DialRawServer); its features are in
// c.Features. A cleanup drops the connection.
func dialRaw(t testing.TB, s *prosodytest.Server, cert *certtest.Cert) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
	defer cancel()
	c, err := stacktest.DialRawServer(ctx, s, cert)
	if err != nil {
		t.Fatalf("raw c2s connection with STARTTLS: %v", err)
	}
	t.Cleanup(func() { c.Conn().Close() })
	return &rawClient{RawClient: c, t: t}
}

// dialPlain connects and opens the stream without TLS.
func dialPlain(t testing.TB, s *prosodytest.Server) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
	defer cancel()
	conn, err := s.DialC2S(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := stacktest.OpenRaw(conn, s.Domain)
	if err != nil {
		t.Fatalf("opening a stream without TLS: %v", err)
	}
	t.Cleanup(func() { c.Conn().Close() })
	return &rawClient{RawClient: c, t: t}
}

// open restarts the stream (after SASL <success/>) and reads the new
// features.
func (c *rawClient) open() {
	c.t.Helper()
	if err := c.Restart(); err != nil {
		c.t.Fatalf("restarting the stream: %v", err)
	}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if err := c.Send(s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads the next top-level element, waiting at most rawTimeout.
func (c *rawClient) next() *stacktest.Node {
	c.t.Helper()
	n, err := c.Next(rawTimeout)
	if err != nil {
		c.t.Fatalf("reading: %v", err)
	}
	return n
}

// bind binds resource (may be empty) after a stream restart and returns the
// bound JID.
func (c *rawClient) bind(resource string) string {
	c.t.Helper()
	c.open()
	j, err := c.Bind(resource)
	if err != nil {
		c.t.Fatalf("bind: %v", err)
	}
	return j
}

// expectStreamError waits up to d for a stream error and returns it; a
// stream that ends without one, or stays open, fails the test.
func (c *rawClient) expectStreamError(d time.Duration) *stacktest.Node {
	c.t.Helper()
	n, err := c.WaitClosed(d)
	if err != nil || n == nil {
		c.t.Fatalf("waiting for a stream error: got none (%v)", err)
	}
	return n
}

// authExternal sends <auth mechanism='EXTERNAL'>text</auth> (no text when
// text is "-") and returns the reply.
func (c *rawClient) authExternal(text string) *stacktest.Node {
	c.t.Helper()
	if text == "-" {
		text = ""
	}
	n, err := c.Auth("EXTERNAL", text)
	if err != nil {
		c.t.Fatalf("<auth mechanism='EXTERNAL'>: %v", err)
	}
	return n
}

// failure asserts n is a SASL failure with condition cond and returns its
// text.
func failure(t testing.TB, n *stacktest.Node, cond string) string {
	t.Helper()
	if n.XMLName.Local != "failure" {
		t.Fatalf("want <failure><%s/></failure>, got %s", cond, n)
	}
	got, text := n.Condition()
	if got != cond {
		t.Fatalf("want <failure><%s/></failure>, got %s", cond, n)
	}
	t.Logf("got %s", n)
	return text
}
