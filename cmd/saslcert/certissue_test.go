package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
)

// pemCerts parses the PEM certificates in s.
func pemCerts(t *testing.T, s string) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func TestCertIssue(t *testing.T) {
	data := t.TempDir()
	csrFile := filepath.Join(t.TempDir(), "alice.csr")
	if err := os.WriteFile(csrFile, catest.CSRPEM(catest.NewCSR(t, catest.CSROptions{})), 0o644); err != nil {
		t.Fatal(err)
	}
	// No CA yet.
	code, _, stderr := runCLI(t, testNow, nil, "cert", "issue", "--data-dir", data, "--jid", "alice@example.org", "--csr", csrFile)
	if code != exitFailure || !strings.Contains(stderr, "saslcert ca init") {
		t.Fatalf("without a CA: exit %d, stderr %q", code, stderr)
	}
	if code, out, errOut := runCLI(t, testNow, nil, "ca", "init", "--data-dir", data); code != exitOK {
		t.Fatalf("ca init: %d %s %s", code, out, errOut)
	}

	code, stdout, stderr := runCLI(t, testNow, nil, "cert", "issue", "--data-dir", data, "--jid", "alice@example.org", "--csr", csrFile,
		"--name", "laptop", "--lifetime", "24h")
	if code != exitOK {
		t.Fatalf("cert issue: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("stderr:\n%s", stderr)
	checkOutput(t, "stderr", stderr, []string{`issued "laptop" for alice@example.org, valid until 2026-11-23T12:00:00Z`, "source enrolled", "sha256:"}, nil)
	certs := pemCerts(t, stdout)
	if len(certs) != 2 || !certs[1].IsCA {
		t.Fatalf("stdout holds %d certificates; want the certificate and the issuing CA", len(certs))
	}
	sans, err := sasl.CertSANs(certs[0])
	if err != nil || len(sans.XMPPAddrs) != 1 || sans.XMPPAddrs[0].String() != "alice@example.org" {
		t.Fatalf("xmppAddrs %v, %v", sans, err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(data, DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := db.FindCertByFingerprint(context.Background(), storage.FingerprintOf(certs[0].Raw))
	audit, aerr := db.Audit(context.Background(), "alice@example.org", 0)
	db.Close()
	if err != nil || rec.Source != storage.SourceEnrolled || rec.Name != "laptop" || rec.NotAfter.Sub(rec.NotBefore) != 24*time.Hour+time.Minute {
		t.Fatalf("record %+v, %v", rec, err)
	}
	if aerr != nil || len(audit) != 1 || audit[0].Actor != "cli" {
		t.Fatalf("audit %+v %v", audit, aerr)
	}

	// From standard input, to a file: the summary goes to stdout.
	out := filepath.Join(t.TempDir(), "chain.pem")
	csr, _ := os.ReadFile(csrFile)
	code, stdout, stderr = runCLI(t, testNow, strings.NewReader(string(csr)), "cert", "issue", "--data-dir", data, "--jid", "alice@example.org",
		"--csr", "-", "--out", out, "--no-cert-management")
	if code != exitOK || !strings.Contains(stdout, `issued "CA-issued 2026-11-22 12:00:00"`) {
		t.Fatalf("stdin: exit %d\n%s%s", code, stdout, stderr)
	}
	if b, err := os.ReadFile(out); err != nil || len(pemCerts(t, string(b))) != 2 {
		t.Fatalf("--out: %v", err)
	}

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"error/name-taken", []string{"--jid", "alice@example.org", "--csr", csrFile, "--name", "laptop"}, exitFailure, "already exists"},
		{"error/other-jid", []string{"--jid", "bob@example.org", "--csr", writeCSR(t, "alice@example.org")}, exitFailure, "only the xmppAddr bob@example.org"},
		{"error/no-jid", []string{"--csr", csrFile}, exitUsage, "jid"},
		{"error/full-jid", []string{"--jid", "alice@example.org/x", "--csr", csrFile}, exitUsage, "bare JID"},
		{"error/not-a-csr", []string{"--jid", "alice@example.org", "--csr", "../../testdata/hamlet.der"}, exitUsage, "--csr"},
		{"error/lifetime", []string{"--jid", "alice@example.org", "--csr", csrFile, "--lifetime", "1m"}, exitUsage, "--lifetime"},
		{"error/argument", []string{"--jid", "alice@example.org", "--csr", csrFile, "extra"}, exitUsage, "unexpected argument"},
		// Issue 10.5: Prosody would bind these as other accounts.
		{"error/jid-two-forms-sharp-s", []string{"--jid", "straße@example.org", "--csr", writeCSR(t, "straße@example.org")}, exitUsage,
			`--jid "straße@example.org": not usable: sasl: JID "straße@example.org": the localpart "straße" is "straße" under RFC 7622 but "strasse" for the XMPP server (RFC 3920 nodeprep)`},
		{"error/jid-two-forms-final-sigma", []string{"--jid", "σοφίας@example.org", "--csr", writeCSR(t, "σοφίας@example.org")}, exitUsage, `"σοφίασ" for the XMPP server`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"cert", "issue", "--data-dir", data}, tt.args...)
			code, _, stderr := runCLI(t, testNow, nil, args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.want)
			}
		})
	}
	// The refused issues stored nothing, under either form.
	db, err = sqlite.Open(context.Background(), filepath.Join(data, DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, account := range []string{"straße@example.org", "strasse@example.org", "σοφίας@example.org", "σοφίασ@example.org"} {
		if list, err := db.ListCerts(context.Background(), account); err != nil || len(list) != 0 {
			t.Errorf("records of %s after refused issues: %d, %v", account, len(list), err)
		}
	}
}

// writeCSR writes a CSR asking for the xmppAddr addr and returns its path.
func writeCSR(t *testing.T, addr string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "req.csr")
	if err := os.WriteFile(p, catest.CSRPEM(catest.NewCSR(t, catest.CSROptions{XMPPAddr: addr})), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
