package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/pgtest"
	"github.com/saslcert/saslcert/internal/ptytest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
)

// countRows opens the SQLite file path and counts its certificates and
// audit entries.
func countRows(t *testing.T, path string) map[storage.Table]int64 {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := db.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStoreCopySQLite(t *testing.T) {
	src, _ := seedAdminStore(t) // alice: 3 certificates, bob: 1
	from := "sqlite:" + filepath.Join(src, DBFile)
	toPath := filepath.Join(t.TempDir(), "copy.db")
	to := "sqlite:" + toPath
	code, out, errOut := runCLI(t, testNow, nil, "store", "copy", "--from", from, "--to", to)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	checkOutput(t, "stdout", out, []string{
		"certs: 4 rows, sha256:", "audit: 4 rows, sha256:", "tombstones: 0 rows", "watchers: 0 rows", "(source and target agree)",
		"copied " + filepath.Join(src, DBFile) + " to " + toPath + ": verified\n",
	}, nil)
	checkOutput(t, "stderr", errOut, nil, []string{"\r", "rows)", "warning"})
	if n := countRows(t, toPath); n[storage.TableCerts] != 4 || n[storage.TableAudit] != 4 {
		t.Errorf("target rows %v", n)
	}

	// Again: the target is not empty.
	code, _, errOut = runCLI(t, testNow, nil, "store", "copy", "--from", from, "--to", to)
	if code != exitFailure {
		t.Errorf("second copy: exit %d", code)
	}
	checkOutput(t, "stderr", errOut, []string{"saslcert: saslcert store copy: the target " + toPath +
		" is not empty (rows: certs: 4, audit: 4, tombstones: 0, watchers: 0); nothing was copied. Pass --force to delete everything in it and copy over it\n"}, nil)

	// --force replaces it (after a change in the source).
	code, _, _ = runCLI(t, testNow, nil, "cert", "revoke", "--data-dir", src, "--jid", "bob@example.org", "--name", "desk", "--wait", "0")
	if code != exitOK {
		t.Fatalf("revoke: exit %d", code)
	}
	code, out, errOut = runCLI(t, testNow, nil, "store", "copy", "--from", from, "--to", to, "--force")
	if code != exitOK {
		t.Fatalf("--force: exit %d\n%s%s", code, out, errOut)
	}
	checkOutput(t, "stdout", out, []string{"audit: 5 rows"}, nil)

	// A component running on the source is warned about.
	db, err := sqlite.Open(context.Background(), filepath.Join(src, DBFile), sqlite.Options{Now: func() time.Time { return testNow.Add(-2 * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.MarkPassedOn(context.Background(), "certs.example.org", 1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, _, errOut = runCLI(t, testNow, nil, "store", "copy", "--from", from, "--to", "sqlite:"+filepath.Join(t.TempDir(), "c.db"))
	if code != exitOK {
		t.Fatalf("copy with a running component: exit %d: %s", code, errOut)
	}
	checkOutput(t, "stderr", errOut, []string{"warning: --from " + filepath.Join(src, DBFile) +
		": a running saslcert serve (certs.example.org) read it 2s ago; changes made after the copy's snapshot stay behind; stop it first\n"}, nil)

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"same store", []string{"--from", from, "--to", from}, exitUsage, "--from and --to name the same store"},
		{"same file, two spellings", []string{"--from", from, "--to", "sqlite://" + filepath.Join(src, DBFile)}, exitUsage, "--from and --to name the same store"},
		{"no source", []string{"--from", "sqlite:" + filepath.Join(t.TempDir(), "none.db"), "--to", to}, exitFailure, "no store there"},
		{"missing --to", []string{"--from", from}, exitUsage, `Required flag "to" not set`},
		{"password in url", []string{"--from", from, "--to", "postgres://u:secret@127.0.0.1/db"}, exitUsage, "a password in the store URL: command lines and environments can be read by other users; put the password in a file named by --store-password-file, or use PGPASSWORD or PGPASSFILE (for this command: --to-password-file)"},
		{"unknown kind", []string{"--from", "mysql://x", "--to", to}, exitUsage, `--from: store "mysql://x": unknown kind`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, testNow, nil, append([]string{"store", "copy"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}

// TestStoreCopyProgressOnTerminal: progress on a terminal, in rows.
func TestStoreCopyProgressOnTerminal(t *testing.T) {
	src, _ := seedAdminStore(t)
	ptm, tty := ptytest.Open(t)
	var out bytes.Buffer
	app := newApp(&out, tty, func() time.Time { return testNow })
	code := run(t.Context(), app, []string{"saslcert", "store", "copy", "--from", "sqlite:" + filepath.Join(src, DBFile),
		"--to", "sqlite:" + filepath.Join(t.TempDir(), "c.db")})
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	ptytest.ReadUntil(t, ptm, "store copy (rows): 8/8 (100%)")
}

// TestStoreCopyPostgres: SQLite -> PostgreSQL -> SQLite with the command,
// on a real PostgreSQL, the password read from a file.
func TestStoreCopyPostgres(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	db := srv.CreateDB(t)
	url := srv.URL(db)
	src, _ := seedAdminStore(t)
	from := "sqlite:" + filepath.Join(src, DBFile)
	code, out, errOut := runCLI(t, testNow, nil, "store", "copy", "--from", from, "--to", url)
	if code != exitOK {
		t.Fatalf("to postgres: exit %d\n%s%s", code, out, errOut)
	}
	back := filepath.Join(t.TempDir(), "back.db")
	code, out2, errOut := runCLI(t, testNow, nil, "store", "copy", "--from", url, "--to", "sqlite:"+back)
	if code != exitOK {
		t.Fatalf("back: exit %d\n%s%s", code, out2, errOut)
	}
	sums := func(s string) string { return s[:strings.Index(s, "copied ")] }
	if sums(out) != sums(out2) {
		t.Errorf("sums differ:\n%s\n%s", out, out2)
	}
	// The PostgreSQL target is not empty now.
	code, _, errOut = runCLI(t, testNow, nil, "store", "copy", "--from", from, "--to", url)
	if code != exitFailure || !strings.Contains(errOut, "is not empty (rows: certs: 4, audit: 4") {
		t.Errorf("again: exit %d, %s", code, errOut)
	}
	// A password file that is not there is an error naming it.
	code, _, errOut = runCLI(t, testNow, nil, "store", "copy", "--from", from, "--to", url, "--force",
		"--to-password-file", filepath.Join(t.TempDir(), "nope"))
	if code != exitFailure || !strings.Contains(errOut, "nope") {
		t.Errorf("missing password file: exit %d, %s", code, errOut)
	}
	_ = os.Remove(back)
}
