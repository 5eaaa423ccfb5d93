package prosodytest

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
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
	"github.com/saslcert/saslcert/plugins/prosody"
)

// Env variable: when set, a missing prosody binary fails the test instead of
// skipping it.
const RequireEnv = "SASLCERT_REQUIRE_PROSODY"

// LogEnv names an environment variable: when set, the cleanup logs the tail
// of Prosody's log even for passing tests ("full": the whole log). Failing
// tests always get the tail.
const LogEnv = "SASLCERT_PROSODY_LOG"

// Binaries used by the harness.
var (
	ProsodyBin    = "/usr/bin/prosody"
	ProsodyctlBin = "/usr/bin/prosodyctl"
)

// StartTimeout bounds how long Start waits for both ports.
var StartTimeout = 10 * time.Second

// Options configure a test server. The zero value is a plain server for
// example.org with a component certs.example.org and neither plugin nor
// delegation.
type Options struct {
	Domain          string // VirtualHost, default "example.org"
	ComponentJID    string // default "certs.example.org"
	ComponentSecret string // default random

	// Plugin loads mod_saslcert from the repository's plugins/prosody on the
	// VirtualHost with saslcert_component = ComponentJID: the VirtualHost
	// section plugins/prosody.Config renders, as `saslcert prosody config`
	// prints it for admins (the Plugin* fields and Delegation set its
	// test-only choices).
	Plugin bool
	// PluginTimeout is saslcert_timeout (0: the plugin's default).
	PluginTimeout time.Duration
	// PluginNoComponent leaves saslcert_component out of the config (to test
	// the plugin's refusal to work without it).
	PluginNoComponent bool
	// PluginLookupLimit is the plugin's saslcert_lookup_burst and
	// saslcert_lookup_rate (per second). 0: 100000 for both, so that tests
	// that log many clients in from 127.0.0.1 are not limited; -1: the
	// plugin's defaults (or what ExtraHost sets).
	PluginLookupLimit int
	// Delegation enables prosody-modules' mod_delegation for
	// urn:xmpp:saslcert:1 to the component and turns the plugin's own
	// forwarding off (saslcert_forward = false). Without it, mod_saslcert
	// forwards XEP-0257 requests itself (the default deployment).
	Delegation bool

	// ExtraGlobal and ExtraHost are raw Lua appended to the global and the
	// VirtualHost section.
	ExtraGlobal, ExtraHost string

	// Include is a configuration file that an admin wrote with
	// `saslcert prosody config` (e.g. the package's paths): Prosody
	// includes it after the global section, and Start writes no
	// VirtualHost or Component section of its own (Plugin, Delegation,
	// ExtraHost and the Plugin* fields are ignored). The file must declare
	// Domain and ComponentJID, and its component_ports must be the port of
	// ComponentAddr. ComponentSecret is then unused: the file names the
	// secret Prosody reads.
	Include string
	// ComponentAddr is where Prosody listens for components
	// ("127.0.0.1:port"; default: a free port). Start does not retry
	// other ports when it is taken.
	ComponentAddr string
	// ExtraModules are added to the global modules_enabled.
	ExtraModules []string
}

// Server is a running (or stopped) test Prosody.
type Server struct {
	Dir, Domain, ComponentJID, ComponentSecret string
	C2SAddr, ComponentAddr                     string // "127.0.0.1:port"
	RootCAs                                    *x509.CertPool
	// Cert is the server's TLS certificate (for Domain).
	Cert *x509.Certificate
	// ConfigFile is the path of the generated prosody.cfg.lua.
	ConfigFile string
	// LogFile is Prosody's debug log; StdoutFile gets its console output.
	LogFile, StdoutFile string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// RepoRoot is the root of the saslcert repository (found from this source
// file's location).
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// PluginDir is the directory holding the plugin's files (mod_saslcert.lua
// and its saslcert_*.lib.lua parts), which Prosody finds through
// plugin_paths.
func PluginDir() string { return filepath.Join(RepoRoot(), "plugins", "prosody") }

// Installed reports whether the prosody binaries are present.
func Installed() bool {
	for _, b := range []string{ProsodyBin, ProsodyctlBin} {
		if _, err := os.Stat(b); err != nil {
			return false
		}
	}
	return true
}

// Start writes a config, starts Prosody and waits until its c2s and
// component ports accept connections. It registers a cleanup that stops it.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	if !Installed() {
		if os.Getenv(RequireEnv) == "" {
			tb.Skipf("prosody is not installed (%s); set %s to make this a failure", ProsodyBin, RequireEnv)
		}
		tb.Fatalf("prosody is not installed (%s) and %s is set", ProsodyBin, RequireEnv)
	}
	if o.Domain == "" {
		o.Domain = "example.org"
	}
	if o.ComponentJID == "" {
		o.ComponentJID = "certs." + o.Domain
	}
	if o.ComponentSecret == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			tb.Fatal(err)
		}
		o.ComponentSecret = hex.EncodeToString(b)
	}
	dir := tb.TempDir()
	s := &Server{
		Dir:             dir,
		Domain:          o.Domain,
		ComponentJID:    o.ComponentJID,
		ComponentSecret: o.ComponentSecret,
		ConfigFile:      filepath.Join(dir, "prosody.cfg.lua"),
		LogFile:         filepath.Join(dir, "prosody.log"),
		StdoutFile:      filepath.Join(dir, "prosody.stdout"),
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile := s.makeTLS(tb)
	// The Component section reads the secret from this file, as an
	// admin's does.
	secretFile := filepath.Join(dir, "component.secret")
	if err := os.WriteFile(secretFile, []byte(o.ComponentSecret+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Stop()
		switch env := os.Getenv(LogEnv); {
		case env == "full":
			tb.Logf("prosody log:\n%s", s.Log())
		case tb.Failed() || env != "":
			tb.Logf("prosody log (tail):\n%s", tail(s.Log(), 24<<10))
		}
	})
	// Ports are picked free but may be taken before Prosody binds them;
	// then try again with other ports.
	for attempt := 1; ; attempt++ {
		if o.ComponentAddr != "" {
			s.ComponentAddr = o.ComponentAddr
			s.C2SAddr = freeAddr(tb, s.ComponentAddr)
		} else {
			s.C2SAddr = freeAddr(tb, "")
			s.ComponentAddr = freeAddr(tb, s.C2SAddr)
		}
		cfg := s.config(o, certFile, keyFile, secretFile)
		if err := os.WriteFile(s.ConfigFile, []byte(cfg), 0o600); err != nil {
			tb.Fatal(err)
		}
		err := s.tryStart()
		if err == nil {
			return s
		}
		log := s.Log()
		if attempt < 3 && o.ComponentAddr == "" && strings.Contains(log, "Failed to open server port") {
			tb.Logf("prosodytest: a port was taken, retrying: %v", err)
			_ = os.Remove(s.LogFile)
			_ = os.Remove(s.StdoutFile)
			continue
		}
		tb.Fatalf("prosodytest: %v\n%s", err, log)
	}
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

// freeAddr returns a currently free loopback TCP address other than not.
// It prefers ports below the kernel's ephemeral range, so that outgoing
// connections of parallel tests cannot take the port before Prosody binds
// it (and a Restart can bind it again).
func freeAddr(tb testing.TB, not string) string {
	tb.Helper()
	lo := ephemeralLow()
	if lo > 11000 {
		for range 50 {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(10000+mrand.IntN(lo-10000)))
			if addr == not {
				continue
			}
			if l, err := net.Listen("tcp", addr); err == nil {
				l.Close()
				return addr
			}
		}
	}
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if addr != not {
			return addr
		}
	}
}

// FreeAddr returns a currently free loopback TCP address (as Start picks
// its ports), e.g. for Options.ComponentAddr.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return freeAddr(tb, "")
}

// ephemeralLow is the lowest port of the kernel's ephemeral range (0 if
// unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// makeTLS writes a self-signed ECDSA P-256 certificate for the domain and
// the component (prosodyconf.WriteServerCert, valid for a year) with its key
// (0600) and fills RootCAs and Cert.
func (s *Server) makeTLS(tb testing.TB) (certFile, keyFile string) {
	tb.Helper()
	sc, err := prosodyconf.WriteServerCert(s.Dir, 365*24*time.Hour, s.Domain, s.ComponentJID)
	if err != nil {
		tb.Fatal(err)
	}
	s.Cert = sc.Cert
	s.RootCAs = x509.NewCertPool()
	s.RootCAs.AddCert(sc.Cert)
	return sc.CertFile, sc.KeyFile
}

// luaStr quotes s as a Lua string literal.
func luaStr(s string) string { return strconv.Quote(s) }

// config is Prosody's configuration for o: prosodyconf's global section
// (with the plugin directory and the modules o asks for), then the
// VirtualHost and the component.
func (s *Server) config(o Options, certFile, keyFile, secretFile string) string {
	g := prosodyconf.Global{
		Generator:     "internal/prosodytest",
		Dir:           s.Dir,
		CertDir:       s.Dir,
		CertFile:      certFile,
		KeyFile:       keyFile,
		LogLevel:      "debug",
		LogFile:       s.LogFile,
		C2SPort:       port(s.C2SAddr),
		ComponentPort: port(s.ComponentAddr),
		Extra:         o.ExtraGlobal,
	}
	if o.Plugin {
		g.PluginPaths = []string{PluginDir()}
	}
	if o.Delegation {
		g.Modules = append(g.Modules, "delegation")
	}
	g.Modules = append(g.Modules, o.ExtraModules...)
	var b strings.Builder
	b.WriteString(g.Render())
	if o.Include != "" {
		// An included file starts in the global section; it holds the
		// admin's VirtualHost and Component sections.
		fmt.Fprintf(&b, "Include %s\n", luaStr(o.Include))
		return b.String()
	}
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	// The plugin's sections are what `saslcert prosody config` prints
	// (package plugins/prosody), with the test-only choices of o.
	pc := prosody.Config{
		Component:   s.ComponentJID,
		SecretFile:  secretFile,
		Timeout:     o.PluginTimeout,
		NoForward:   o.Delegation, // mod_delegation carries XEP-0257 requests instead
		NoComponent: o.PluginNoComponent,
	}
	if o.PluginLookupLimit >= 0 {
		limit := o.PluginLookupLimit
		if limit == 0 {
			limit = 100000
		}
		pc.LookupBurst, pc.LookupRate = limit, limit
	}
	if o.Plugin {
		b.WriteString(pc.VirtualHost(s.Domain))
	} else {
		w("VirtualHost %s", luaStr(s.Domain))
	}
	if o.Delegation {
		w(`	delegations = { ["urn:xmpp:saslcert:1"] = { jid = %s } }`, luaStr(s.ComponentJID))
	}
	if o.ExtraHost != "" {
		w("%s", o.ExtraHost)
	}
	w("")
	b.WriteString(pc.ComponentSection())
	if o.Delegation {
		w(`	modules_enabled = { "delegation" }`)
	}
	return b.String()
}

// tryStart runs prosody and waits for its ports; on error prosody is
// stopped.
func (s *Server) tryStart() error {
	var logOffset int64
	if fi, err := os.Stat(s.LogFile); err == nil {
		logOffset = fi.Size()
	}
	if err := s.startProcess(); err != nil {
		return err
	}
	if err := s.waitReady(StartTimeout, logOffset); err != nil {
		s.Stop()
		return err
	}
	return nil
}

func (s *Server) startProcess() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	out, err := os.OpenFile(s.StdoutFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(ProsodyBin, "-F", "--config", s.ConfigFile)
	cmd.Dir = s.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Env = append(os.Environ(), "HOME="+s.Dir)
	// Kill prosody if the test binary dies without running cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("starting %s: %w", ProsodyBin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	return nil
}

// waitReady waits until Prosody's log (after logOffset) says that both
// services listen on their ports. It does not probe the ports: Prosody 0.12
// logs an error ("Error calling onconnect ... setoption") when a client
// connects and closes at once.
func (s *Server) waitReady(timeout time.Duration, logOffset int64) error {
	deadline := time.Now().Add(timeout)
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	want := [][]byte{
		[]byte(fmt.Sprintf("Activated service 'c2s' on [127.0.0.1]:%s\n", port(s.C2SAddr))),
		[]byte(fmt.Sprintf("Activated service 'component' on [127.0.0.1]:%s\n", port(s.ComponentAddr))),
	}
	for {
		select {
		case <-done:
			return fmt.Errorf("prosody exited during start-up")
		default:
		}
		l, _ := os.ReadFile(s.LogFile)
		if int64(len(l)) >= logOffset {
			l = l[logOffset:]
		}
		if bytes.Contains(l, []byte("Failed to open server port")) {
			return fmt.Errorf("prosody could not listen on %s or %s", s.C2SAddr, s.ComponentAddr)
		}
		if bytes.Contains(l, want[0]) && bytes.Contains(l, want[1]) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("prosody does not listen on %s and %s after %v", s.C2SAddr, s.ComponentAddr, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Running reports whether the prosody process is alive.
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

// Pid is the prosody process id, or 0 if it is not running.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop stops prosody (SIGTERM, SIGKILL after 5 s) and waits for it to exit.
// It is idempotent.
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
	case <-time.After(5 * time.Second):
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart stops prosody and starts it again with the same config and ports.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	if err := s.tryStart(); err != nil {
		tb.Fatalf("prosodytest: restart: %v\n%s", err, s.Log())
	}
}

// Register creates an account with prosodyctl.
func (s *Server) Register(tb testing.TB, user, password string) {
	tb.Helper()
	out, err := s.Prosodyctl("register", user, s.Domain, password)
	if err != nil {
		tb.Fatalf("prosodyctl register %s@%s: %v\n%s", user, s.Domain, err, out)
	}
}

// Prosodyctl runs prosodyctl with this server's config and returns its
// combined output.
func (s *Server) Prosodyctl(args ...string) (string, error) {
	cmd := exec.Command(ProsodyctlBin, append([]string{"--config", s.ConfigFile}, args...)...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "HOME="+s.Dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Log returns Prosody's console output and log file contents.
func (s *Server) Log() string {
	var b bytes.Buffer
	if out, err := os.ReadFile(s.StdoutFile); err == nil && len(bytes.TrimSpace(out)) > 0 {
		b.WriteString("--- prosody console output ---\n")
		b.Write(out)
		b.WriteString("--- prosody log ---\n")
	}
	if l, err := os.ReadFile(s.LogFile); err == nil {
		b.Write(l)
	}
	return b.String()
}
