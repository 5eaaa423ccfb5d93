package main

import (
	"crypto/tls"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/internal/xmppclient"
)

// TestCertNewUploadThenExternal: "saslcert cert new --upload" against a real
// Prosody with saslcert logs in with the password, uploads, and prints that
// the server accepted it; the account then logs in with SASL EXTERNAL using
// the key and certificate files it wrote. The server's refusals reach the
// user: a wrong password, and an upload under a name in use (with the
// server's text).
func TestCertNewUploadThenExternal(t *testing.T) {
	st := stacktest.Start(t, stacktest.Options{})
	alice := st.Register(t, "alice")
	pwFile := writeSecret(t, st.Password("alice"))
	caFile := filepath.Join(t.TempDir(), "server-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: st.S.Cert().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	newCert := func(dir, pw string) (int, string, string) {
		return runCLI(t, time.Now(), nil, "cert", "new", "--jid", alice.String(), "--name", "laptop", "--out", dir,
			"--upload", "--server", st.S.C2SAddr(), "--ca-file", caFile, "--password-file", pw)
	}

	dir := t.TempDir()
	code, stdout, stderr := newCert(dir, pwFile)
	t.Logf("cert new --upload:\n%s%s", stdout, stderr)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	checkOutput(t, "stdout", stdout, []string{`made "laptop" for alice@example.org`, `uploaded "laptop" to alice@example.org at ` + st.S.C2SAddr() + ": the server accepted it"}, nil)

	base := filepath.Join(dir, "alice@example.org-laptop")
	pair, err := tls.LoadX509KeyPair(base+".crt", base+".key")
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.Dial(t.Context(), xmppclient.Config{JID: alice, Cert: &pair})
	if err != nil {
		t.Fatalf("EXTERNAL login with the new certificate: %v", err)
	}
	t.Logf("EXTERNAL login as %s with %s.crt: ok", c.LocalAddr(), base)
	if names := stacktest.ItemNames(stacktest.Items(t, c)); !slices.Equal(names, []string{"laptop"}) {
		t.Errorf("the account's certificates: %v; want [laptop]", names)
	}
	c.Close()

	// A second certificate under the same name: the server's refusal and
	// its text are printed (the files stay, to upload under another name).
	code, stdout, stderr = newCert(t.TempDir(), pwFile)
	t.Logf("same name again:\n%s%s", stdout, stderr)
	if code != exitFailure || !strings.Contains(stderr, "upload: the server refused the certificate: conflict") || !strings.Contains(stderr, "laptop") {
		t.Fatalf("exit %d; want 1 and the server's conflict with its text", code)
	}

	// A wrong password: the login is refused, nothing is uploaded.
	code, stdout, stderr = newCert(t.TempDir(), writeSecret(t, "not the password"))
	t.Logf("wrong password:\n%s%s", stdout, stderr)
	if code != exitFailure || !strings.Contains(stderr, "the server refused the password: SASL failure: not-authorized") {
		t.Fatalf("exit %d; want 1 and not-authorized", code)
	}
}
