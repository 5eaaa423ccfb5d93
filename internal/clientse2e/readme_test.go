package clientse2e

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/xep0257"
)

// readmeCommand returns the shell command in the repository's README.md
// that starts with prefix, with its backslash-continued lines, exactly as a
// reader would paste it (it fails tb if there is none).
func readmeCommand(tb testing.TB, prefix string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		cmd := []string{l}
		for j := i; strings.HasSuffix(lines[j], "\\") && j+1 < len(lines); j++ {
			cmd = append(cmd, lines[j+1])
		}
		return strings.Join(cmd, "\n")
	}
	tb.Fatalf("README.md has no command starting with %q", prefix)
	return ""
}

// runShell runs script with bash in dir and fails tb on an error.
func runShell(tb testing.TB, dir, script string) string {
	tb.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("%s\n: %v\n%s", script, err, out)
	}
	return string(out)
}

// readmeOpenSSLCert runs the README's OpenSSL command for a client
// certificate (for alice@example.org) in a new directory and returns the
// paths of the key and the certificate it wrote.
func readmeOpenSSLCert(tb testing.TB) (key, cert string) {
	tb.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		tb.Skip("openssl is not installed (scripts/deps.sh installs it)")
	}
	dir := tb.TempDir()
	runShell(tb, dir, readmeCommand(tb, "openssl req -x509 "))
	return filepath.Join(dir, "alice.key"), filepath.Join(dir, "alice.crt")
}

// TestREADMEOpenSSLCommand: the README's OpenSSL command, as pasted, makes a
// certificate that a real Prosody with saslcert accepts in an XEP-0257
// upload and then lets log in with SASL EXTERNAL; its PKCS#12 command makes
// a file OpenSSL reads back.
func TestREADMEOpenSSLCommand(t *testing.T) {
	keyFile, certFile := readmeOpenSSLCert(t)
	st := stacktest.Start(t, stacktest.Options{})
	alice := st.Register(t, "alice")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.LoginPassword(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := xep0257.AppendCert(t.Context(), c.Session, jid.JID{}, "openssl", pair.Certificate[0], false); err != nil {
		t.Fatalf("upload of the README's certificate: %v", err)
	}
	ext, err := st.Dial(t.Context(), xmppclient.Config{JID: alice, Cert: &pair})
	if err != nil {
		t.Fatalf("EXTERNAL login with the README's certificate: %v", err)
	}
	ext.Close()

	dir := filepath.Dir(certFile)
	p12 := readmeCommand(t, "openssl pkcs12 -export ")
	runShell(t, dir, p12+" -passout pass:correct-horse")
	out := runShell(t, dir, "openssl pkcs12 -info -in alice.p12 -passin pass:correct-horse -nodes")
	if !strings.Contains(out, "subject=CN = alice@example.org") || !strings.Contains(out, "BEGIN PRIVATE KEY") {
		t.Fatalf("openssl pkcs12 -info:\n%s", out)
	}
}

// TestREADMEOpenSSLCommandNeedsCAFalse: what the README says of its
// basicConstraints line holds: without it OpenSSL 3 makes a CA certificate,
// which the upload check refuses, naming the reason.
func TestREADMEOpenSSLCommandNeedsCAFalse(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed (scripts/deps.sh installs it)")
	}
	cmd := readmeCommand(t, "openssl req -x509 ")
	const line = "  -addext basicConstraints=critical,CA:FALSE \\\n"
	if !strings.Contains(cmd, line) {
		t.Fatalf("the README's command has no line %q:\n%s", line, cmd)
	}
	dir := t.TempDir()
	runShell(t, dir, strings.Replace(cmd, line, "", 1))
	b, err := os.ReadFile(filepath.Join(dir, "alice.crt"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM certificate")
	}
	_, err = sasl.CheckUpload(blk.Bytes, jid.MustParse("alice@example.org"), time.Now(), sasl.DefaultPolicy())
	var r *sasl.RefusalError
	if !errors.As(err, &r) || r.Reason != sasl.ReasonCA {
		t.Fatalf("without CA:FALSE: CheckUpload = %v; want the reason %s", err, sasl.ReasonCA)
	}
}
