package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/ejabberdtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/xep0257"
)

// Deadlines. They are generous on purpose: the suite must pass on a loaded
// 2-core machine. They bound waits for events; nothing asserts on timing.
const (
	// stepTimeout bounds one client operation (a login, one IQ round trip).
	stepTimeout = 30 * time.Second
	// pluginTimeout is saslcert_timeout: how long the plugin waits for a
	// lookup answer before it sends temporary-auth-failure.
	pluginTimeout = 15 * time.Second
	// requestTimeout is the component's bound on one request.
	requestTimeout = 15 * time.Second
	// eventTimeout bounds waiting for an asynchronous event (a connect, a
	// closed session, a notice reaching the component).
	eventTimeout = 60 * time.Second
)

// stack is a stacktest.Stack (Prosody with mod_saslcert, or ejabberd with
// mod_saslcert, the component in-process on a SQLite file) with the e2e
// suite's logins.
type stack struct {
	*stacktest.Stack
	// ca issues the certificates of liveCert on a server that verifies
	// client certificates against its own CAs (ejabberd's c2s_cafile); nil
	// on Prosody, where they are self-signed as users upload them.
	ca *certtest.Cert
}

// server is an XMPP server the suite runs on.
type server struct {
	name  string
	start stacktest.StartServerFunc
}

// servers are the servers a case runs on: Prosody (stacktest's default)
// and ejabberd 23.01 (skipped when it is not installed, unless
// SASLCERT_REQUIRE_EJABBERD is set).
func servers() []server {
	return []server{{"prosody", stacktest.StartProsody}, {"ejabberd", stacktest.StartEjabberd}}
}

// onServers runs body as one subtest per server (named after it), each on
// its own stack.
func onServers(t *testing.T, body func(t *testing.T, st *stack)) {
	t.Helper()
	for _, srv := range servers() {
		t.Run(srv.name, func(t *testing.T) { body(t, newStackOn(t, srv)) })
	}
}

// newStack starts the stack on Prosody (newStackOn).
func newStack(t *testing.T) *stack {
	t.Helper()
	return newStackOn(t, servers()[0])
}

// newStackOn starts the stack on srv with a fresh database and waits until
// the component is connected; cleanups stop the component (first) and the
// server. The component logs at debug level (TestIntegrationPluginCache
// counts its debug lines) and reconnects quickly (50 ms to 1 s between
// attempts). On ejabberd, c2s_cafile is a test CA of the stack's own
// (stack.ca): ejabberd refuses a client certificate that does not chain to
// it before mod_saslcert is asked, so self-signed uploads cannot log in
// there.
func newStackOn(t *testing.T, srv server) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("full-stack integration test (-short)")
	}
	o := stacktest.Options{
		PluginTimeout:  pluginTimeout,
		RequestTimeout: requestTimeout,
		LogLevel:       slog.LevelDebug,
		MinBackoff:     50 * time.Millisecond,
		MaxBackoff:     time.Second,
		StartServer:    srv.start,
	}
	var ca *certtest.Cert
	if srv.name == "ejabberd" {
		ejabberdtest.Skip(t)
		ca = certtest.NewCA(t, "e2e test CA")
		o.ClientCAFile = filepath.Join(t.TempDir(), "c2s_cafile.pem")
		if err := os.WriteFile(o.ClientCAFile, ca.CertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &stack{Stack: stacktest.Start(t, o), ca: ca}
}

// onEjabberd reports whether st runs on ejabberd (where a case's
// server-side answer differs, the case says why).
func (st *stack) onEjabberd() bool {
	_, ok := stacktest.Ejabberd(st.S)
	return ok
}

// passwordLogin logs user in with SASL PLAIN (registering the account if
// needed); the server picks the resource. The session is closed in a
// cleanup.
func (st *stack) passwordLogin(t *testing.T, user string) *xmppclient.Client {
	t.Helper()
	st.Register(t, user)
	c, err := st.LoginPassword(t.Context(), user)
	if err != nil {
		t.Fatalf("password login as %s: %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// certLogin logs in to account (a bare JID) with SASL EXTERNAL, presenting
// cert in TLS and sending authzid ("" sends "="). The server picks the
// resource: xmppclient cannot request one. A session that opens is closed in
// a cleanup.
func (st *stack) certLogin(t *testing.T, account string, cert *certtest.Cert, authzid string) (*xmppclient.Client, error) {
	t.Helper()
	c, err := st.Dial(t.Context(), xmppclient.Config{JID: jid.MustParse(account), Cert: stacktest.TLSCert(cert), Authzid: authzid})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// mustCertLogin is certLogin that fails the test on error.
func (st *stack) mustCertLogin(t *testing.T, account string, cert *certtest.Cert, authzid string) *xmppclient.Client {
	t.Helper()
	c, err := st.certLogin(t, account, cert, authzid)
	if err != nil {
		t.Fatalf("EXTERNAL login to %s (authzid %q): %v", account, authzid, err)
	}
	return c
}

// dialRaw opens a stacktest.RawClient on st's c2s port, presenting cert in
// STARTTLS (nil: no client certificate). A cleanup closes it.
func (st *stack) dialRaw(t *testing.T, cert *certtest.Cert) *stacktest.RawClient {
	t.Helper()
	c, err := st.DialRaw(stepCtx(t), cert)
	if err != nil {
		t.Fatalf("raw c2s connection: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// liveCert is a self-signed ECDSA certificate naming addrs (id-on-xmppAddr),
// valid from an hour ago for a day by the real clock (the component uses the
// real clock; certtest.Now is a fixed date).
func liveCert(t *testing.T, addrs ...string) *certtest.Cert {
	t.Helper()
	return stacktest.NewCert(t, certtest.Options{XMPPAddrs: addrs, NotAfter: time.Now().Add(24 * time.Hour)})
}

// liveCert is the package's liveCert, issued by st.ca where the server
// needs a chain to log in (ejabberd) and self-signed elsewhere.
func (st *stack) liveCert(t *testing.T, addrs ...string) *certtest.Cert {
	t.Helper()
	if st.ca == nil {
		return liveCert(t, addrs...)
	}
	return stacktest.NewCert(t, certtest.Options{XMPPAddrs: addrs, NotAfter: time.Now().Add(24 * time.Hour), Parent: st.ca})
}

// ---------------------------------------------------------------------------
// Assertions.

// stepCtx is a context for one step of t.
func stepCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), stepTimeout)
	t.Cleanup(cancel)
	return c
}

// wantStanzaError asserts err is a stanza error of type typ and condition
// cond whose text contains each of texts, and returns it.
func wantStanzaError(t *testing.T, err error, typ stanza.ErrorType, cond stanza.Condition, texts ...string) stanza.Error {
	t.Helper()
	var se stanza.Error
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a stanza error %s/%s", err, typ, cond)
	}
	if se.Condition != cond || se.Type != typ {
		t.Fatalf("got stanza error %s/%s (%q), want %s/%s", se.Type, se.Condition, se.Text[""], typ, cond)
	}
	for _, want := range texts {
		if !strings.Contains(se.Text[""], want) {
			t.Errorf("stanza error %s text %q does not contain %q", cond, se.Text[""], want)
		}
	}
	t.Logf("got stanza error <%s type='%s'/> %q", se.Condition, se.Type, se.Text[""])
	return se
}

// wantAuthFailure asserts that a login failed with the SASL condition cond
// and returns the failure.
func wantAuthFailure(t *testing.T, c *xmppclient.Client, err error, cond string) *xmppclient.AuthError {
	t.Helper()
	if err == nil {
		t.Fatalf("login succeeded as %s, want <failure><%s/></failure>", c.LocalAddr(), cond)
	}
	var ae *xmppclient.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("login failed with %v, want <failure><%s/></failure>", err, cond)
	}
	if ae.Condition != cond {
		t.Fatalf("got <failure><%s/></failure> (%q), want <%s/>", ae.Condition, ae.Text, cond)
	}
	t.Logf("got SASL <failure><%s/></failure> %q", ae.Condition, ae.Text)
	return ae
}

// wantBound asserts the session is bound to want (a full JID), or to want's
// bare JID with any resource if want is bare.
func wantBound(t *testing.T, c *xmppclient.Client, want string) {
	t.Helper()
	got := c.LocalAddr()
	w := jid.MustParse(want)
	if w.Resourcepart() == "" {
		if !got.Bare().Equal(w) {
			t.Fatalf("bound as %s, want %s/…", got, w)
		}
	} else if !got.Equal(w) {
		t.Fatalf("bound as %s, want %s", got, w)
	}
	t.Logf("bound as %s", got)
}

// streamClosed waits until the server ends c's stream and returns how
// (Serve's error).
func streamClosed(t *testing.T, c *xmppclient.Client) error {
	t.Helper()
	select {
	case err := <-c.Done():
		return err
	case <-time.After(eventTimeout):
		t.Fatalf("the session %s is still open after %v", c.LocalAddr(), eventTimeout)
		return nil
	}
}

// wantStreamError asserts err (how a stream ended) is the stream error cond
// with a text containing text.
func wantStreamError(t *testing.T, err error, cond, text string) {
	t.Helper()
	var se stream.Error
	if !errors.As(err, &se) {
		t.Fatalf("the stream ended with %v, want the stream error <%s/>", err, cond)
	}
	var texts []string
	for _, tx := range se.Text {
		texts = append(texts, tx.Value)
	}
	all := strings.Join(texts, " ")
	if se.Err != cond || !strings.Contains(all, text) {
		t.Fatalf("got the stream error <%s/> %q, want <%s/> %q", se.Err, all, cond, text)
	}
	t.Logf("got the stream error <%s/> %q", se.Err, all)
}

// waitFor polls cond (every 20 ms) until it holds or eventTimeout passes. It
// is for state that has no event to wait on (a session notice reaching the
// component's registry).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", eventTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Raw client assertions.

// rawAuth sends <auth mechanism='mech'>body</auth> (an empty element when
// body is "") and returns the server's answer. No answer within
// stacktest.RawTimeout (the stream hangs) fails the test.
func rawAuth(t *testing.T, c *stacktest.RawClient, mech, body string) *stacktest.Node {
	t.Helper()
	n, err := c.Auth(mech, body)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer from the server within %v (the stream hangs)", stacktest.RawTimeout)
		}
		t.Fatalf("<auth mechanism='%s'>: %v", mech, err)
	}
	return n
}

// rawExternal sends <auth mechanism='EXTERNAL'>initial</auth>, asserts the
// answer is <success/> and restarts the stream, ready for Bind.
func rawExternal(t *testing.T, c *stacktest.RawClient, initial string) {
	t.Helper()
	if n := rawAuth(t, c, "EXTERNAL", initial); n.Outcome() != "success" {
		t.Fatalf("<auth mechanism='EXTERNAL'>%s</auth>: got %s, want <success/>", initial, n)
	}
	if err := c.Restart(); err != nil {
		t.Fatalf("restarting the stream after <success/>: %v", err)
	}
}

// rawBind binds resource ("" lets the server pick), sending then (raw XML,
// may be "") in the same write, and returns the bound JID.
func rawBind(t *testing.T, c *stacktest.RawClient, resource, then string) string {
	t.Helper()
	got, err := c.BindThen(resource, then)
	if err != nil {
		t.Fatalf("bind %q: %v", resource, err)
	}
	return got
}

// wantSASLFailure asserts n is <failure><cond/></failure> and returns its
// text.
func wantSASLFailure(t *testing.T, n *stacktest.Node, cond string) string {
	t.Helper()
	want := "failure " + cond
	if out := n.Outcome(); n.XMLName.Space != stacktest.NSSASL || (out != want && !strings.HasPrefix(out, want+": ")) {
		t.Fatalf("want <failure><%s/></failure>, got %s", cond, n)
	}
	t.Logf("got %s", n)
	if tx := n.Child("", "text"); tx != nil {
		return tx.Text
	}
	return ""
}

// mustAppend uploads cert as name through c's session with an XEP-0257
// <append/> addressed to to (the zero JID: no 'to', as unmodified clients
// send it) and fails the test on any error.
func (st *stack) mustAppend(t *testing.T, c *xmppclient.Client, to jid.JID, name string, cert *certtest.Cert, noCertManagement bool) {
	t.Helper()
	if err := xep0257.AppendCert(stepCtx(t), c.Session, to, name, cert.DER, noCertManagement); err != nil {
		t.Fatalf("append %q to %q: %v", name, to, err)
	}
}
