package stacktest

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

	"github.com/saslcert/saslcert/component"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/server"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/xep0257"
)

// DBFile is the database's name in the data directory (as saslcert serve
// names it).
const DBFile = "saslcert.db"

// LogEnv names an environment variable: when set, the component's log is
// printed for passing tests too (failing tests always get its tail).
const LogEnv = "SASLCERT_TEST_LOG"

// Defaults of Options.
const (
	DefaultPluginTimeout  = 10 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	// ConnectTimeout bounds waiting for the component to connect.
	ConnectTimeout = 60 * time.Second
	// ClientTimeout bounds one client step of Dial (a login) and Items.
	ClientTimeout = 30 * time.Second
	// PluginCacheTTL is the in-process component's Config.CacheTTL: saslcert
	// serve's default, so that every suite runs with the plugin's caches on.
	PluginCacheTTL = 60 * time.Second
	// AdminWatchInterval is how often the in-process component reads the
	// audit log for the admin commands' changes (saslcert serve's default).
	AdminWatchInterval = time.Second
)

// Options configure a stack. The zero value is Prosody for example.org with
// mod_saslcert (which forwards XEP-0257 requests itself), and the component in-process with the
// default limits and policy.
type Options struct {
	// Domain is the VirtualHost (default example.org); the component is
	// certs.<Domain>.
	Domain string
	// PluginTimeout is saslcert_timeout (default DefaultPluginTimeout).
	PluginTimeout time.Duration

	// Process runs the component as a child process "saslcert serve"
	// instead of in this process. The test binary must call Main.
	Process bool
	// DataDir is the data directory (default: a fresh temporary one). The
	// database is DataDir/DBFile.
	DataDir string

	// Limits, RequestTimeout, BusyTimeout and MaxInFlight are the
	// component's settings (zero: saslcert serve's defaults, except
	// RequestTimeout: DefaultRequestTimeout).
	Limits         xep0257.Limits
	RequestTimeout time.Duration
	BusyTimeout    time.Duration
	MaxInFlight    int
	// MinBackoff and MaxBackoff bound the in-process component's reconnect
	// delay (zero: the component's defaults, as in production). A child
	// process always uses the defaults.
	MinBackoff, MaxBackoff time.Duration
	// LogLevel of the component (default Info; Debug logs every stanza).
	LogLevel slog.Level

	// Wrapper, if set, is a command the child process is started under,
	// e.g. {"prlimit", "--fsize=1000000", "--"} (a child process only:
	// Options.Process or StartCommand; read at each start).
	Wrapper []string

	// Forge loads mod_stacktest_forge (see RawClient.Forge).
	Forge bool
	// Rogue adds a second component to Prosody, rogue.<Domain>, with its
	// own secret (Stack.RogueJID, Stack.RogueSecret): another component on
	// the same server, for DialRawComponent.
	Rogue bool
	// NoComponent: Start does not start the component (call
	// StartComponent).
	NoComponent bool
	// ExtraModules are added to Prosody's global modules_enabled.
	ExtraModules []string
	// WrapStore, if set, wraps the in-process component's store inside
	// its life-cycle owner (server.Deps.WrapStore; e.g. to make its writes
	// slow).
	WrapStore func(storage.Store) storage.Store
	// ExtraGlobal is added to Prosody's global section (Lua), e.g.
	// "allow_registration = true".
	ExtraGlobal string
	// StartServer starts the XMPP server (nil: StartProsody).
	StartServer StartServerFunc
	// ClientCAFile is ServerOptions.ClientCAFile (ejabberd's c2s_cafile).
	ClientCAFile string
	// ServeFlags are added to the child process's "saslcert serve" flags
	// (Options.Process), e.g. {"--admin-watch-interval", "5s"}.
	ServeFlags []string
	// HTTP is the in-process component's HTTP and metrics listeners
	// (server.Config.HTTP; e.g. MetricsListen "127.0.0.1:0"; read the
	// bound addresses with Component.Service().HTTPAddr/MetricsAddr).
	HTTP server.HTTPConfig
	// BeforeRun, if set, is called with each in-process service after
	// server.New and before Run (e.g. to AddRoutes).
	BeforeRun func(*server.Service)
}

// Stack is a running Prosody with the saslcert component.
type Stack struct {
	// S is the XMPP server (Options.StartServer; Prosody by default).
	S            Server
	Domain       string
	ComponentJID string
	DataDir      string
	DBPath       string
	Opts         Options
	// RogueJID and RogueSecret are the second component's (Options.Rogue).
	RogueJID, RogueSecret string

	secretFile string

	mu        sync.Mutex
	comp      *Component
	instances int
	passwords map[string]string
}

// Start starts Prosody and (unless opts.NoComponent) the component, and
// waits until the component is connected. Cleanups stop both, the
// component first.
func Start(tb testing.TB, opts Options) *Stack {
	tb.Helper()
	if opts.Domain == "" {
		opts.Domain = "example.org"
	}
	if opts.PluginTimeout == 0 {
		opts.PluginTimeout = DefaultPluginTimeout
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	so := ServerOptions{
		Domain:        opts.Domain,
		PluginTimeout: opts.PluginTimeout,
		ExtraModules:  opts.ExtraModules,
		ExtraGlobal:   opts.ExtraGlobal,
		Forge:         opts.Forge,
		ClientCAFile:  opts.ClientCAFile,
	}
	if opts.Rogue {
		so.RogueJID, so.RogueSecret = "rogue."+opts.Domain, randomHex(tb, 16)
	}
	startServer := opts.StartServer
	if startServer == nil {
		startServer = StartProsody
	}
	s := startServer(tb, so)
	st := &Stack{
		S:            s,
		Domain:       s.Domain(),
		ComponentJID: s.ComponentJID(),
		DataDir:      opts.DataDir,
		Opts:         opts,
		RogueJID:     so.RogueJID,
		RogueSecret:  so.RogueSecret,
		passwords:    map[string]string{},
	}
	if st.DataDir == "" {
		st.DataDir = tb.TempDir()
	}
	st.DBPath = filepath.Join(st.DataDir, DBFile)
	// The secret file lives next to Prosody's files, not in the data
	// directory (which may be a tiny tmpfs).
	st.secretFile = filepath.Join(tb.TempDir(), "component.secret")
	if err := os.WriteFile(st.secretFile, []byte(s.ComponentSecret()+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	if !opts.NoComponent {
		st.StartComponent(tb)
	}
	return st
}

// Comp returns the component started last (nil before the first).
func (st *Stack) Comp() *Component {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.comp
}

// SecretFile is the path of a 0600 file holding the component secret on its
// first line, as saslcert serve's --secret-file (or secret-file in a config
// file) reads it. It is outside the data directory and lives as long as the
// test.
func (st *Stack) SecretFile() string { return st.secretFile }

// StartComponent starts a component on the stack's database (in-process, or
// with Options.Process a child "saslcert serve" with ServeArgs and the secret
// in SASLCERT_SECRET_FILE) and waits until it is connected. A cleanup stops
// it.
func (st *Stack) StartComponent(tb testing.TB) *Component {
	tb.Helper()
	if st.Opts.Process {
		return st.startComponent(tb, func(c *Component) error {
			return c.startProcess(tb, st.ServeArgs(), "SASLCERT_SECRET_FILE="+st.secretFile)
		})
	}
	return st.startComponent(tb, (*Component).startInProcess)
}

// StartCommand starts a child process "saslcert args..." (the binary of
// Binary, under Options.Wrapper if set) as the stack's next component,
// whatever Options.Process says, and waits up to ConnectTimeout until its log
// says it connected to Prosody; a child that exits first or does not connect
// in time fails tb. args (or a config file they name) must say everything:
// the stack passes no flags. The child's environment is this process's
// without any SASLCERT_* variable, plus env ("NAME=value"). As with every
// component, a cleanup stops it (SIGTERM, SIGKILL after 30 s; an unclean exit
// fails tb) and logs the tail of its output if tb failed or LogEnv is set;
// Component.Log is its output so far. The test binary must call Main.
func (st *Stack) StartCommand(tb testing.TB, args []string, env ...string) *Component {
	tb.Helper()
	return st.startComponent(tb, func(c *Component) error { return c.startProcess(tb, args, env...) })
}

// startComponent registers the next component, starts it with start and
// waits until it is connected.
func (st *Stack) startComponent(tb testing.TB, start func(*Component) error) *Component {
	tb.Helper()
	st.mu.Lock()
	st.instances++
	c := &Component{N: st.instances, st: st, log: new(LogBuffer)}
	st.comp = c
	st.mu.Unlock()
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Errorf("component #%d: %v", c.N, err)
		}
		if tb.Failed() || os.Getenv(LogEnv) != "" {
			tb.Logf("component #%d log (tail):\n%s", c.N, tail(c.Log(), 32<<10))
		}
	})
	if err := start(c); err != nil {
		tb.Fatalf("starting component #%d: %v", c.N, err)
	}
	if err := c.WaitConnects(1, ConnectTimeout); err != nil {
		tb.Fatalf("component #%d: %v\nlog:\n%s", c.N, err, tail(c.Log(), 16<<10))
	}
	return c
}

// Component is one run of the saslcert component, in-process or a child
// process.
type Component struct {
	N   int // 1 for the first component of the stack, 2 for the next, ...
	st  *Stack
	log *LogBuffer

	// in-process
	svc    *server.Service
	comp   *component.Component
	db     *sqlite.DB
	cancel context.CancelFunc
	done   chan error

	// child process
	proc *process

	stopOnce sync.Once
	stopErr  error
}

func (c *Component) startInProcess() error {
	st := c.st
	o := st.Opts
	log := slog.New(slog.NewTextHandler(c.log, &slog.HandlerOptions{Level: o.LogLevel}))
	ctx, cancel := context.WithTimeout(context.Background(), ConnectTimeout)
	defer cancel()
	db, err := sqlite.Open(ctx, st.DBPath, sqlite.Options{Logger: log.With("part", "sqlite"), BusyTimeout: o.BusyTimeout})
	if err != nil {
		return fmt.Errorf("sqlite.Open(%s): %w", st.DBPath, err)
	}
	// Built as saslcert serve builds it: every write tells the plugin which
	// account to forget from its caches before it is acknowledged, and the
	// admin commands' changes reach the plugin through the audit watch.
	svc, err := server.New(server.Config{
		Component: component.Config{
			Addr:           st.S.ComponentAddr(),
			JID:            jid.MustParse(st.ComponentJID),
			Secret:         []byte(st.S.ComponentSecret()),
			ServerDomains:  []string{st.Domain},
			RequestTimeout: o.RequestTimeout,
			MaxInFlight:    o.MaxInFlight,
			MinBackoff:     o.MinBackoff,
			MaxBackoff:     o.MaxBackoff,
			CacheTTL:       PluginCacheTTL,
		},
		Limits:     o.Limits,
		AdminWatch: AdminWatchInterval,
		HTTP:       o.HTTP,
	}, server.Deps{Store: db, Logger: log, WrapStore: o.WrapStore})
	if err != nil {
		db.Close()
		return err
	}
	if o.BeforeRun != nil {
		o.BeforeRun(svc)
	}
	runCtx, stop := context.WithCancel(context.Background())
	c.svc, c.comp, c.db, c.cancel, c.done = svc, svc.Component, db, stop, make(chan error, 1)
	// Run returns once the component and its jobs (the audit watch) have
	// stopped.
	go func() { c.done <- svc.Run(runCtx) }()
	return nil
}

// InProcess returns the in-process component (nil for a child process).
func (c *Component) InProcess() *component.Component { return c.comp }

// Service returns the in-process service (nil for a child process).
func (c *Component) Service() *server.Service { return c.svc }

// Log returns the component's log so far (a child's standard error and
// output).
func (c *Component) Log() string {
	if c.proc != nil {
		b, _ := os.ReadFile(c.proc.logFile)
		return string(b)
	}
	return c.log.String()
}

// connectedMsg is the log message of a completed handshake.
const connectedMsg = `msg="connected to the server"`

// Connects is how many times the component completed the handshake with the
// server.
func (c *Component) Connects() int {
	if c.proc != nil {
		return strings.Count(c.Log(), connectedMsg)
	}
	return int(c.comp.Connects())
}

// WaitConnects waits until Connects() >= n, at most timeout.
func (c *Component) WaitConnects(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for c.Connects() < n {
		if c.Exited() {
			return fmt.Errorf("the component exited before connecting (%d of %d connects)", c.Connects(), n)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the component did not connect within %v (%d of %d connects)", timeout, c.Connects(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Exited reports whether the component has stopped (Run returned, or the
// process exited).
func (c *Component) Exited() bool {
	if c.proc != nil {
		select {
		case <-c.proc.exited:
			return true
		default:
			return false
		}
	}
	select {
	case err := <-c.done:
		c.done <- err
		return true
	default:
		return false
	}
}

// Pid is the child's process id (0 in-process).
func (c *Component) Pid() int {
	if c.proc != nil {
		return c.proc.cmd.Process.Pid
	}
	return 0
}

// Stop stops the component gracefully (cancels Run, or SIGTERM to the
// child) and waits; it is idempotent and returns what went wrong.
func (c *Component) Stop() error {
	c.stopOnce.Do(func() {
		if c.proc != nil {
			c.stopErr = c.proc.stop(30 * time.Second)
			return
		}
		if c.cancel == nil {
			return
		}
		c.cancel()
		select {
		case err := <-c.done:
			c.done <- err
			if err != nil {
				c.stopErr = fmt.Errorf("component.Run: %w", err)
			}
		case <-time.After(ConnectTimeout):
			c.stopErr = fmt.Errorf("component.Run did not return within %v of the cancellation", ConnectTimeout)
		}
		if err := c.db.Close(); err != nil {
			c.stopErr = errors.Join(c.stopErr, fmt.Errorf("closing the store: %w", err))
		}
	})
	return c.stopErr
}

// Kill sends SIGKILL to the child process and waits for it to die. Only for
// a child process (Options.Process or StartCommand).
func (c *Component) Kill(tb testing.TB) {
	tb.Helper()
	if c.proc == nil {
		tb.Fatal("stacktest: Kill needs a child process (Options.Process or StartCommand)")
	}
	c.stopOnce.Do(func() { c.stopErr = c.proc.kill() })
}

// RestartProsody restarts Prosody (same configuration, ports, accounts and
// data; see prosodytest.Server.Restart, which fails tb if Prosody does not
// come back) and then waits up to ConnectTimeout for the running component,
// if any, to reconnect to it by itself. The error says it did not; the
// caller decides whether that fails the test.
func (st *Stack) RestartProsody(tb testing.TB) error {
	tb.Helper()
	c := st.Comp()
	var n int
	if c != nil {
		n = c.Connects()
	}
	st.S.Restart(tb)
	if c == nil {
		return nil
	}
	return c.WaitConnects(n+1, ConnectTimeout)
}

// ---------------------------------------------------------------------------
// Accounts and logins.

// JID returns user@domain.
func (st *Stack) JID(user string) jid.JID { return jid.MustParse(user + "@" + st.Domain) }

// Register creates the account user (once) with a random password and
// returns its bare JID.
func (st *Stack) Register(tb testing.TB, user string) jid.JID {
	tb.Helper()
	st.mu.Lock()
	_, ok := st.passwords[user]
	st.mu.Unlock()
	if !ok {
		pw := randomHex(tb, 12)
		st.S.Register(tb, user, pw)
		st.mu.Lock()
		st.passwords[user] = pw
		st.mu.Unlock()
	}
	return st.JID(user)
}

// RegisterMany registers users, parallel at a time.
func (st *Stack) RegisterMany(tb testing.TB, users []string, parallel int) {
	tb.Helper()
	if parallel < 1 {
		parallel = 1
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, u := range users {
		st.mu.Lock()
		_, ok := st.passwords[u]
		st.mu.Unlock()
		if ok {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pw := mustRandomHex(12)
			out, err := st.S.AddAccount(u, pw)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("register %s: %v: %s", u, err, out))
				return
			}
			st.mu.Lock()
			st.passwords[u] = pw
			st.mu.Unlock()
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		tb.Fatal(errors.Join(errs...))
	}
}

// Password returns user's password ("" if not registered here).
func (st *Stack) Password(user string) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.passwords[user]
}

// Dial fills in cfg's address, trust and (if zero) timeout and dials.
func (st *Stack) Dial(ctx context.Context, cfg xmppclient.Config) (*xmppclient.Client, error) {
	cfg.Addr = st.S.C2SAddr()
	cfg.RootCAs = st.S.RootCAs()
	if cfg.Timeout == 0 {
		cfg.Timeout = ClientTimeout
	}
	return xmppclient.Dial(ctx, cfg)
}

// LoginPassword logs user in with SASL PLAIN.
func (st *Stack) LoginPassword(ctx context.Context, user string) (*xmppclient.Client, error) {
	pw := st.Password(user)
	if pw == "" {
		return nil, fmt.Errorf("stacktest: %s is not registered", user)
	}
	return st.Dial(ctx, xmppclient.Config{JID: st.JID(user), Password: pw})
}

// LoginCert logs in to user's account with SASL EXTERNAL, presenting c and
// sending authzid ("" sends "=").
func (st *Stack) LoginCert(ctx context.Context, user string, c *certtest.Cert, authzid string) (*xmppclient.Client, error) {
	return st.Dial(ctx, xmppclient.Config{JID: st.JID(user), Cert: TLSCert(c), Authzid: authzid})
}

// Items lists the certificates of c's account with an XEP-0257 <items/> that
// has no 'to' (so that the server delegates it, as unmodified clients send
// it), waiting at most ClientTimeout; any error fails tb.
func Items(tb testing.TB, c *xmppclient.Client) []xep0257.Item {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), ClientTimeout)
	defer cancel()
	it, err := xep0257.Fetch(ctx, c.Session, jid.JID{})
	if err != nil {
		tb.Fatalf("stacktest: items of %s: %v", c.LocalAddr(), err)
	}
	return it
}

// ItemNames lists the names of it, in order (nil for none).
func ItemNames(it []xep0257.Item) []string {
	var names []string
	for _, i := range it {
		names = append(names, i.Name)
	}
	return names
}

// TLSCert is c as a TLS client certificate.
func TLSCert(c *certtest.Cert) *tls.Certificate {
	return &tls.Certificate{Certificate: [][]byte{c.DER}, PrivateKey: c.Key}
}

// NewCert makes a certificate as certtest.New does, but valid from an hour
// before to 30 days after the real clock unless o says otherwise (certtest's
// default is its fixed test clock, which a live stack does not use).
func NewCert(tb testing.TB, o certtest.Options) *certtest.Cert {
	tb.Helper()
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(30 * 24 * time.Hour)
	}
	return certtest.New(tb, o)
}

// ---------------------------------------------------------------------------

func randomHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// mustRandomHex is randomHex for goroutines (crypto/rand does not fail on
// Linux).
func mustRandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// LogBuffer is a log sink that many goroutines may write to at once (an
// slog handler's output, a child's standard output and error) while another
// reads it. Each Write is appended whole; String returns everything written
// so far. The zero value is ready to use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns a copy of everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "...\n" + s
}
