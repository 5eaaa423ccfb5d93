package apie2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/storage"
)

func TestMain(m *testing.M) { stacktest.Main(m) }

// TestIntegrationReadmeWalkthrough runs the README's "Automating from your
// organisation" commands, as pasted, against the real saslcert serve (with
// the embedded CA and an HTTP listener) in front of a real Prosody: make a
// key, register the client, sign an assertion, get a token, enroll, revoke
// the leaver. It needs bash, openssl, curl and jq (scripts/deps.sh).
func TestIntegrationReadmeWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	for _, tool := range []string{"bash", "openssl", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv(prosodytest.RequireEnv) != "" {
				t.Fatalf("%s is needed (scripts/deps.sh installs it): %v", tool, err)
			}
			t.Skipf("no %s: %v", tool, err)
		}
	}
	script := readmeWalkthrough(t)
	st := stacktest.Start(t, stacktest.Options{Domain: domain, DataDir: filepath.Join(t.TempDir(), "data"), NoComponent: true})
	bin := stacktest.Binary(t)
	if out, err := exec.Command(bin, "ca", "init", "--data-dir", st.DataDir).CombinedOutput(); err != nil {
		t.Fatalf("saslcert ca init: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	args := append(st.ServeArgs(), "--http-listen", addr, "--http-public-url", "http://"+addr)
	st.StartCommand(t, args, "SASLCERT_SECRET_FILE="+st.SecretFile())
	waitListening(t, addr)

	work := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"), "SASLCERT_DATA_DIR="+st.DataDir,
		"API=http://"+addr)
	out, err := cmd.CombinedOutput()
	t.Logf("the walkthrough's output:\n%s", out)
	if err != nil {
		t.Fatalf("the walkthrough failed: %v", err)
	}
	for _, want := range []string{"subject=CN = alice@example.org", `"name":"laptop"`, `"revoked":[{`, `"actor":"api:hr","action":"add"`,
		`"actor":"api:hr","action":"revoke"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	db, err := st.OpenStore(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	certs, err := db.ListCerts(t.Context(), "alice@"+domain)
	if err != nil || len(certs) != 1 || certs[0].State != storage.StateRevoked || certs[0].Source != storage.SourceEnrolled {
		t.Fatalf("alice's certificates after the walkthrough: %+v, %v", certs, err)
	}
}

// readmeWalkthrough returns the sh blocks of README.md between the
// walkthrough markers, joined.
func readmeWalkthrough(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(prosodytest.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "<!-- walkthrough:")
	end := strings.Index(s, "<!-- end walkthrough -->")
	if start < 0 || end < start {
		t.Fatal("README.md has no walkthrough markers")
	}
	var script strings.Builder
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s[start:end], -1) {
		script.WriteString(m[1])
	}
	if script.Len() == 0 {
		t.Fatal("no sh blocks in the walkthrough")
	}
	return script.String()
}

// freeAddr is a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
