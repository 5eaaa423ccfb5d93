package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/saslcert/saslcert/component"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
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

// logEnv: when set, the component's log is printed for passing tests too.
const logEnv = "SASLCERT_TEST_LOG"

// stack is a real Prosody (mod_saslcert + mod_delegation) with the saslcert
// component running in-process against it on a SQLite file.
type stack struct {
	S      *prosodytest.Server
	DBPath string
	// Comp is the component currently running (replaced by restartComponent).
	Comp *liveComponent

	mu        sync.Mutex
	passwords map[string]string // by localpart
	instances int
}

// newStack starts Prosody with the plugin and delegation and a component on
// a fresh database, and waits until the component is connected. Cleanups
// stop the component (first) and Prosody.
func newStack(t *testing.T) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("full-stack integration test (-short)")
	}
	s := prosodytest.Start(t, prosodytest.Options{Plugin: true, PluginTimeout: pluginTimeout})
	st := &stack{
		S:         s,
		DBPath:    filepath.Join(t.TempDir(), "saslcert.db"),
		passwords: map[string]string{},
	}
	st.Comp = st.startComponent(t)
	return st
}

// liveComponent is one running component.Component with its own store
// handle and log.
type liveComponent struct {
	*component.Component
	Log *logBuffer

	db     *sqlite.DB
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startComponent opens st.DBPath, builds the component as cmd/saslcert serve
// does (real handler, authorizer and clock), runs it and waits until it is
// connected. A cleanup stops it.
func (st *stack) startComponent(t *testing.T) *liveComponent {
	t.Helper()
	st.mu.Lock()
	st.instances++
	n := st.instances
	st.mu.Unlock()

	buf := new(logBuffer)
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() || os.Getenv(logEnv) != "" {
			t.Logf("component #%d log:\n%s", n, buf.String())
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	db, err := sqlite.Open(ctx, st.DBPath, sqlite.Options{Logger: log.With("part", "sqlite")})
	if err != nil {
		t.Fatalf("sqlite.Open(%s): %v", st.DBPath, err)
	}
	policy := sasl.DefaultPolicy()
	var comp *component.Component
	store := storage.Observe(db, func(ctx context.Context, account string) { comp.NotifyChanged(ctx, account) })
	certs := &xep0257.Handler{
		Store:   store,
		Policy:  policy,
		Logger:  log.With("part", "xep0257"),
		Timeout: requestTimeout,
	}
	auth := &sasl.Authorizer{Store: db, ClockSkew: policy.ClockSkew}
	comp, err = component.New(component.Config{
		Addr:           st.S.ComponentAddr,
		JID:            jid.MustParse(st.S.ComponentJID),
		Secret:         []byte(st.S.ComponentSecret),
		ServerDomains:  []string{st.S.Domain},
		RequestTimeout: requestTimeout,
		MinBackoff:     50 * time.Millisecond,
		MaxBackoff:     time.Second,
		CacheTTL:       time.Minute,
		Logger:         log.With("part", "component"),
	}, certs, auth)
	if err != nil {
		db.Close()
		t.Fatalf("component.New: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	lc := &liveComponent{Component: comp, Log: buf, db: db, cancel: stop, done: make(chan error, 1)}
	go func() { lc.done <- comp.Run(runCtx) }()
	t.Cleanup(func() {
		if err := lc.Stop(); err != nil {
			t.Errorf("component #%d: %v", n, err)
		}
	})
	lc.waitConnected(t)
	return lc
}

// Stop cancels Run, waits for it to return and closes the store. It is
// idempotent and returns Run's error.
func (lc *liveComponent) Stop() error {
	lc.once.Do(func() {
		lc.cancel()
		select {
		case err := <-lc.done:
			if err != nil {
				lc.err = fmt.Errorf("Run: %w", err)
			}
		case <-time.After(eventTimeout):
			lc.err = fmt.Errorf("Run did not return within %v of the cancellation", eventTimeout)
		}
		if err := lc.db.Close(); err != nil {
			lc.err = errors.Join(lc.err, fmt.Errorf("closing the store: %w", err))
		}
	})
	return lc.err
}

// waitConnected waits until the component has a stream to the server.
// mod_component fires component-authenticated (where mod_delegation marks
// the delegation active) in the same handler that sends the handshake
// reply, so delegated IQs reach the component from then on.
func (lc *liveComponent) waitConnected(t *testing.T) {
	t.Helper()
	select {
	case <-lc.Connected():
	case <-time.After(eventTimeout):
		t.Fatalf("the component did not connect within %v", eventTimeout)
	}
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ---------------------------------------------------------------------------
// Accounts and logins.

// account registers user (once) with a random password and returns its bare
// JID.
func (st *stack) account(t *testing.T, user string) jid.JID {
	t.Helper()
	st.mu.Lock()
	_, ok := st.passwords[user]
	st.mu.Unlock()
	if !ok {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		pw := hex.EncodeToString(b)
		st.S.Register(t, user, pw)
		st.mu.Lock()
		st.passwords[user] = pw
		st.mu.Unlock()
	}
	return jid.MustParse(user + "@" + st.S.Domain)
}

// password returns user's password (registering the account if needed).
func (st *stack) password(t *testing.T, user string) string {
	t.Helper()
	st.account(t, user)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.passwords[user]
}

// passwordLogin logs user in with SASL PLAIN (registering the account if
// needed); the server picks the resource. The session is closed in a
// cleanup.
func (st *stack) passwordLogin(t *testing.T, user string) *xmppclient.Client {
	t.Helper()
	pw := st.password(t, user)
	c, err := st.dial(t, xmppclient.Config{JID: jid.MustParse(user + "@" + st.S.Domain), Password: pw})
	if err != nil {
		t.Fatalf("password login as %s: %v", user, err)
	}
	return c
}

// certLogin logs in to account (a bare JID) with SASL EXTERNAL, presenting
// cert in TLS and sending authzid ("" sends "="). The server picks the
// resource: xmppclient cannot request one (see TestIntegrationBugXmppclientRequestsResource).
// A session that opens is closed in a cleanup.
func (st *stack) certLogin(t *testing.T, account string, cert *certtest.Cert, authzid string) (*xmppclient.Client, error) {
	t.Helper()
	return st.dial(t, xmppclient.Config{JID: jid.MustParse(account), Cert: tlsCert(cert), Authzid: authzid})
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

func (st *stack) dial(t *testing.T, cfg xmppclient.Config) (*xmppclient.Client, error) {
	t.Helper()
	cfg.Addr, cfg.RootCAs, cfg.Timeout = st.S.C2SAddr, st.S.RootCAs, stepTimeout
	c, err := xmppclient.Dial(t.Context(), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// ---------------------------------------------------------------------------
// Certificates.

// liveCert is a self-signed ECDSA certificate naming addrs (id-on-xmppAddr),
// valid from an hour ago for a day by the real clock (the component uses the
// real clock; certtest.Now is a fixed date).
func liveCert(t *testing.T, addrs ...string) *certtest.Cert {
	t.Helper()
	now := time.Now()
	return certtest.New(t, certtest.Options{
		XMPPAddrs: addrs,
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(24 * time.Hour),
	})
}

func tlsCert(c *certtest.Cert) *tls.Certificate {
	return &tls.Certificate{Certificate: [][]byte{c.DER}, PrivateKey: c.Key}
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

// items fetches c's certificates with no 'to' (delegated).
func items(t *testing.T, c *xmppclient.Client) []xep0257.Item {
	t.Helper()
	it, err := xep0257.Fetch(stepCtx(t), c.Session, jid.JID{})
	if err != nil {
		t.Fatalf("items: %v", err)
	}
	return it
}

// itemNames lists the names of items, in order.
func itemNames(it []xep0257.Item) []string {
	var names []string
	for _, i := range it {
		names = append(names, i.Name)
	}
	return names
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
