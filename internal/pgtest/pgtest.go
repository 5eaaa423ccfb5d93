// Package pgtest starts a throwaway, real PostgreSQL server for tests.
//
// Start runs Debian's PostgreSQL (initdb, then the postgres server itself as
// a child process) in a fresh temporary directory, listening on a free
// loopback TCP port and on a Unix socket in that directory, and registers a
// cleanup that stops it by its PID and removes the directory. PostgreSQL
// refuses to run as root: when the test runs as root, the directory is given
// to the unprivileged user "nobody" and both programs run as that user.
//
// Authentication is "trust" for every role except PasswordRole, which must
// give its password (scram-sha-256) over TCP, so that tests can check that a
// password really is sent. Databases are created per test with
// (*Server).CreateDB, which is fast (a copy of template1).
//
// Options.Durable keeps PostgreSQL's real durability settings (fsync,
// synchronous_commit, full_page_writes); without it they are off, which
// makes start-up and writes fast and is safe for anything but tests of
// what survives a crash.
//
// When PostgreSQL is not installed, Start skips the test unless the
// environment variable SASLCERT_REQUIRE_POSTGRES is set, in which case it
// fails.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// binDirs are where PostgreSQL's server programs are looked for, newest first.
var binDirs = []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"}

// RequireEnv, when set, turns a missing PostgreSQL into a failure.
const RequireEnv = "SASLCERT_REQUIRE_POSTGRES"

// Superuser is the superuser role initdb creates.
const Superuser = "postgres"

// PasswordRole is a role that must authenticate with PasswordRolePassword
// over TCP (scram-sha-256); every other role is trusted.
const (
	PasswordRole         = "saslcert_pw"
	PasswordRolePassword = "pgtest-secret"
)

// Options configure Start.
type Options struct {
	// Durable keeps fsync and synchronous commit on (kill -9 tests).
	Durable bool
	// StartTimeout bounds the server's start (default 60s).
	StartTimeout time.Duration
	// SharedBuffers is PostgreSQL's shared_buffers (default "64MB");
	// benchmarks on large tables give it more.
	SharedBuffers string
}

// Server is a running PostgreSQL.
type Server struct {
	Dir  string // the temporary directory (data in Dir/data, socket in Dir)
	Port int    // the loopback TCP port
	bin  string
	cred *syscall.Credential
	opts Options

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	dbs  int
}

// BinDir returns the directory of PostgreSQL's server programs, or "" if
// PostgreSQL is not installed.
func BinDir() string {
	for _, d := range binDirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d
		}
	}
	return ""
}

// Start starts a PostgreSQL server for tb, stopped at tb's cleanup.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	bin := BinDir()
	if bin == "" {
		if os.Getenv(RequireEnv) != "" {
			tb.Fatalf("pgtest: PostgreSQL is not installed (looked in %s) and %s is set", strings.Join(binDirs, ", "), RequireEnv)
		}
		tb.Skipf("pgtest: PostgreSQL is not installed (set %s=1 to fail instead)", RequireEnv)
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.SharedBuffers == "" {
		o.SharedBuffers = "64MB"
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{Dir: dir, bin: bin, opts: o}
	tb.Cleanup(func() {
		s.Stop()
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		cred, err := nobody()
		if err != nil {
			tb.Fatalf("pgtest: running as root and %v", err)
		}
		s.cred = cred
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.initdb(); err != nil {
		tb.Fatal(err)
	}
	s.Port = freePort(tb)
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Exec(context.Background(), "postgres", fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, PasswordRole, PasswordRolePassword)); err != nil {
		tb.Fatal(err)
	}
	return s
}

// nobody returns the credentials of the user nobody.
func nobody() (*syscall.Credential, error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("no user nobody to run PostgreSQL as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// command runs a PostgreSQL program as the server's user.
func (s *Server) command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	// Pdeathsig: a test binary killed (or timed out, which skips
	// cleanups) takes its server down with it (SIGQUIT: PostgreSQL's
	// immediate shutdown).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	return cmd
}

func (s *Server) initdb() error {
	pw := filepath.Join(s.Dir, "pwfile")
	if err := os.WriteFile(pw, []byte("pgtest\n"), 0o600); err != nil {
		return err
	}
	if s.cred != nil {
		os.Chown(pw, int(s.cred.Uid), int(s.cred.Gid))
	}
	defer os.Remove(pw)
	cmd := s.command("initdb", "-D", s.data(), "-U", Superuser, "--pwfile", pw, "-E", "UTF8",
		"--locale", "C", "--no-sync", "--auth-local", "trust", "--auth-host", "trust")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	// The password role first: pg_hba.conf is read top down.
	hba := "local all all trust\n" +
		"host all " + PasswordRole + " 127.0.0.1/32 scram-sha-256\n" +
		"host all all 127.0.0.1/32 trust\n"
	return os.WriteFile(filepath.Join(s.data(), "pg_hba.conf"), []byte(hba), 0o600)
}

func (s *Server) data() string { return filepath.Join(s.Dir, "data") }

// Start starts the server (again, after Stop or Kill) on the same port and
// directory and waits until it accepts connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: already running")
	}
	args := []string{"-D", s.data(), "-p", strconv.Itoa(s.Port), "-k", s.Dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=" + s.opts.SharedBuffers,
		"-c", "logging_collector=off", "-c", "log_min_messages=warning"}
	if !s.opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	deadline := time.Now().Add(s.opts.StartTimeout)
	for {
		logf, err := os.OpenFile(filepath.Join(s.Dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		cmd := s.command("postgres", args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("pgtest: start postgres: %w", err)
		}
		logf.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		err = s.waitReady(done, deadline)
		if err == nil {
			s.cmd, s.done = cmd, done
			return nil
		}
		cmd.Process.Kill()
		<-done
		// After a kill -9 the old server's backends may hold its shared
		// memory for a moment: try again until the deadline.
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres did not start: %w\n%s", err, s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady polls the server until a connection succeeds, the process
// exits or the deadline passes.
func (s *Server) waitReady(exited <-chan struct{}, deadline time.Time) error {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, s.URL("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			return errors.New("postgres exited")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready: %w", err)
		}
	}
}

// Pid returns the postmaster's process ID (0 if stopped).
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop shuts the server down ("fast" shutdown: SIGINT to its PID, which
// disconnects clients and checkpoints) and waits for it. Stopping a stopped
// server does nothing.
func (s *Server) Stop() { s.signal(syscall.SIGINT) }

// Kill kills the server with SIGKILL, as a crash would, and waits for the
// postmaster (its backends notice and exit on their own).
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// URL returns a URL for database db as the superuser over TCP
// (sslmode=disable: the test server has no TLS).
func (s *Server) URL(db string) string {
	return s.RoleURL(Superuser, "", db)
}

// RoleURL returns a URL for database db as role, with password if not "".
func (s *Server) RoleURL(role, password, db string) string {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), Path: "/" + db,
		RawQuery: "sslmode=disable"}
	if password != "" {
		u.User = url.UserPassword(role, password)
	} else {
		u.User = url.User(role)
	}
	return u.String()
}

// SocketURL returns a URL for database db as the superuser over the Unix
// socket in Dir.
func (s *Server) SocketURL(db string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d", Superuser, db, url.QueryEscape(s.Dir), s.Port)
}

// CreateDB creates a new, empty database owned by PasswordRole (so either
// role can use it) and returns its name.
func (s *Server) CreateDB(tb testing.TB) string {
	tb.Helper()
	s.mu.Lock()
	s.dbs++
	name := fmt.Sprintf("db%d", s.dbs)
	s.mu.Unlock()
	if _, err := s.Exec(context.Background(), "postgres", "CREATE DATABASE "+name+" OWNER "+PasswordRole); err != nil {
		tb.Fatal(err)
	}
	return name
}

// Exec runs sql in database db as the superuser.
func (s *Server) Exec(ctx context.Context, db, sql string) (string, error) {
	c, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return "", err
	}
	defer c.Close(context.Background())
	tag, err := c.Exec(ctx, sql)
	return tag.String(), err
}

// Log returns the server's log (stdout and stderr of every run).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
	return string(b)
}

// freePort returns a loopback TCP port that is free now.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var shared struct {
	mu  sync.Mutex
	s   *Server
	end func()
}

// Shared returns a server shared by the tests of one test binary (started
// on first use with o, or without durability if o is nil: the first
// caller's options win), which TestMain stops with StopShared. Tests that
// stop or kill their server must use Start instead.
func Shared(tb testing.TB, o ...Options) *Server {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s != nil {
		return shared.s
	}
	c := &cleanups{TB: tb}
	var opts Options
	if len(o) > 0 {
		opts = o[0]
	}
	shared.s = Start(c, opts)
	shared.end = c.run
	return shared.s
}

// StopShared stops the server Shared started, if any. Call it from
// TestMain after m.Run.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.end != nil {
		shared.end()
	}
	shared.s, shared.end = nil, nil
}

// cleanups is a testing.TB whose Cleanup functions run when run is called
// rather than at the end of the test that started the shared server.
type cleanups struct {
	testing.TB
	fns []func()
}

func (c *cleanups) Cleanup(f func()) { c.fns = append(c.fns, f) }

func (c *cleanups) run() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
}
