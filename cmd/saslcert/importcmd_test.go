package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/pgtest"
	"github.com/saslcert/saslcert/internal/ptytest"
	"github.com/saslcert/saslcert/modclientcerts"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
)

// peerData is the Prosody data directory whose client_certs files the real
// mod_client_certs wrote (modclientcerts.TestPeerWritesWhatWeRead).
const peerData = td + "modclientcerts/data"

// refusalOf is the text an XEP-0257 upload of the fixture's certificate
// user/name gets from sasl.CheckUpload.
func refusalOf(t *testing.T, user, name string) string {
	t.Helper()
	es, err := modclientcerts.ReadFile(filepath.Join(peerData, "example%2eorg", "client_certs", modclientcerts.PathEncode(user)+".dat"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Name == name {
			_, err := sasl.CheckUpload(e.DER, jid.MustParse(user+"@example.org"), testNow, sasl.DefaultPolicy())
			var re *sasl.RefusalError
			if !errors.As(err, &re) {
				t.Fatalf("%s %q: CheckUpload = %v, want a refusal", user, name, err)
			}
			return re.Detail
		}
	}
	t.Fatalf("no entry %s %q", user, name)
	return ""
}

func TestImportModClientCerts(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, testNow, nil, "import", "mod_client_certs", "--data-dir", dir, peerData)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFailure, out, errOut)
	}
	checkOutput(t, "stdout", out, []string{
		`imported   alice@example.org "laptop": sha256:`,
		`imported   alice@example.org "phone": sha256:`,
		`imported   bob.smith@example.org "Lukas' Telefon ü \"x\"": sha256:`,
		`refused    alice@example.org "old": ` + refusalOf(t, "alice", "old"),
		`refused    alice@example.org "my ca": ` + refusalOf(t, "alice", "my ca"),
		`refused    bob.smith@example.org "tab\there": name contains a control character`,
		"3 imported, 0 already imported, 3 refused, 0 unreadable (into " + filepath.Join(dir, DBFile) + ")",
	}, nil)
	checkOutput(t, "stderr", errOut, []string{"saslcert: saslcert import mod_client_certs: 3 certificates refused and 0 unreadable (see above); nothing else was changed\n"}, []string{"\r"})

	// What was stored: names, flags, actor.
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	certs, err := db.ListCerts(context.Background(), "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || certs[0].Name != "laptop" || certs[0].NoCertManagement || certs[1].Name != "phone" || !certs[1].NoCertManagement {
		t.Errorf("alice's records: %+v", certs)
	}
	audit, err := db.Audit(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range audit {
		if a.Actor != importActor || a.Action != storage.ActionAdd {
			t.Errorf("audit entry %+v, want adds by %q", a, importActor)
		}
	}
	if len(audit) != 3 {
		t.Errorf("%d audit entries, want 3", len(audit))
	}
	db.Close()

	// Again: nothing new, the imported ones are reported as such.
	code, out, _ = runCLI(t, testNow, nil, "import", "mod_client_certs", "--data-dir", dir, "--host", "example.org", peerData)
	if code != exitFailure {
		t.Errorf("second run: exit %d", code)
	}
	checkOutput(t, "stdout", out, []string{
		`already    alice@example.org "laptop": stored as "laptop" (active) since 2026-11-22T12:00:00Z`,
		"0 imported, 3 already imported, 3 refused, 0 unreadable",
	}, []string{"imported   "})
}

func TestImportModClientCertsErrors(t *testing.T) {
	// A copy of the fixture with a file that is not what Prosody writes,
	// one entry without a certificate, and only acceptable certificates
	// otherwise.
	src := t.TempDir()
	store := filepath.Join(src, "example%2eorg", "client_certs")
	if err := os.MkdirAll(store, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(peerData, "example%2eorg", "client_certs", "alice.dat"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"alice.dat": string(b),
		"eve.dat":   "return os.execute(\"true\");\n",
		"mal.dat":   "return {\n\t[\"x\"] = {\n\t\t[\"name\"] = \"x\";\n\t};\n};\n",
		// A user name that would make another account (x@evil.org) of
		// example.org's file, holding alice's certificate.
		"x%40evil%2eorg.dat": string(b),
	} {
		if err := os.WriteFile(filepath.Join(store, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	code, out, _ := runCLI(t, testNow, nil, "import", "mod_client_certs", "--data-dir", dir, src)
	if code != exitFailure {
		t.Errorf("exit %d", code)
	}
	checkOutput(t, "stdout", out, []string{
		`unreadable eve@example.org "*": ` + filepath.Join(store, "eve.dat") + `: modclientcerts: line 1, column 8: want a string, number, boolean or table, not "os"`,
		`unreadable mal@example.org "x": ` + filepath.Join(store, "mal.dat") + `: modclientcerts: entry "x" (line 2): has neither x509cert nor pem`,
		`imported   alice@example.org "laptop"`,
		`unreadable x@evil.org@example.org "*": ` + filepath.Join(store, "x%40evil%2eorg.dat") + `: not an account's JID`,
		"2 imported, 0 already imported, 2 refused, 3 unreadable",
	}, nil)

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no dir", []string{"import", "mod_client_certs"}, exitUsage, "want exactly one argument, Prosody's data directory"},
		{"unknown host", []string{"import", "mod_client_certs", "--data-dir", dir, "--host", "other.org", src}, exitFailure,
			"modclientcerts: no client_certs store for host other.org"},
		{"not prosody's", []string{"import", "mod_client_certs", "--data-dir", dir, dir}, exitFailure, "modclientcerts: no client_certs store under " + dir},
		{"flag after DIR", []string{"import", "mod_client_certs", src, "--data-dir", dir}, exitUsage, "--data-dir after DIR: put the flags before DIR"},
		{"bad store", []string{"import", "mod_client_certs", "--store", "mysql://x", src}, exitUsage, `--store: store "mysql://x": unknown kind`},
		{"weak policy", []string{"import", "mod_client_certs", "--min-rsa-bits", "1024", src}, exitUsage, "--min-rsa-bits 1024: at least 2048"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, testNow, nil, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}

// TestImportProgressOnTerminal: with standard error on a terminal the
// import shows its progress there; stdout keeps the report.
func TestImportProgressOnTerminal(t *testing.T) {
	ptm, tty := ptytest.Open(t)
	var out bytes.Buffer
	app := newApp(&out, tty, func() time.Time { return testNow })
	code := run(t.Context(), app, []string{"saslcert", "import", "mod_client_certs", "--data-dir", t.TempDir(), peerData})
	if code != exitFailure {
		t.Errorf("exit %d", code)
	}
	ptytest.ReadUntil(t, ptm, "import mod_client_certs (files): 2/2 (100%)")
	if strings.Contains(out.String(), "\r") {
		t.Errorf("progress on stdout: %q", out.String())
	}
}

// TestImportBinary runs the real binary, as an administrator would.
func TestImportBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "saslcert")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "import", "mod_client_certs", "--data-dir", dir, peerData)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("exit: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	checkOutput(t, "stdout", stdout.String(), []string{"3 imported, 0 already imported, 3 refused"}, nil)
	checkOutput(t, "stderr", stderr.String(), []string{"3 certificates refused"}, []string{"\r", "(files)"})
}

// TestImportIntoPostgres imports the peer's files into a real PostgreSQL
// store (--store), twice.
func TestImportIntoPostgres(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	url := srv.URL(srv.CreateDB(t))
	for i, want := range []string{"3 imported, 0 already imported, 3 refused", "0 imported, 3 already imported, 3 refused"} {
		code, out, errOut := runCLI(t, testNow, nil, "import", "mod_client_certs", "--store", url, peerData)
		if code != exitFailure {
			t.Fatalf("run %d: exit %d\n%s%s", i, code, out, errOut)
		}
		checkOutput(t, "stdout", out, []string{want, "(into " + url + ")"}, nil)
	}
}
