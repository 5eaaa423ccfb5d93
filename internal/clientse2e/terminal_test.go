package clientse2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requirePoezioEnv makes a missing poezio or tmux a failure instead of a skip.
const requirePoezioEnv = "SASLCERT_REQUIRE_POEZIO"

// needTools skips tb (or fails it, under requirePoezioEnv) unless every
// named program is installed.
func needTools(tb testing.TB, names ...string) {
	tb.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv(requirePoezioEnv) == "" {
				tb.Skipf("%s is not installed (scripts/deps.sh installs it); set %s=1 to make this a failure", n, requirePoezioEnv)
			}
			tb.Fatalf("%s is not installed and %s is set", n, requirePoezioEnv)
		}
	}
}

// sandbox is a directory the unprivileged client owns: its HOME, XDG
// directories, tmux socket and the files it reads.
type sandbox struct {
	dir  string
	cred *syscall.Credential // nil: run as the current user (not root)
	uid  int
	gid  int
}

// newSandbox makes the directory (directly under the system's temporary
// directory, so that nobody can reach it: t.TempDir's parents are 0700
// root's), owned by nobody when running as root. Cleanup removes it.
func newSandbox(tb testing.TB) *sandbox {
	tb.Helper()
	dir, err := os.MkdirTemp("", "saslcert-clientse2e-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	sb := &sandbox{dir: dir, uid: os.Geteuid(), gid: os.Getegid()}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			tb.Fatalf("running as root and there is no user nobody to run the client as: %v", err)
		}
		sb.uid, _ = strconv.Atoi(u.Uid)
		sb.gid, _ = strconv.Atoi(u.Gid)
		sb.cred = &syscall.Credential{Uid: uint32(sb.uid), Gid: uint32(sb.gid), Groups: []uint32{}}
	}
	for _, d := range []string{"", "config", "data", "cache", "state"} {
		sb.mkdir(tb, d)
	}
	return sb
}

// path returns the sandbox path of name.
func (sb *sandbox) path(name string) string { return filepath.Join(sb.dir, name) }

// mkdir makes the directory name (0700, one level below the sandbox) owned
// by the client's user.
func (sb *sandbox) mkdir(tb testing.TB, name string) {
	tb.Helper()
	p := sb.path(name)
	if err := os.MkdirAll(p, 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chown(p, sb.uid, sb.gid); err != nil {
		tb.Fatal(err)
	}
}

// write writes data to name (mode perm) owned by the client's user.
func (sb *sandbox) write(tb testing.TB, name string, data []byte, perm os.FileMode) string {
	tb.Helper()
	p := sb.path(name)
	if d := filepath.Dir(name); d != "." {
		sb.mkdir(tb, d)
	}
	if err := os.WriteFile(p, data, perm); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chown(p, sb.uid, sb.gid); err != nil {
		tb.Fatal(err)
	}
	return p
}

// env is the client's environment: HOME and the XDG directories in the
// sandbox, a UTF-8 locale and nothing of the test's own environment but
// PATH.
func (sb *sandbox) env() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + sb.dir,
		"XDG_CONFIG_HOME=" + sb.path("config"),
		"XDG_DATA_HOME=" + sb.path("data"),
		"XDG_CACHE_HOME=" + sb.path("cache"),
		"XDG_STATE_HOME=" + sb.path("state"),
		"LANG=C.UTF-8",
		"TERM=xterm-256color",
	}
}

// command returns name args... as the client's user in the sandbox.
func (sb *sandbox) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = sb.dir
	cmd.Env = sb.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: sb.cred}
	return cmd
}

// terminal is one program running in a detached tmux session of its own
// tmux server (socket in the sandbox), read through capture-pane.
type terminal struct {
	tb      testing.TB
	sb      *sandbox
	name    string
	socket  string
	pid     int // the program's (the pane's) process
	lastErr error
}

// startTerminal starts argv in a new 200x50 tmux session called name. Cleanup
// kills that tmux server (and with it the program).
func startTerminal(tb testing.TB, sb *sandbox, name string, argv ...string) *terminal {
	tb.Helper()
	t := &terminal{tb: tb, sb: sb, name: name, socket: sb.path("tmux-" + name + ".sock")}
	args := append([]string{"-S", t.socket, "-f", "/dev/null", "new-session", "-d", "-s", name, "-x", "200", "-y", "50", "--"}, argv...)
	if out, err := sb.command("tmux", args...).CombinedOutput(); err != nil {
		tb.Fatalf("tmux new-session %s: %v\n%s", name, err, out)
	}
	tb.Cleanup(func() { t.stop() })
	out, err := t.tmux("display-message", "-p", "-t", name, "#{pane_pid}")
	if err != nil {
		tb.Fatal(err)
	}
	if t.pid, err = strconv.Atoi(strings.TrimSpace(out)); err != nil {
		tb.Fatalf("tmux: pane pid %q: %v", out, err)
	}
	return t
}

// tmux runs a tmux command against this terminal's server.
func (t *terminal) tmux(args ...string) (string, error) {
	out, err := t.sb.command("tmux", append([]string{"-S", t.socket}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tmux %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// stop ends the tmux server and the program in it (idempotent). poezio
// outlives the SIGHUP of kill-server, so its process is killed by its pid
// and waited for.
func (t *terminal) stop() {
	_, _ = t.tmux("kill-server") // already gone is fine
	if t.pid <= 0 {
		return
	}
	p, err := os.FindProcess(t.pid)
	if err != nil {
		return
	}
	_ = p.Signal(syscall.SIGKILL) // already gone is fine
	deadline := time.Now().Add(5 * time.Second)
	for alive(t.pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	t.pid = 0
}

// alive reports whether the process pid exists and is not a zombie (which
// its parent, gone with the tmux server, leaves to init to reap).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	_, after, ok := strings.Cut(string(b), ") ")
	return !ok || !strings.HasPrefix(after, "Z")
}

// screen returns what the terminal shows now ("" if tmux cannot tell).
func (t *terminal) screen() string {
	out, err := t.tmux("capture-pane", "-p", "-J", "-t", t.name)
	if err != nil {
		t.lastErr = err
		return ""
	}
	return out
}

// typeLine types the poezio command s ("/...") and Enter. In poezio's
// roster tab "/" first opens the input line: the rest is typed once the
// input shows the "/", and Enter once it shows the whole command (keys
// sent earlier are lost).
func (t *terminal) typeLine(s string) {
	t.tb.Helper()
	send := func(keys ...string) {
		t.tb.Helper()
		if _, err := t.tmux(append([]string{"send-keys", "-t", t.name}, keys...)...); err != nil {
			t.tb.Fatal(err)
		}
	}
	first, rest := s[:1], s[1:]
	send("-l", first)
	t.waitInput(first)
	send("-l", rest)
	t.waitInput(s)
	send("Enter")
}

// waitInput waits until the terminal's last line (poezio's input) is s.
func (t *terminal) waitInput(s string) {
	t.tb.Helper()
	deadline := time.Now().Add(screenTimeout)
	for {
		lines := strings.Split(strings.TrimRight(t.screen(), "\n"), "\n")
		last := strings.TrimSpace(lines[len(lines)-1])
		if last == s || strings.HasSuffix(last, s) {
			return
		}
		if time.Now().After(deadline) {
			t.tb.Fatalf("%s: the input line shows %q, not %q, after %s", t.name, last, s, screenTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls the screen until it contains every want, for at most
// timeout, and returns it; else it fails the test showing the screen.
func (t *terminal) waitFor(timeout time.Duration, want ...string) string {
	t.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := t.screen()
		missing := ""
		for _, w := range want {
			if !strings.Contains(s, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return s
		}
		if time.Now().After(deadline) {
			t.tb.Fatalf("%s: %q did not appear on the screen within %s (last tmux error: %v); the screen:\n%s", t.name, missing, timeout, t.lastErr, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// do types a poezio command and waits until answer appears on the screen
// once more than before (poezio's answers repeat: "Certificate added.").
func (t *terminal) do(command, answer string) {
	t.tb.Helper()
	before := strings.Count(t.screen(), answer)
	t.typeLine(command)
	deadline := time.Now().Add(screenTimeout)
	for {
		s := t.screen()
		if strings.Count(s, answer) > before {
			return
		}
		if time.Now().After(deadline) {
			t.tb.Fatalf("%s: %s: %q did not appear within %s; the screen:\n%s", t.name, command, answer, screenTimeout, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// splitHostPort splits "host:port".
func splitHostPort(tb testing.TB, addr string) (string, int) {
	tb.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		tb.Fatal(err)
	}
	return host, port
}
