package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/saslcert/saslcert/sasl"
)

// readPEM returns the DER of the one PEM block of type typ in file.
func readPEM(t *testing.T, file, typ string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != typ || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("%s: want exactly one PEM %s block", file, typ)
	}
	return blk.Bytes
}

// writeSecret writes s as a 0600 file and returns its path.
func writeSecret(t *testing.T, s string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCertNew: every key type gives a key file only its owner reads and a
// certificate that the upload check accepts, that is an end entity for
// clientAuth, and that names the account as xmppAddr, email and CN.
func TestCertNew(t *testing.T) {
	alice := jid.MustParse("alice@example.org")
	tests := []struct {
		name, key, resource, wantAddr string
	}{
		{"ec", "ec", "", "alice@example.org"},
		{"ed25519", "ed25519", "", "alice@example.org"},
		{"rsa", "rsa", "", "alice@example.org"},
		{"resource", "ec", "phone", "alice@example.org/phone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"cert", "new", "--jid", "alice@example.org", "--name", "my laptop", "--key", tc.key, "--out", dir}
			if tc.resource != "" {
				args = append(args, "--resource", tc.resource)
			}
			code, stdout, stderr := runCLI(t, testNow, nil, args...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			base := filepath.Join(dir, "alice@example.org-my_laptop")
			checkOutput(t, "stdout", stdout, []string{`made "my laptop" for ` + tc.wantAddr, "valid until 2027-11-22T12:00:00Z", base + ".key", base + ".crt"}, []string{"PKCS#12"})
			fi, err := os.Stat(base + ".key")
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode())
			}
			key, err := x509.ParsePKCS8PrivateKey(readPEM(t, base+".key", "PRIVATE KEY"))
			if err != nil {
				t.Fatal(err)
			}
			der := readPEM(t, base+".crt", "CERTIFICATE")
			up, err := sasl.CheckUpload(der, alice, testNow, sasl.DefaultPolicy())
			if err != nil {
				t.Fatalf("the upload check refuses it: %v", err)
			}
			c := up.Cert
			if !c.BasicConstraintsValid || c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature ||
				!slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
				t.Errorf("basicConstraints %v CA %v, key usage %v, EKU %v; want CA:FALSE, digitalSignature, clientAuth",
					c.BasicConstraintsValid, c.IsCA, c.KeyUsage, c.ExtKeyUsage)
			}
			if len(up.SANs.XMPPAddrs) != 1 || up.SANs.XMPPAddrs[0].String() != tc.wantAddr || up.Resource != tc.resource ||
				!slices.Equal(c.EmailAddresses, []string{"alice@example.org"}) || c.Subject.String() != "CN=alice@example.org" {
				t.Errorf("xmppAddrs %v (resource %q), emails %v, subject %q; want xmppAddr %s, email and CN alice@example.org",
					up.SANs.XMPPAddrs, up.Resource, c.EmailAddresses, c.Subject, tc.wantAddr)
			}
			if !key.(interface{ Public() crypto.PublicKey }).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(c.PublicKey) {
				t.Error("the key file does not hold the certificate's key")
			}
			// cert inspect shows the email address and finds it usable.
			code, stdout, stderr = runCLI(t, testNow, nil, "cert", "inspect", "--jid", "alice@example.org", base+".crt")
			if code != exitOK {
				t.Fatalf("cert inspect: exit %d\n%s%s", code, stdout, stderr)
			}
			checkOutput(t, "cert inspect", stdout, []string{"email addresses:     alice@example.org", "verdict for alice@example.org: usable"}, nil)
			// A second run never overwrites the key.
			code, _, stderr = runCLI(t, testNow, nil, args...)
			if code != exitFailure || !strings.Contains(stderr, "exists") {
				t.Fatalf("second run: exit %d, stderr %q; want a refusal", code, stderr)
			}
			if again := readPEM(t, base+".crt", "CERTIFICATE"); string(again) != string(der) {
				t.Fatal("the second run changed the certificate")
			}
		})
	}
}

// TestCertNewP12: the PKCS#12 file holds the key and the certificate under
// the password, in the modern (AES) or the legacy (3DES) form, and OpenSSL 3
// reads both without its legacy provider.
func TestCertNewP12(t *testing.T) {
	const password = "correct horse battery staple"
	pwFile := writeSecret(t, password)
	tests := []struct {
		name    string
		legacy  bool
		wantAlg string // in openssl pkcs12 -info's output
	}{
		{"modern", false, "AES-256-CBC"},
		{"legacy", true, "pbeWithSHA1And3-KeyTripleDES-CBC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"cert", "new", "--jid", "alice@example.org", "--name", "phone", "--out", dir, "--p12", "--p12-password-file", pwFile}
			if tc.legacy {
				args = append(args, "--p12-legacy")
			}
			code, stdout, stderr := runCLI(t, testNow, nil, args...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			p12File := filepath.Join(dir, "alice@example.org-phone.p12")
			checkOutput(t, "stdout", stdout, []string{"PKCS#12:     " + p12File}, nil)
			data, err := os.ReadFile(p12File)
			if err != nil {
				t.Fatal(err)
			}
			if fi, _ := os.Stat(p12File); fi.Mode().Perm() != 0o600 {
				t.Errorf("PKCS#12 file mode %v; want 0600", fi.Mode())
			}
			key, cert, err := pkcs12.Decode(data, password)
			if err != nil {
				t.Fatal(err)
			}
			if string(cert.Raw) != string(readPEM(t, filepath.Join(dir, "alice@example.org-phone.crt"), "CERTIFICATE")) ||
				!key.(interface{ Public() crypto.PublicKey }).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
				t.Fatal("the PKCS#12 file does not hold the certificate and its key")
			}
			if _, _, err := pkcs12.Decode(data, "wrong"); err == nil {
				t.Fatal("the PKCS#12 file opens with a wrong password")
			}
			if _, err := exec.LookPath("openssl"); err != nil {
				t.Skip("openssl is not installed (scripts/deps.sh installs it)")
			}
			out, err := exec.Command("openssl", "pkcs12", "-info", "-in", p12File, "-passin", "file:"+pwFile, "-nodes").CombinedOutput()
			if err != nil {
				t.Fatalf("openssl pkcs12 -info: %v\n%s", err, out)
			}
			t.Logf("openssl pkcs12 -info:\n%s", out)
			checkOutput(t, "openssl pkcs12 -info", string(out), []string{tc.wantAlg, "subject=CN = alice@example.org", "BEGIN PRIVATE KEY", "BEGIN CERTIFICATE"}, nil)
		})
	}
}

// TestCertNewRefusals: wrong usage and unusable passwords write nothing.
func TestCertNewRefusals(t *testing.T) {
	worldReadable := writeSecret(t, "pw")
	if err := os.Chmod(worldReadable, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no-jid", nil, exitUsage, `"jid" not set`},
		{"domain-jid", []string{"--jid", "example.org"}, exitUsage, "want an account"},
		{"full-jid", []string{"--jid", "alice@example.org/phone"}, exitUsage, "use --jid alice@example.org --resource phone"},
		{"days-zero", []string{"--jid", "alice@example.org", "--days", "0"}, exitUsage, "--days 0"},
		{"days-too-many", []string{"--jid", "alice@example.org", "--days", "3651"}, exitUsage, "--days 3651"},
		{"key-dsa", []string{"--jid", "alice@example.org", "--key", "dsa"}, exitUsage, `"dsa": want ec, ed25519 or rsa`},
		{"legacy-without-p12", []string{"--jid", "alice@example.org", "--p12-legacy"}, exitUsage, "--p12-legacy needs --p12"},
		{"server-without-upload", []string{"--jid", "alice@example.org", "--server", "127.0.0.1:5222"}, exitUsage, "--server needs --upload"},
		{"bad-resource", []string{"--jid", "alice@example.org", "--resource", "\u0000"}, exitUsage, "--resource"},
		{"p12-no-terminal", []string{"--jid", "alice@example.org", "--p12"}, exitFailure, "not a terminal"},
		{"p12-world-readable", []string{"--jid", "alice@example.org", "--p12", "--p12-password-file", worldReadable}, exitFailure, "can be read by every user"},
		{"p12-empty", []string{"--jid", "alice@example.org", "--p12", "--p12-password-file", empty}, exitFailure, "is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SASLCERT_P12_PASSWORD", "")
			dir := t.TempDir()
			code, stdout, stderr := runCLI(t, testNow, nil, append([]string{"cert", "new", "--out", dir}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q\n%s", code, stderr, tc.code, tc.want, stdout)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("wrote %d files", len(entries))
			}
		})
	}
}
