package stacktest

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/prosodytest"
)

// Main runs the tests of a package that uses Options.Process, StartCommand,
// Binary or LockDB:
//
//	func TestMain(m *testing.M) { stacktest.Main(m) }
//
// When the binary was started as a helper process it does the helper's work
// and exits; otherwise it runs the tests, removes the saslcert binary built
// for them and exits with their status.
func Main(m *testing.M) {
	if runHelper() {
		return
	}
	code := m.Run()
	build.mu.Lock()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	build.mu.Unlock()
	os.Exit(code)
}

// build is the saslcert binary built for this test binary.
var build struct {
	mu   sync.Mutex
	dir  string
	bin  string
	err  error
	done bool
}

// Binary returns the path of a saslcert binary built from this repository
// with go build (once per test binary, into a temporary directory that Main
// removes).
func Binary(tb testing.TB) string {
	tb.Helper()
	build.mu.Lock()
	defer build.mu.Unlock()
	if !build.done {
		build.done = true
		build.bin, build.err = goBuild()
	}
	if build.err != nil {
		tb.Fatalf("stacktest: building saslcert: %v", build.err)
	}
	return build.bin
}

func goBuild() (string, error) {
	dir, err := os.MkdirTemp("", "stacktest-saslcert-")
	if err != nil {
		return "", err
	}
	build.dir = dir
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go command in PATH: %w", err)
	}
	bin := filepath.Join(dir, "saslcert")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/saslcert")
	cmd.Dir = prosodytest.RepoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/saslcert: %v\n%s", err, out)
	}
	return bin, nil
}

// process is a child "saslcert serve".
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile string
}

// ServeArgs returns the arguments the stack runs "saslcert" with (global
// flags, then serve and its flags). The secret is not among them.
func (st *Stack) ServeArgs() []string {
	o := st.Opts
	level := strings.ToLower(o.LogLevel.String())
	args := []string{"--log-level", level, "serve",
		"--server-addr", st.S.ComponentAddr(),
		"--component", st.ComponentJID,
		"--domain", st.Domain,
		"--data-dir", st.DataDir,
		"--request-timeout", o.RequestTimeout.String(),
	}
	if o.BusyTimeout > 0 {
		args = append(args, "--busy-timeout", o.BusyTimeout.String())
	}
	if o.MaxInFlight > 0 {
		args = append(args, "--max-in-flight", strconv.Itoa(o.MaxInFlight))
	}
	if o.Limits.MaxPerAccount > 0 {
		args = append(args, "--max-certs", strconv.Itoa(o.Limits.MaxPerAccount))
	}
	if o.Limits.MaxCertSize > 0 {
		args = append(args, "--max-cert-size", strconv.Itoa(o.Limits.MaxCertSize))
	}
	if o.Limits.MaxNameLen > 0 {
		args = append(args, "--max-name-len", strconv.Itoa(o.Limits.MaxNameLen))
	}
	return append(args, o.ServeFlags...)
}

// startProcess starts "saslcert args..." under Options.Wrapper, its output
// in a log file, its environment this process's without SASLCERT_* plus env.
func (c *Component) startProcess(tb testing.TB, args []string, env ...string) error {
	argv := append(append(append([]string(nil), c.st.Opts.Wrapper...), Binary(tb)), args...)
	return c.startArgv(tb, argv, env...)
}

// StartExec is StartCommand for a program of the caller's choice: argv[0]
// is run as it is (neither Binary nor Options.Wrapper), e.g. an installed
// saslcert, or a wrapper that runs it as a systemd unit would.
func (st *Stack) StartExec(tb testing.TB, argv []string, env ...string) *Component {
	tb.Helper()
	return st.startComponent(tb, func(c *Component) error { return c.startArgv(tb, argv, env...) })
}

// startArgv starts argv with its output in a log file, its environment
// this process's without SASLCERT_* plus env.
func (c *Component) startArgv(tb testing.TB, argv []string, env ...string) error {
	logFile := filepath.Join(tb.TempDir(), fmt.Sprintf("saslcert-%d.log", c.N))
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	// Only what the caller sets: no SASLCERT_* settings leak in from the
	// test's environment.
	var cenv []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SASLCERT_") {
			cenv = append(cenv, kv)
		}
	}
	cmd.Env = append(cenv, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return err
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), logFile: logFile}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	c.proc = p
	return nil
}

// stop sends SIGTERM and waits up to grace, then SIGKILL. A clean exit
// after SIGTERM gives nil.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if st := p.cmd.ProcessState; st != nil && !st.Success() {
			return fmt.Errorf("saslcert serve exited with %v after SIGTERM", st)
		}
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("saslcert serve did not exit within %v of SIGTERM; killed", grace)
}

func (p *process) kill() error {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.exited
	return nil
}

// ---------------------------------------------------------------------------
// Helper processes.

// Environment of a helper process.
const (
	helperEnv   = "STACKTEST_HELPER"
	helperDBEnv = "STACKTEST_HELPER_DB"
)

// runHelper does a helper's work and exits if this process is one.
func runHelper() bool {
	switch os.Getenv(helperEnv) {
	case "":
		return false
	case "lockdb":
		if err := lockDBHelper(os.Getenv(helperDBEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "stacktest lockdb helper:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, "stacktest: unknown helper", os.Getenv(helperEnv))
	os.Exit(2)
	return true
}

// lockDBHelper takes SQLite's write lock on path (BEGIN IMMEDIATE), prints
// "locked", holds it until standard input closes, then rolls back: nothing
// is ever written.
func lockDBHelper(path string) error {
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=30000")
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_, err = conn.ExecContext(ctx, "ROLLBACK")
	return err
}

// LockDB starts another process that holds SQLite's write lock on the
// stack's database (BEGIN IMMEDIATE, nothing written) and returns when it
// holds it. The returned function releases the lock and waits for the
// process to exit; a cleanup calls it too. The test binary must call Main.
func (st *Stack) LockDB(tb testing.TB) (release func()) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=lockdb", helperDBEnv+"="+st.DBPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stderr := new(LogBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			stdin.Close()
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	tb.Cleanup(release)
	locked := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "locked" {
				locked <- true
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		locked <- false
	}()
	select {
	case ok := <-locked:
		if !ok {
			release()
			tb.Fatalf("stacktest: the lock helper ended without the lock (does TestMain call stacktest.Main?): %s", stderr.String())
		}
	case <-time.After(60 * time.Second):
		release()
		tb.Fatalf("stacktest: the lock helper did not take the lock within 60 s: %s", stderr.String())
	}
	return release
}
