package storecopy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/pgtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/postgres"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/storecopy"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// store is what the tests need of a backend.
type store interface {
	storage.Store
	storage.Exporter
	storage.Importer
}

var clock = time.Date(2026, 11, 22, 12, 0, 0, 123456000, time.UTC)

func openSQLite(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"), sqlite.Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// seed fills every table: active, disabled and revoked records (one
// renewal-revoked with its key), an account deleted (tombstone), two
// watchers' marks; names and accounts with non-ASCII bytes.
func seed(t *testing.T, db storage.Store) {
	t.Helper()
	ctx := t.Context()
	add := func(account, name string, key certtest.KeyType) *storage.Cert {
		c := certtest.New(t, certtest.Options{XMPPAddrs: []string{account}, KeyType: key})
		up, err := sasl.CheckUpload(c.DER, jid.MustParse(account), certtest.Now, sasl.DefaultPolicy())
		if err != nil {
			t.Fatal(err)
		}
		rec := up.Record(name, name == "phone", storage.SourceUpload)
		if err := db.AddCert(ctx, rec, storage.AddOptions{Actor: "alice@example.org/x"}); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	add("alice@example.org", "laptop", certtest.ECDSAP256)
	add("alice@example.org", "phone", certtest.Ed25519)
	add("alice@example.org", "tablet ü", certtest.ECDSAP256)
	add("bob@example.org", "desk", certtest.ECDSAP256)
	add("zoë@example.org", "x", certtest.ECDSAP256)
	if _, err := db.SetState(ctx, "alice@example.org", "phone", storage.StateDisabled, "cli"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RevokeKey(ctx, "alice@example.org", "tablet ü", "cli"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RevokeAccount(ctx, "bob@example.org", storage.RevokeAccountOptions{Actor: "plugin", Deleted: true}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"certs.example.org", "certs.b.example"} {
		if err := db.MarkPassedOn(ctx, w, 3); err != nil {
			t.Fatal(err)
		}
	}
}

// contents reads everything through the Store methods.
type contents struct {
	Certs      []*storage.Cert
	Audit      []storage.AuditEntry
	Tombstones []string
	Marks      []storage.PassedOnMark
}

func read(t *testing.T, db storage.Store) contents {
	t.Helper()
	var c contents
	if err := db.WalkCerts(t.Context(), func(r *storage.Cert) error { c.Certs = append(c.Certs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	var err error
	if c.Audit, err = db.AuditSince(t.Context(), 0, 0); err != nil {
		t.Fatal(err)
	}
	if c.Tombstones, err = db.Tombstones(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c.Marks, err = db.PassedOn(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c
}

// copyAndCheck copies src to dst and checks everything arrived, and that
// the target's sequences continue after the copied IDs.
func copyAndCheck(t *testing.T, src, dst store) {
	t.Helper()
	rows := 0
	rep, err := storecopy.Copy(t.Context(), src, dst, storecopy.Options{Row: func() { rows++ }})
	if err != nil {
		t.Fatal(err)
	}
	want := read(t, src)
	if got := read(t, dst); !reflect.DeepEqual(got, want) {
		t.Fatalf("target differs:\n got %+v\nwant %+v", got, want)
	}
	n, err := dst.Count(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, s := range rep.Tables {
		if n[s.Table] != s.Rows {
			t.Errorf("%s: Count %d, report %d", s.Table, n[s.Table], s.Rows)
		}
		total += int(s.Rows)
	}
	if rows != total || total == 0 {
		t.Errorf("Row called %d times for %d rows", rows, total)
	}
	srcSums, err := storecopy.Digest(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(srcSums, rep.Tables) {
		t.Errorf("report %v, source digest %v", rep.Tables, srcSums)
	}
}

// checkContinues adds a record to a copied store: its ID and its audit
// entry's ID follow the copied ones.
func checkContinues(t *testing.T, db storage.Store) {
	t.Helper()
	before := read(t, db)
	c := certtest.New(t, certtest.Options{XMPPAddrs: []string{"carol@example.org"}})
	up, err := sasl.CheckUpload(c.DER, jid.MustParse("carol@example.org"), certtest.Now, sasl.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	rec := up.Record("new", false, storage.SourceUpload)
	if err := db.AddCert(t.Context(), rec, storage.AddOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if last := before.Certs[len(before.Certs)-1].ID; rec.ID <= last {
		t.Errorf("new record id %d, copied ones up to %d", rec.ID, last)
	}
	a, err := db.AuditSince(t.Context(), before.Audit[len(before.Audit)-1].ID, 0)
	if err != nil || len(a) != 1 {
		t.Errorf("audit after the copied entries: %v, %v", a, err)
	}
}

func TestCopySQLite(t *testing.T) {
	src, dst := openSQLite(t), openSQLite(t)
	seed(t, src)
	copyAndCheck(t, src, dst)
	checkContinues(t, dst)
}

func TestCopyRefusesNonEmpty(t *testing.T) {
	src, dst := openSQLite(t), openSQLite(t)
	seed(t, src)
	seed(t, dst) // other certificates
	before := read(t, dst)
	_, err := storecopy.Copy(t.Context(), src, dst, storecopy.Options{})
	if !errors.Is(err, storage.ErrNotEmpty) {
		t.Fatalf("Copy into a non-empty store: %v, want ErrNotEmpty", err)
	}
	if got := read(t, dst); !reflect.DeepEqual(got, before) {
		t.Fatal("target changed")
	}
	if _, err := storecopy.Copy(t.Context(), src, dst, storecopy.Options{Replace: true}); err != nil {
		t.Fatalf("Copy with Replace: %v", err)
	}
	if got, want := read(t, dst), read(t, src); !reflect.DeepEqual(got, want) {
		t.Fatal("target after Replace differs from the source")
	}
}

// rowsOf exports src into a slice.
func rowsOf(t *testing.T, src storage.Exporter) []storage.Row {
	t.Helper()
	var rows []storage.Row
	if err := src.Export(t.Context(), func(r storage.Row) error { rows = append(rows, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return rows
}

// importCases are bad imports: each must fail with want and change nothing.
func importCases(t *testing.T, src storage.Exporter) []struct {
	name string
	rows func(storage.RowFunc) error
	want error
} {
	rows := rowsOf(t, src)
	feed := func(rs []storage.Row) func(storage.RowFunc) error {
		return func(fn storage.RowFunc) error {
			for _, r := range rs {
				if err := fn(r); err != nil {
					return err
				}
			}
			return nil
		}
	}
	badFP := *rows[0].(*storage.Cert)
	badFP.Fingerprint[0] ^= 1
	// Another certificate (one byte more) under the active name of rows[0].
	dupName := *rows[0].(*storage.Cert)
	dupName.ID = 100
	dupName.DER = append(append([]byte(nil), dupName.DER...), 0)
	dupName.Fingerprint = storage.FingerprintOf(dupName.DER)
	sourceFailed := errors.New("the source broke")
	return []struct {
		name string
		rows func(storage.RowFunc) error
		want error
	}{
		{"fingerprint not the DER's", feed(append([]storage.Row{&badFP}, rows[1:]...)), storage.ErrInvalid},
		{"certificate twice", feed(append([]storage.Row{rows[0]}, rows...)), storage.ErrDuplicate},
		{"active name twice", feed(append(append([]storage.Row{}, rows[:2]...), &dupName)), storage.ErrNameTaken},
		{"tables out of order", feed([]storage.Row{rows[len(rows)-1], rows[0]}), storage.ErrInvalid},
		{"unknown action", feed([]storage.Row{&storage.AuditEntry{ID: 1, Action: "delete"}}), storage.ErrInvalid},
		{"source fails half way", func(fn storage.RowFunc) error {
			if err := fn(rows[0]); err != nil {
				return err
			}
			return sourceFailed
		}, sourceFailed},
	}
}

func TestImportRefusesBadRows(t *testing.T) {
	src := openSQLite(t)
	seed(t, src)
	for _, tc := range importCases(t, src) {
		t.Run(tc.name, func(t *testing.T) {
			dst := openSQLite(t)
			err := dst.Import(t.Context(), false, tc.rows)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Import: %v, want %v", err, tc.want)
			}
			n, err := dst.Count(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for tb, k := range n {
				if k != 0 {
					t.Errorf("%s has %d rows after a failed import", tb, k)
				}
			}
		})
	}
}

// dropping is a target that loses the last row it is given (a fault).
type dropping struct{ storecopy.Target }

func (d dropping) Import(ctx context.Context, replace bool, rows func(storage.RowFunc) error) error {
	var all []storage.Row
	if err := rows(func(r storage.Row) error { all = append(all, r); return nil }); err != nil {
		return err
	}
	return d.Target.Import(ctx, replace, func(fn storage.RowFunc) error {
		for _, r := range all[:len(all)-1] {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestCopyDetectsMismatch(t *testing.T) {
	src, dst := openSQLite(t), openSQLite(t)
	seed(t, src)
	_, err := storecopy.Copy(t.Context(), src, dropping{dst}, storecopy.Options{})
	var me *storecopy.MismatchError
	if !errors.As(err, &me) || me.Source.Table != storage.TableWatchers || me.Source.Rows != me.Target.Rows+1 {
		t.Fatalf("Copy = %v, want a *MismatchError on watchers", err)
	}
}

func TestDigestIsCanonical(t *testing.T) {
	// The same rows give the same sums; any changed field changes them.
	src := openSQLite(t)
	seed(t, src)
	a, err := storecopy.Digest(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := storecopy.Digest(t.Context(), src)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two digests of one store differ")
	}
	rows := rowsOf(t, src)
	base := func() storecopy.Summer {
		var s storecopy.Summer
		for _, r := range rows {
			s.Add(r)
		}
		return s
	}
	s0 := base()
	want := s0.Sums()
	c := *rows[0].(*storage.Cert)
	c.Changed = c.Changed.Add(time.Microsecond)
	var s storecopy.Summer
	s.Add(&c)
	for _, r := range rows[1:] {
		s.Add(r)
	}
	if reflect.DeepEqual(s.Sums()[0], want[0]) {
		t.Error("a changed time did not change the digest")
	}
}

// TestCopySQLitePostgresSQLite copies a seeded SQLite store into a real
// PostgreSQL database and from there into a fresh SQLite file: all three
// hold the same rows and sums.
func TestCopySQLitePostgresSQLite(t *testing.T) {
	srv := pgtest.Shared(t)
	pg, err := postgres.Open(t.Context(), srv.URL(srv.CreateDB(t)), postgres.Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	a, b := openSQLite(t), openSQLite(t)
	seed(t, a)
	copyAndCheck(t, a, pg)
	copyAndCheck(t, pg, b)
	sa, err := storecopy.Digest(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := storecopy.Digest(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sa, sb) {
		t.Errorf("sqlite -> postgres -> sqlite changed the sums:\n%v\n%v", sa, sb)
	}
	checkContinues(t, pg)
	// A non-empty PostgreSQL target is refused, and bad rows change nothing.
	if _, err := storecopy.Copy(t.Context(), a, pg, storecopy.Options{}); !errors.Is(err, storage.ErrNotEmpty) {
		t.Errorf("Copy into a non-empty database: %v", err)
	}
	for _, tc := range importCases(t, a) {
		t.Run(tc.name, func(t *testing.T) {
			dst, err := postgres.Open(t.Context(), srv.URL(srv.CreateDB(t)), postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			if err := dst.Import(t.Context(), false, tc.rows); !errors.Is(err, tc.want) {
				t.Fatalf("Import: %v, want %v", err, tc.want)
			}
			n, err := dst.Count(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for tb, k := range n {
				if k != 0 {
					t.Errorf("%s has %d rows after a failed import", tb, k)
				}
			}
		})
	}
}
