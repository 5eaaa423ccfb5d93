package sqlite_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
	"github.com/saslcert/saslcert/storage/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) storage.Store {
		return sqlitetest.Open(t, sqlite.Options{Now: now})
	})
}

// open opens path or fails the test, closing the DB at cleanup.
func open(t *testing.T, path string, opts sqlite.Options) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// realCert is a record of a real certificate (the store does not care, but
// this is what callers store).
func realCert(t *testing.T, account, name string) *storage.Cert {
	c := certtest.New(t, certtest.Options{XMPPAddrs: []string{account}})
	return &storage.Cert{
		Account:     account,
		Name:        name,
		DER:         c.DER,
		Fingerprint: storage.FingerprintOf(c.DER),
		NotBefore:   c.Cert.NotBefore,
		NotAfter:    c.Cert.NotAfter,
		Issuer:      c.Cert.Issuer.String(),
		Source:      storage.SourceUpload,
	}
}

func add(t *testing.T, db *sqlite.DB, c *storage.Cert) {
	t.Helper()
	if err := db.AddCert(t.Context(), c, storage.AddOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certs.db")
	db := open(t, path, sqlite.Options{})
	add(t, db, realCert(t, "alice@example.org", "laptop"))
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), m)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, path string }{
		{"empty", ""},
		{"missing dir", filepath.Join(dir, "nosuch", "certs.db")},
		{"directory", dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if db, err := sqlite.Open(t.Context(), tc.path, sqlite.Options{}); err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded", tc.path)
			}
		})
	}
	t.Run("not a database", func(t *testing.T) {
		p := filepath.Join(dir, "junk.db")
		junk := make([]byte, 8192)
		rand.Read(junk)
		if err := os.WriteFile(p, junk, 0o600); err != nil {
			t.Fatal(err)
		}
		if db, err := sqlite.Open(t.Context(), p, sqlite.Options{}); err == nil {
			db.Close()
			t.Fatal("Open of a junk file succeeded")
		}
	})
}

// TestOddPath checks that URI syntax in the path is not interpreted.
func TestOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%20d&e=f")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "certs.db")
	db := open(t, path, sqlite.Options{})
	add(t, db, realCert(t, "alice@example.org", "laptop"))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the given path: %v", err)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certs.db")
	db, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := realCert(t, "alice@example.org", "laptop")
	add(t, db, c)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path, sqlite.Options{})
	got, err := db.FindCertByFingerprint(t.Context(), c.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || !got.Created.Equal(c.Created) || string(got.DER) != string(c.DER) {
		t.Fatalf("after reopen: %+v, want %+v", got, c)
	}
	if v := schemaVersion(t, path); v != sqlite.SchemaVersion() {
		t.Fatalf("user_version %d, want %d", v, sqlite.SchemaVersion())
	}
}

// schemaVersion reads user_version through a separate connection.
func schemaVersion(t *testing.T, path string) int {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var v int
	if err := raw.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLocked holds the write lock from another connection for longer than
// the busy timeout: AddCert fails with ErrUnavailable and changes nothing,
// and works once the lock is released.
func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certs.db")
	db := open(t, path, sqlite.Options{BusyTimeout: 100 * time.Millisecond})
	add(t, db, realCert(t, "alice@example.org", "first"))

	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=100")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	c := realCert(t, "alice@example.org", "second")
	start := time.Now()
	err = db.AddCert(t.Context(), c, storage.AddOptions{Actor: "test"})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("AddCert while locked: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("AddCert gave up after %v, before the 100ms busy timeout", d)
	}
	if _, err := db.SetState(t.Context(), "alice@example.org", "first", storage.StateRevoked, "test"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("SetState while locked: %v, want ErrUnavailable", err)
	}
	// Reads are not blocked by a writer in WAL mode.
	if certs, err := db.ListCerts(t.Context(), "alice@example.org"); err != nil || len(certs) != 1 || certs[0].State != storage.StateActive {
		t.Fatalf("ListCerts while locked: %d records, %v; want the first, active", len(certs), err)
	}
	if _, err := db.FindCertByFingerprint(t.Context(), c.Fingerprint); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the refused record is there: %v", err)
	}

	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	add(t, db, c)
	if _, err := db.FindCertByFingerprint(t.Context(), c.Fingerprint); err != nil {
		t.Fatal(err)
	}
}

// TestDeadlineWhileLocked checks that a writer whose deadline passes while it
// waits for a lock held by another process reports ErrUnavailable with the
// context's error. (SQLite's busy wait is not interruptible: the call
// returns when the busy timeout ends, not at the deadline.)
func TestDeadlineWhileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certs.db")
	db := open(t, path, sqlite.Options{BusyTimeout: 300 * time.Millisecond})
	other, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = db.AddCert(ctx, realCert(t, "alice@example.org", "x"), storage.AddOptions{})
	if !errors.Is(err, storage.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AddCert past its deadline: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
}

func TestImportCerts(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	db := sqlitetest.Open(t, sqlite.Options{Now: func() time.Time { return now }})
	old := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
	a := realCert(t, "alice@example.org", "laptop")
	b := realCert(t, "alice@example.org", "old")
	b.State, b.Created, b.Changed = storage.StateRevoked, old, old.Add(time.Hour)
	c := realCert(t, "bob@example.net", "laptop")
	if err := db.ImportCerts(ctx, []*storage.Cert{a, b, c}, "import"); err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || b.ID <= a.ID || c.ID <= b.ID || a.State != storage.StateActive || !a.Created.Equal(now) ||
		b.State != storage.StateRevoked || !b.Created.Equal(old) {
		t.Fatalf("records after import: %+v %+v %+v", a, b, c)
	}
	got, err := db.FindCertByFingerprint(ctx, b.Fingerprint)
	if err != nil || got.State != storage.StateRevoked || !got.Created.Equal(old) || !got.Changed.Equal(old.Add(time.Hour)) {
		t.Fatalf("imported revoked record: %+v, %v", got, err)
	}
	audit, err := db.Audit(ctx, "", 0)
	if err != nil || len(audit) != 3 || audit[0].Actor != "import" || audit[0].Action != storage.ActionAdd || !audit[0].Time.Equal(now) {
		t.Fatalf("audit after import: %+v, %v", audit, err)
	}

	// All or nothing, with the right sentinel.
	for _, tc := range []struct {
		name  string
		certs func() []*storage.Cert
		want  error
	}{
		{"duplicate in store", func() []*storage.Cert {
			d := *a
			d.Name = "again"
			return []*storage.Cert{realCert(t, "carol@example.org", "x"), &d}
		}, storage.ErrDuplicate},
		{"duplicate in batch", func() []*storage.Cert {
			x := realCert(t, "carol@example.org", "x")
			y := *x
			y.Name = "y"
			return []*storage.Cert{x, &y}
		}, storage.ErrDuplicate},
		{"name taken", func() []*storage.Cert {
			return []*storage.Cert{realCert(t, "carol@example.org", "x"), realCert(t, "alice@example.org", "laptop")}
		}, storage.ErrNameTaken},
		{"name taken in batch", func() []*storage.Cert {
			return []*storage.Cert{realCert(t, "carol@example.org", "x"), realCert(t, "carol@example.org", "x")}
		}, storage.ErrNameTaken},
		{"invalid", func() []*storage.Cert {
			x := realCert(t, "carol@example.org", "x")
			x.State = "gone"
			return []*storage.Cert{realCert(t, "carol@example.org", "y"), x}
		}, storage.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := db.ImportCerts(ctx, tc.certs(), "import")
			if !errors.Is(err, tc.want) {
				t.Fatalf("ImportCerts: %v, want %v", err, tc.want)
			}
			if l, _ := db.ListCerts(ctx, "carol@example.org"); len(l) != 0 {
				t.Fatalf("a failed import stored %d records", len(l))
			}
			if a, _ := db.Audit(ctx, "", 0); len(a) != 3 {
				t.Fatalf("a failed import wrote %d audit entries", len(a)-3)
			}
		})
	}
}

func TestFill(t *testing.T) {
	db := sqlitetest.Open(t, sqlite.Options{})
	fps := sqlitetest.Fill(t, db, 2500)
	more := sqlitetest.Fill(t, db, 10)
	if len(fps) != 2500 || len(more) != 10 {
		t.Fatalf("Fill returned %d and %d fingerprints", len(fps), len(more))
	}
	for _, fp := range []storage.Fingerprint{fps[0], fps[1234], fps[2499], more[9]} {
		c, err := db.FindCertByFingerprint(t.Context(), fp)
		if err != nil || c.State != storage.StateActive || storage.FingerprintOf(c.DER) != fp {
			t.Fatalf("filler %s: %+v, %v", fp, c, err)
		}
	}
	n := 0
	if err := db.WalkCerts(t.Context(), func(*storage.Cert) error { n++; return nil }); err != nil || n != 2510 {
		t.Fatalf("walked %d records, %v", n, err)
	}
}
