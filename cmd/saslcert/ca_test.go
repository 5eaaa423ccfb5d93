package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/internal/catest"
)

// runCA runs saslcert with args in process, with the ca command registered
// (if commands() does not have it yet).
func runCA(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	now := func() time.Time { return testNow }
	app := newApp(&out, &errOut, now)
	if app.Command("ca") == nil {
		e := &env{stdout: &out, stderr: &errOut, now: now, log: slog.New(slog.DiscardHandler)}
		app.Commands = append(app.Commands, caCommand(e))
		setUsageErrors(app.Commands)
	}
	app.Reader = strings.NewReader("")
	code = run(t.Context(), app, append([]string{"saslcert"}, args...))
	return code, out.String(), errOut.String()
}

func TestCAInitAndCRL(t *testing.T) {
	data := t.TempDir()
	code, stdout, stderr := runCA(t, "ca", "init", "--data-dir", data)
	if code != exitOK {
		t.Fatalf("ca init: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("ca init:\n%s", stdout)
	dir := filepath.Join(data, "ca")
	checkOutput(t, "stdout", stdout, []string{"created the embedded CA in " + dir, "CN=saslcert root CA", "sha256:", filepath.Join(dir, "root.crt")},
		[]string{"PRIVATE KEY"})
	for name, mode := range map[string]fs.FileMode{"root.key": 0o600, "ca.key": 0o600, "root.crt": 0o644, "ca.crt": 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v, want %v", name, err, st.Mode().Perm(), mode)
		}
	}

	// Never overwritten.
	before, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	code, _, stderr = runCA(t, "ca", "init", "--data-dir", data)
	if code != exitFailure || !strings.Contains(stderr, "already exists") {
		t.Fatalf("second ca init: exit %d, stderr %q", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.key")); !bytes.Equal(before, after) {
		t.Fatal("the CA key changed")
	}

	// Revoke one certificate, then the CRL lists it (PEM on stdout).
	ca, err := localca.Load(dir, localca.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(t.Context(), &enroll.IssueRequest{Account: jid.MustParse("alice@example.org"), CSR: catest.NewCSR(t, catest.CSROptions{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Revoke(t.Context(), &enroll.RevokeRequest{Cert: is.Cert, Reason: enroll.ReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCA(t, "ca", "crl", "--data-dir", data)
	if code != exitOK {
		t.Fatalf("ca crl: exit %d: %s", code, stderr)
	}
	b, _ := pem.Decode([]byte(stdout))
	if b == nil || b.Type != "X509 CRL" {
		t.Fatalf("ca crl stdout is not a PEM CRL:\n%s", stdout)
	}
	crl := parseCRL(t, b.Bytes, ca)
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(is.Cert.SerialNumber) != 0 {
		t.Fatalf("CRL entries %+v, want serial %x", crl.RevokedCertificateEntries, is.Cert.SerialNumber)
	}

	// DER to a file.
	out := filepath.Join(t.TempDir(), "ca.crl")
	code, stdout, stderr = runCA(t, "ca", "crl", "--data-dir", data, "--format", "der", "--out", out)
	if code != exitOK {
		t.Fatalf("ca crl --out: exit %d: %s", code, stderr)
	}
	checkOutput(t, "stdout", stdout, []string{"wrote CRL number", "(1 revoked", out}, nil)
	der, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	parseCRL(t, der, ca)
}

func parseCRL(t *testing.T, der []byte, ca *localca.CA) *x509.RevocationList {
	t.Helper()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ca.Cert()); err != nil {
		t.Fatal(err)
	}
	return crl
}

func TestCAUsage(t *testing.T) {
	data := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"error/no-subcommand", []string{"ca"}, exitUsage, "missing command (one of: init, crl)"},
		{"error/init-empty-data-dir", []string{"ca", "init", "--data-dir", ""}, exitUsage, "--data-dir must not be empty"},
		{"error/init-argument", []string{"ca", "init", "--data-dir", data, "extra"}, exitUsage, `unexpected argument "extra"`},
		{"error/crl-format", []string{"ca", "crl", "--data-dir", data, "--format", "txt"}, exitUsage, `--format "txt": want pem or der`},
		{"error/crl-no-ca", []string{"ca", "crl", "--data-dir", data}, exitFailure, "saslcert ca init"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCA(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q (stdout %q)", code, stderr, tc.code, tc.stderr, stdout)
			}
		})
	}
	t.Run("ok/data-dir-from-env", func(t *testing.T) {
		t.Setenv("SASLCERT_DATA_DIR", data)
		if code, _, stderr := runCA(t, "ca", "init"); code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if code, stdout, _ := runCA(t, "ca", "crl"); code != exitOK || !strings.HasPrefix(stdout, "-----BEGIN X509 CRL-----") {
			t.Fatalf("exit %d: %q", code, stdout)
		}
	})
}
