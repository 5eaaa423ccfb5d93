// Package ejabberdtest runs a real ejabberd 23.01 (Debian's package) for
// tests: its own configuration, Mnesia spool, logs, Erlang node name and
// cookie in a temporary directory, every listener on 127.0.0.1, and its own
// epmd on a free loopback port (started and stopped by PID; the machine's
// epmd, if any, is never used). mod_saslcert is compiled from
// plugins/ejabberd by scripts/build-ejabberd-module.sh into the directory
// ejabberd loads contributed modules from ($CONTRIB_MODULES_PATH), as an
// admin installs it, and configured with plugins/ejabberd.Config, the text
// `saslcert ejabberd config` prints.
//
// Tests skip when ejabberd or erlc is missing, unless RequireEnv is set.
package ejabberdtest

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/prosodyconf"
	"github.com/saslcert/saslcert/plugins/ejabberd"
)

// RequireEnv names an environment variable: when set, a missing ejabberd
// fails the test instead of skipping it.
const RequireEnv = "SASLCERT_REQUIRE_EJABBERD"

// LogEnv: when set, the cleanup logs the tail of ejabberd's log for passing
// tests too.
const LogEnv = "SASLCERT_EJABBERD_LOG"

// Programs and paths of Debian's packages.
var (
	ErlBin   = "/usr/bin/erl"
	EpmdBin  = "/usr/bin/epmd"
	ErlcBin  = "/usr/bin/erlc"
	ErlLibs  = "/usr/lib/x86_64-linux-gnu" // where ejabberd-23.01-1 lives (ERL_LIBS, as ejabberdctl sets it)
	Ejabberd = "/usr/lib/x86_64-linux-gnu/ejabberd-23.01-1"
)

// StartTimeout bounds how long Start waits for ejabberd to listen.
var StartTimeout = 60 * time.Second

// Options configure a test server. The zero value serves example.org with
// the component certs.example.org, mod_saslcert and mod_delegation.
type Options struct {
	Domain          string // default "example.org"
	ComponentJID    string // default "certs.<Domain>"
	ComponentSecret string // default random
	// CAFile is c2s_cafile (default: the server's own self-signed
	// certificate, which signs no client certificate).
	CAFile string
	// Timeout is mod_saslcert's timeout (0: the module's default).
	Timeout time.Duration
	// NoModule runs ejabberd's own EXTERNAL (chain to c2s_cafile only)
	// without mod_saslcert and mod_delegation: the benchmark's peer.
	NoModule bool
	// NoCache turns mod_saslcert's cache off.
	NoCache bool
	// NoPrefetch turns mod_saslcert's prefetch off.
	NoPrefetch bool
	// LookupBurst and LookupRate are mod_saslcert's per-address lookup
	// limit (0: the module's defaults).
	LookupBurst int
	LookupRate  float64
	// NoticeDelay is mod_saslcert's notice_delay (0: the module's default).
	NoticeDelay time.Duration
	// RogueJID and RogueSecret, if set, are a second component.
	RogueJID, RogueSecret string
	// LogLevel is ejabberd's loglevel (default "info").
	LogLevel string
	// ExtraHosts are served next to Domain (mod_saslcert runs on each).
	ExtraHosts []string
	// ModulesDir is the contributed modules directory holding the built
	// module (Build; Start fills it in with BuildModule).
	ModulesDir string
}

// Server is a running (or stopped) test ejabberd.
type Server struct {
	Dir, Domain, ComponentJID, ComponentSecret string
	C2SAddr, ComponentAddr                     string
	// RogueAddr is the second component's listener (Options.RogueJID).
	RogueAddr string
	// Cert is the server's TLS certificate; RootCAs trusts it.
	Cert    *x509.Certificate
	RootCAs *x509.CertPool
	// ConfigFile is the generated ejabberd.yml; LogFile ejabberd's log.
	ConfigFile, LogFile, ConsoleFile string
	// Node is the Erlang node name, Cookie its cookie.
	Node, Cookie string

	epmdAddr string
	contrib  string // the contributed modules directory (BuildModule's), "" without the module

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	epmd     *exec.Cmd
	epmdDone chan struct{}
}

// Installed reports whether ejabberd, erl, epmd and erlc are present.
func Installed() bool {
	for _, p := range []string{ErlBin, EpmdBin, ErlcBin, Ejabberd + "/include/logger.hrl"} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// Skip skips tb (or fails it with RequireEnv set) if ejabberd is missing.
func Skip(tb testing.TB) {
	tb.Helper()
	if Installed() {
		return
	}
	if os.Getenv(RequireEnv) == "" {
		tb.Skipf("ejabberd 23.01 or erlang-dev is not installed (%s); set %s to make this a failure", Ejabberd, RequireEnv)
	}
	tb.Fatalf("ejabberd 23.01 or erlang-dev is not installed (%s) and %s is set", Ejabberd, RequireEnv)
}

// RepoRoot is the root of the saslcert repository.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BuildModule compiles mod_saslcert (Build) into a temporary directory of
// tb, laid out as ejabberd's contributed modules directory, and returns it
// (erlc takes a few seconds; the directory goes with the test).
func BuildModule(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := Build(dir); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// shared is the module built once for a test binary that runs under
// ShareModule.
var shared struct {
	sync.Mutex
	on    bool
	dir   string
	built bool
}

// ShareModule runs m's tests so that every Start without
// Options.ModulesDir uses one build of mod_saslcert (made at the first
// Start, removed when the tests end) instead of compiling it again (erlc,
// seconds each), and returns m.Run's exit code. Call it from TestMain:
// os.Exit(ejabberdtest.ShareModule(m)).
func ShareModule(m *testing.M) int {
	shared.Lock()
	shared.on = true
	shared.Unlock()
	defer func() {
		shared.Lock()
		defer shared.Unlock()
		if shared.dir != "" {
			os.RemoveAll(shared.dir)
		}
	}()
	return m.Run()
}

// sharedModule is the binary's shared build under ShareModule (building
// it at the first call), or else BuildModule(tb).
func sharedModule(tb testing.TB) string {
	tb.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.on {
		return BuildModule(tb)
	}
	if !shared.built {
		if shared.dir == "" {
			dir, err := os.MkdirTemp("", "ejabberdtest-module-")
			if err != nil {
				tb.Fatal(err)
			}
			shared.dir = dir
		}
		if err := Build(shared.dir); err != nil {
			tb.Fatal(err)
		}
		shared.built = true
	}
	return shared.dir
}

// Build compiles mod_saslcert with scripts/build-ejabberd-module.sh into
// dir/mod_saslcert/ebin (with dir/mod_saslcert/mod_saslcert.spec), so that
// dir can be ejabberd's contributed modules directory.
func Build(dir string) error {
	out, err := exec.Command(filepath.Join(RepoRoot(), "scripts", "build-ejabberd-module.sh"),
		filepath.Join(dir, "mod_saslcert", "ebin")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/build-ejabberd-module.sh: %v\n%s", err, out)
	}
	return nil
}

// Start writes a configuration, starts epmd and ejabberd (Launch, in a
// temporary directory, with mod_saslcert from BuildModule unless
// o.NoModule), and waits until ejabberd is started and listens. Cleanups
// stop both and log the tail of ejabberd's log if tb failed.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	Skip(tb)
	if !o.NoModule && o.ModulesDir == "" {
		o.ModulesDir = sharedModule(tb)
	}
	s, err := Launch(tb.TempDir(), o)
	if s != nil {
		tb.Cleanup(func() {
			s.Close()
			if tb.Failed() || os.Getenv(LogEnv) != "" {
				tb.Logf("ejabberd log (tail):\n%s", tail(s.Log(), 24<<10))
			}
		})
	}
	if err != nil {
		tb.Fatalf("ejabberdtest: %v", err)
	}
	return s
}

// Launch is Start without a testing.TB (for benchmarks): dir must exist
// and be empty; o.ModulesDir must hold the built module unless o.NoModule
// (Build). The caller calls Close, also after an error if the Server is not
// nil.
func Launch(dir string, o Options) (*Server, error) {
	if o.Domain == "" {
		o.Domain = "example.org"
	}
	if o.ComponentJID == "" {
		o.ComponentJID = "certs." + o.Domain
	}
	if o.ComponentSecret == "" {
		o.ComponentSecret = mustRandomHex(16)
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	s := &Server{
		Dir:             dir,
		Domain:          o.Domain,
		ComponentJID:    o.ComponentJID,
		ComponentSecret: o.ComponentSecret,
		ConfigFile:      filepath.Join(dir, "ejabberd.yml"),
		LogFile:         filepath.Join(dir, "logs", "ejabberd.log"),
		ConsoleFile:     filepath.Join(dir, "console.log"),
		Node:            "saslcert" + mustRandomHex(6) + "@localhost",
		Cookie:          mustRandomHex(16),
	}
	if !o.NoModule {
		s.contrib = o.ModulesDir
	}
	for _, d := range []string{"spool", "logs", "home"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	sc, err := prosodyconf.WriteServerCert(dir, 365*24*time.Hour, s.Domain, s.ComponentJID)
	if err != nil {
		return nil, err
	}
	s.Cert = sc.Cert
	s.RootCAs = x509.NewCertPool()
	s.RootCAs.AddCert(sc.Cert)
	if o.CAFile == "" {
		o.CAFile = sc.CertFile
	}
	secretFile := filepath.Join(dir, "component.secret")
	if err := os.WriteFile(secretFile, []byte(o.ComponentSecret+"\n"), 0o600); err != nil {
		return nil, err
	}
	// Ports are picked free but may be taken before ejabberd binds them;
	// then try again with other ports.
	for attempt := 1; ; attempt++ {
		a := mustFreeAddrs(4) // distinct: ejabberd refuses overlapping listeners
		s.C2SAddr, s.ComponentAddr, s.epmdAddr = a[0], a[1], a[2]
		if o.RogueJID != "" {
			s.RogueAddr = a[3]
		}
		if err := os.WriteFile(s.ConfigFile, []byte(config(s, o, sc, secretFile)), 0o600); err != nil {
			return s, err
		}
		err := s.startEpmd()
		if err == nil {
			err = s.tryStart()
		}
		if err == nil {
			return s, nil
		}
		s.Close()
		if attempt < 3 && (strings.Contains(s.Log()+err.Error(), "eaddrinuse") || strings.Contains(s.Log(), "Overlapping listeners")) {
			continue
		}
		return s, fmt.Errorf("%w\n%s", err, tail(s.Log(), 16<<10))
	}
}

// Close stops ejabberd and its epmd; it is idempotent.
func (s *Server) Close() {
	s.Stop()
	s.stopEpmd()
}

// config is the test ejabberd.yml: the server's own settings, then the
// parts plugins/ejabberd.Config renders (as `saslcert ejabberd config`
// prints them).
func config(s *Server, o Options, sc *prosodyconf.ServerCert, secretFile string) string {
	c2sHost, c2sPort := splitAddr(s.C2SAddr)
	compHost, compPort := splitAddr(s.ComponentAddr)
	pc := ejabberd.Config{
		Domains:            []string{s.Domain},
		Component:          s.ComponentJID,
		Secret:             s.ComponentSecret,
		SecretFile:         secretFile,
		CAFile:             o.CAFile,
		C2SInterface:       c2sHost,
		C2SPort:            c2sPort,
		ComponentInterface: compHost,
		ComponentPort:      compPort,
		Timeout:            o.Timeout,
		NoCache:            o.NoCache,
		NoPrefetch:         o.NoPrefetch,
		LookupBurst:        o.LookupBurst,
		LookupRate:         o.LookupRate,
		NoticeDelay:        o.NoticeDelay,
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# generated by internal/ejabberdtest")
	hosts := []string{strconv.Quote(s.Domain)}
	for _, h := range o.ExtraHosts {
		hosts = append(hosts, strconv.Quote(h))
	}
	w("hosts: [%s]", strings.Join(hosts, ", "))
	w("loglevel: %s", o.LogLevel)
	w("hide_sensitive_log_data: false")
	w("certfiles: [%q, %q]", sc.CertFile, sc.KeyFile)
	w("acme: {auto: false}")
	w("auth_method: [mnesia]")
	w("s2s_access: none")
	w("shaper: {}")
	b.WriteString(pc.Top())
	w("listen:")
	b.WriteString(pc.Listen())
	if o.RogueJID != "" {
		// On its own listener, as the printed configuration asks.
		rh, rp := splitAddr(s.RogueAddr)
		w("  # a second component (hostile tests)")
		w("  - port: %d", rp)
		w("    ip: %q", rh)
		w("    module: ejabberd_service")
		w("    hosts:")
		w("      %q:", o.RogueJID)
		w("        password: %q", o.RogueSecret)
	}
	w("modules:")
	w("  mod_disco: {}")
	w("  mod_roster: {}")
	w("  mod_ping: {}")
	if !o.NoModule {
		b.WriteString(pc.Modules())
	}
	return b.String()
}

func splitAddr(addr string) (string, int) {
	h, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return h, n
}

// env is the environment of erl for this server: its epmd, ejabberd's
// paths, and no inherited ERL_* settings.
func (s *Server) env() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "ERL_") && !strings.HasPrefix(e, "EJABBERD_") && !strings.HasPrefix(e, "HOME=") && !strings.HasPrefix(e, "CONTRIB_") {
			env = append(env, e)
		}
	}
	_, port := splitAddr(s.epmdAddr)
	return append(env,
		"HOME="+filepath.Join(s.Dir, "home"),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT="+strconv.Itoa(port),
		"ERL_LIBS="+ErlLibs,
		"ERL_CRASH_DUMP="+filepath.Join(s.Dir, "logs", "erl_crash.dump"),
		"EJABBERD_CONFIG_PATH="+s.ConfigFile,
		"EJABBERD_LOG_PATH="+s.LogFile,
		"CONTRIB_MODULES_PATH="+s.contribDir(),
	)
}

func (s *Server) contribDir() string {
	if s.contrib != "" {
		return s.contrib
	}
	return filepath.Join(s.Dir, "home", "modules") // empty: no contributed module
}

// startEpmd starts this server's epmd on epmdAddr, in the foreground (so
// that its PID is the child's).
func (s *Server) startEpmd() error {
	_, port := splitAddr(s.epmdAddr)
	cmd := exec.Command(EpmdBin, "-port", strconv.Itoa(port), "-address", "127.0.0.1")
	cmd.Env = s.env()
	out, err := os.OpenFile(filepath.Join(s.Dir, "logs", "epmd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("starting epmd: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(done) }()
	s.mu.Lock()
	s.epmd, s.epmdDone = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", s.epmdAddr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("epmd exited at start (port %d taken? eaddrinuse)", port)
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("epmd does not listen")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) stopEpmd() {
	s.mu.Lock()
	cmd, done := s.epmd, s.epmdDone
	s.epmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// tryStart starts erl with ejabberd and waits until it is started and both
// ports accept connections.
func (s *Server) tryStart() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("already running")
	}
	out, err := os.OpenFile(s.ConsoleFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	var logOffset int64
	if fi, err := os.Stat(s.LogFile); err == nil {
		logOffset = fi.Size()
	}
	cmd := exec.Command(ErlBin, "-sname", s.Node, "-setcookie", s.Cookie, "-noinput", "-start_epmd", "false",
		"-kernel", "inet_dist_use_interface", "{127,0,0,1}",
		"-mnesia", "dir", strconv.Quote(filepath.Join(s.Dir, "spool")),
		"-s", "ejabberd")
	cmd.Dir = filepath.Join(s.Dir, "spool")
	cmd.Env = s.env()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		out.Close()
		return fmt.Errorf("starting erl: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(done) }()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(StartTimeout)
	for {
		select {
		case <-done:
			return errors.New("ejabberd exited during start-up")
		default:
		}
		l, _ := os.ReadFile(s.LogFile)
		if int64(len(l)) >= logOffset {
			l = l[logOffset:]
		}
		if bytes.Contains(l, []byte("is started in the node")) && dialable(s.C2SAddr) && dialable(s.ComponentAddr) {
			return nil
		}
		if bytes.Contains(l, []byte("eaddrinuse")) {
			return errors.New("a port is taken (eaddrinuse)")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ejabberd is not started and listening on %s and %s after %v", s.C2SAddr, s.ComponentAddr, StartTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Running reports whether ejabberd runs.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Stop stops ejabberd (SIGTERM: Erlang's init:stop; SIGKILL after 20 s) and
// waits; it is idempotent. epmd keeps running (Restart needs it).
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return
	case <-time.After(20 * time.Second):
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart stops ejabberd and starts it again with the same configuration,
// ports, node and spool.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	if err := s.tryStart(); err != nil {
		tb.Fatalf("ejabberdtest: restart: %v\n%s", err, tail(s.Log(), 16<<10))
	}
}

// Ctl runs an ejabberdctl command (ejabberd_ctl on a hidden node of this
// server's epmd and cookie) and returns its output.
func (s *Server) Ctl(args ...string) (string, error) {
	name := "ctl" + mustRandomHex(6) + "@localhost"
	cmd := exec.Command(ErlBin, append([]string{"-sname", name, "-setcookie", s.Cookie, "-noinput", "-hidden",
		"-start_epmd", "false", "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
		"-s", "ejabberd_ctl", "-extra", s.Node}, args...)...)
	cmd.Env = s.env()
	cmd.Dir = s.Dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// RegisterMany creates user@Domain with password for every user, in one
// Erlang node that calls ejabberd_auth:try_register on the server (one
// ejabberdctl call per account would start a VM each).
func (s *Server) RegisterMany(users []string, password string) error {
	var terms strings.Builder
	terms.WriteString("{users, [")
	for i, u := range users {
		if i > 0 {
			terms.WriteString(",")
		}
		terms.WriteString(strconv.Quote(u))
	}
	terms.WriteString("]}.\n")
	f := filepath.Join(s.Dir, "register-many.terms")
	if err := os.WriteFile(f, []byte(terms.String()), 0o600); err != nil {
		return err
	}
	eval := fmt.Sprintf(`{ok, [{users, Us}]} = file:consult(%q), `+
		`R = [rpc:call('%s', ejabberd_auth, try_register, [list_to_binary(U), <<%q/utf8>>, <<%q/utf8>>]) || U <- Us], `+
		`Bad = [X || X <- R, X =/= ok, X =/= {error, exists}], io:format("~p~n", [Bad]), halt(case Bad of [] -> 0; _ -> 1 end).`,
		f, s.Node, s.Domain, password)
	cmd := exec.Command(ErlBin, "-sname", "reg"+mustRandomHex(6)+"@localhost", "-setcookie", s.Cookie, "-noinput", "-hidden",
		"-start_epmd", "false", "-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-eval", eval)
	cmd.Env = s.env()
	cmd.Dir = s.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("registering %d accounts: %v\n%s", len(users), err, out)
	}
	return nil
}

// Eval evaluates the Erlang expressions code in a hidden node of this
// server's epmd and cookie, with the variable Node bound to the server's
// node name (reach it with rpc:call(Node, M, F, Args)), and returns the
// value of the last expression printed with ~p (and a newline).
func (s *Server) Eval(code string) (string, error) {
	eval := fmt.Sprintf(`Node = '%s', R = begin %s end, io:format("~p~n", [R]), halt().`, s.Node, code)
	cmd := exec.Command(ErlBin, "-sname", "eval"+mustRandomHex(6)+"@localhost", "-setcookie", s.Cookie, "-noinput", "-hidden",
		"-start_epmd", "false", "-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-eval", eval)
	cmd.Env = s.env()
	cmd.Dir = s.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ejabberdtest: eval %s: %w\n%s", code, err, out)
	}
	return string(out), nil
}

// Register creates user@Domain with password, failing tb.
func (s *Server) Register(tb testing.TB, user, password string) {
	tb.Helper()
	if out, err := s.Ctl("register", user, s.Domain, password); err != nil {
		tb.Fatalf("ejabberdctl register %s@%s: %v\n%s", user, s.Domain, err, out)
	}
}

// Log is ejabberd's console output and log so far.
func (s *Server) Log() string {
	var b bytes.Buffer
	if out, err := os.ReadFile(s.ConsoleFile); err == nil && len(bytes.TrimSpace(out)) > 0 {
		b.WriteString("--- console ---\n")
		b.Write(out)
		b.WriteString("--- ejabberd.log ---\n")
	}
	if l, err := os.ReadFile(s.LogFile); err == nil {
		b.Write(l)
	}
	return b.String()
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

// mustFreeAddr is a loopback address that was free a moment ago.
// mustFreeAddrs returns n distinct free loopback addresses: all n are
// held open together while they are picked, so none is picked twice.
func mustFreeAddrs(n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		defer l.Close()
		addrs[i] = l.Addr().String()
	}
	return addrs
}

func mustRandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
