package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// slixTimeout is the script's own hard limit; the Go side kills it a little
// later.
const slixTimeout = 90 * time.Second

// slixPython finds a python3 that can import slixmpp. The Debian package
// installs it for /usr/bin/python3, which may not be the first python3 on
// PATH (pyenv). Without one the test skips, unless SASLCERT_REQUIRE_PROSODY
// is set.
func slixPython(t *testing.T) string {
	t.Helper()
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	for _, py := range candidates {
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		err := exec.CommandContext(ctx, py, "-c", "import slixmpp").Run()
		cancel()
		if err == nil {
			return py
		}
	}
	msg := "no python3 with slixmpp (python3-slixmpp; scripts/deps.sh installs it)"
	if os.Getenv(prosodytest.RequireEnv) != "" {
		t.Fatalf("%s and %s is set", msg, prosodytest.RequireEnv)
	}
	t.Skip(msg)
	return ""
}

// 12. slixmpp, an unmodified third-party client, uploads a self-signed
// certificate with its stock xep_0257 plugin (no 'to'), lists it, and logs in
// with it over SASL EXTERNAL.
func TestIntegrationSlixmpp(t *testing.T) {
	py := slixPython(t)
	st := newStack(t)
	account := st.Register(t, "alice")
	dir := t.TempDir()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := enroll.SelfSigned(key, account, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"), filepath.Join(dir, "server.crt")
	for _, f := range []struct {
		path string
		typ  string
		der  []byte
	}{{certFile, "CERTIFICATE", der}, {keyFile, "PRIVATE KEY", kder}, {caFile, "CERTIFICATE", st.S.Cert().Raw}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	args := []string{"--addr", st.S.C2SAddr(), "--jid", account.String(),
		"--cert", certFile, "--key", keyFile, "--ca", caFile, "--name", "slixmpp laptop"}
	stdout, _, code := runSlix(t, py, st.Password("alice"), args...)
	if code != 0 {
		t.Fatalf("slix_client.py exited with status %d", code)
	}

	lines := map[string]string{}
	for line := range strings.Lines(stdout) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "slix: "); ok {
			step, fields, _ := strings.Cut(rest, " ")
			lines[step] = fields
		}
	}
	fp := storage.FingerprintOf(der).String()
	for step, want := range map[string]string{
		"uploaded": "name=slixmpp laptop",
		"listed":   "name=slixmpp laptop fingerprint=" + fp,
	} {
		if !strings.HasPrefix(lines[step], want) {
			t.Errorf("%s: %q, want %q", step, lines[step], want)
		}
	}
	if !strings.HasSuffix(lines["password-login"], "mechanism=PLAIN") {
		t.Errorf("password login: %q", lines["password-login"])
	}
	ext := lines["external-login"]
	bound, mech, _ := strings.Cut(strings.TrimPrefix(ext, "bound="), " ")
	if mech != "mechanism=EXTERNAL" {
		t.Fatalf("external login: %q, want mechanism=EXTERNAL", ext)
	}
	b, err := jid.Parse(bound)
	if err != nil || !b.Bare().Equal(account) || b.Resourcepart() == "" {
		t.Fatalf("slixmpp's EXTERNAL session is bound as %q, want %s/…", bound, account)
	}
	t.Logf("slixmpp logged in with SASL EXTERNAL as %s", b)

	// The component stored exactly what slixmpp uploaded.
	alice := st.passwordLogin(t, "alice")
	got, err := xep0257.Fetch(stepCtx(t), alice.Session, jid.JID{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "slixmpp laptop" || !bytes.Equal(got[0].Cert, der) {
		t.Fatalf("stored: %+v", stacktest.ItemNames(got))
	}

	// slixmpp tries the next mechanism after a SASL failure; the script
	// limits it to EXTERNAL. With the certificate revoked, the EXTERNAL-only
	// run fails with the server's condition and no fallback.
	if err := xep0257.RevokeCert(stepCtx(t), alice.Session, jid.JID{}, "slixmpp laptop"); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	_, stderr, code := runSlix(t, py, "", append(args, "--external-only")...)
	if code != 1 || !strings.Contains(stderr, "SASL failure: not-authorized") {
		t.Fatalf("EXTERNAL with the revoked certificate: status %d, stderr %q; want 1 and the SASL failure not-authorized", code, stderr)
	}
}

// runSlix runs testdata/slix_client.py with args (and password in its
// environment, if set) and returns its output and exit status. The script
// has its own hard timeout; the test kills it if it overruns that.
func runSlix(t *testing.T, py, password string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), slixTimeout+30*time.Second)
	defer cancel()
	args = append([]string{filepath.Join("testdata", "slix_client.py"), "--timeout", strconv.Itoa(int(slixTimeout.Seconds()))}, args...)
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if password != "" {
		cmd.Env = append(cmd.Env, "SLIX_PASSWORD="+password)
	}
	// Kill the script if the test binary dies; after a cancellation, give up
	// on its pipes soon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	t.Logf("slix_client.py %s\nstdout:\n%sstderr:\n%s", strings.Join(args[1:], " "), out.String(), errOut.String())
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &ee) && ee.Exited():
		return out.String(), errOut.String(), ee.ExitCode()
	}
	t.Fatalf("slix_client.py: %v", err)
	return "", "", -1
}
