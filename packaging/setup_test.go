package packaging

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/internal/stacktest"
)

// Markers of the README's setup section: every ```sh block between them is
// run by TestIntegrationManualSetup.
const (
	setupBegin = "<!-- setup:begin -->"
	setupEnd   = "<!-- setup:end -->"
)

// readmeSetup returns the shell blocks of README.md's setup section,
// dedented as Markdown shows them (by the indentation of their fence).
func readmeSetup(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(prosodytest.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), setupBegin)
	section, _, ok2 := strings.Cut(rest, setupEnd)
	if !ok || !ok2 {
		t.Fatalf("README.md has no %s ... %s section", setupBegin, setupEnd)
	}
	var blocks []string
	var cur *strings.Builder
	indent := ""
	sc := bufio.NewScanner(strings.NewReader(section))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case cur == nil && trimmed == "```sh":
			cur, indent = new(strings.Builder), line[:len(line)-len(trimmed)]
		case cur != nil && trimmed == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			if !strings.HasPrefix(line, indent) && strings.TrimSpace(line) != "" {
				t.Fatalf("README setup: line %q is less indented than its block", line)
			}
			cur.WriteString(strings.TrimPrefix(line, indent) + "\n")
		case strings.HasPrefix(trimmed, "```"):
			t.Fatalf("README setup: a code block that is not sh: %q", line)
		}
	}
	if cur != nil || len(blocks) == 0 {
		t.Fatalf("README setup: unclosed or no sh blocks")
	}
	return blocks
}

// TestIntegrationManualSetup runs the README's setup section as written,
// as root in the repository: it builds and installs the package, names the
// component and prints the Prosody block. Two things stand in for this
// machine's own Prosody, which the test leaves alone: /etc/prosody/ is a
// temporary directory, and systemctl records its calls, which the test
// then carries out: "restart prosody" starts a test Prosody that includes
// the written conf.d file (so it loads the installed plugin and reads the
// installed secret) on the component port the file names, and "enable
// --now saslcert" starts the installed unit (startUnit). Then alice uploads
// a certificate and logs in with it.
func TestIntegrationManualSetup(t *testing.T) {
	requirePackageTest(t)
	blocks := readmeSetup(t)
	if _, err := exec.LookPath("apt"); err != nil {
		t.Fatal("apt is not installed")
	}
	// The README's port: Prosody must be able to listen on it.
	const readmeAddr = "127.0.0.1:5347"
	if l, err := net.Listen("tcp", readmeAddr); err != nil {
		if os.Getenv(RequireEnv) == "" {
			t.Skipf("the README's component port %s is taken (%v); set %s to make this a failure", readmeAddr, err, RequireEnv)
		}
		t.Fatalf("the README's component port %s is taken: %v", readmeAddr, err)
	} else {
		l.Close()
	}

	dir := t.TempDir()
	prosodyDir := filepath.Join(dir, "prosody")
	if err := os.MkdirAll(filepath.Join(prosodyDir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(dir, "systemctl.calls")
	script := "systemctl() { printf '%s\\n' \"$*\" >>" + shellQuote(record) + "; }\n" +
		strings.ReplaceAll(strings.Join(blocks, ""), "/etc/prosody/", prosodyDir+"/")
	// apt waits for the dpkg lock if another install holds it.
	aptConf := filepath.Join(dir, "apt.conf")
	if err := os.WriteFile(aptConf, []byte("DPkg::Lock::Timeout \"120\";\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cleanupInstall(t)
	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir = prosodytest.RepoRoot()
	cmd.Env = append(cleanEnv(), "APT_CONFIG="+aptConf, "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's setup commands failed: %v\n%s\nscript:\n%s", err, out, script)
	}
	t.Logf("the README's setup commands:\n%s", out)
	dist.Lock()
	dist.deb = findDeb(t)
	dist.Unlock()

	calls, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(calls), "restart prosody\nenable --now saslcert\n"; got != want {
		t.Fatalf("the README's systemctl calls are %q; the test carries out only %q", got, want)
	}
	conf := filepath.Join(prosodyDir, "conf.d", "saslcert.cfg.lua")
	addr := componentAddr(t, conf)
	if addr != readmeAddr {
		t.Errorf("the printed block listens on %s, want the README's %s", addr, readmeAddr)
	}
	st := stacktest.Start(t, stacktest.Options{NoComponent: true, StartServer: includeServer(conf, addr)})
	startUnit(t, st)
	uploadAndLogin(t, st)
}

// componentAddr reads component_interfaces and component_ports from the
// printed Prosody block.
func componentAddr(t *testing.T, conf string) string {
	t.Helper()
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	iface := regexp.MustCompile(`(?m)^component_interfaces = \{ "([^"]+)" \}$`).FindSubmatch(b)
	port := regexp.MustCompile(`(?m)^component_ports = \{ (\d+) \}$`).FindSubmatch(b)
	if iface == nil || port == nil {
		t.Fatalf("%s names no component interface and port:\n%s", conf, b)
	}
	return net.JoinHostPort(string(iface[1]), string(port[1]))
}

// cleanEnv is this process's environment without SASLCERT_* settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SASLCERT_") {
			env = append(env, kv)
		}
	}
	return env
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return fmt.Sprintf("'%s'", strings.ReplaceAll(s, "'", `'\''`)) }
