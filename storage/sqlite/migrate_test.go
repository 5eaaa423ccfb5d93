package sqlite

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"math/big"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage"
)

func TestMigrationsNumbered(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || SchemaVersion() != len(ms) {
		t.Fatalf("%d migrations, SchemaVersion %d", len(ms), SchemaVersion())
	}
}

// rawDB opens path without migrating, for building old schemas.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db := pool(dsn(path, nil), nil) // knows saslcert_key_hash, which migration 0002 calls
	t.Cleanup(func() { db.Close() })
	return db
}

func readVersion(t *testing.T, path string) int {
	t.Helper()
	v, err := userVersion(t.Context(), rawDB(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMigrateFromEachVersion builds a database at every older schema version
// (0 is an empty file), with a record if the schema has the certs table, and
// opens it: it must come up at the newest version with the record intact,
// and opening it again must change nothing.
func TestMigrateFromEachVersion(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	fp := storage.FingerprintOf([]byte{0x30, 1, 2, 3})
	for k := 0; k <= len(ms); k++ {
		t.Run("from="+strconv.Itoa(k), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "certs.db")
			raw := rawDB(t, path)
			for _, m := range ms[:k] {
				if _, err := raw.Exec(m.sql); err != nil {
					t.Fatal(err)
				}
				if _, err := raw.Exec("PRAGMA user_version = " + strconv.Itoa(m.version)); err != nil {
					t.Fatal(err)
				}
			}
			if k >= 1 {
				// Written with version-1 columns only.
				if _, err := raw.Exec(`INSERT INTO certs (account, name, der, fingerprint, state, no_cert_management,
					resource, not_before, not_after, issuer, source, created, changed)
					VALUES ('alice@example.org', 'old', x'30010203', ?, 'active', 0, '', 0, 0, '', 'upload', 0, 0)`, fp[:]); err != nil {
					t.Fatal(err)
				}
			}
			raw.Close()

			for range 2 {
				db, err := Open(t.Context(), path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				_, err = db.FindCertByFingerprint(t.Context(), fp)
				if k >= 1 && err != nil {
					t.Fatalf("record written at version %d: %v", k, err)
				}
				db.Close()
				if v := readVersion(t, path); v != len(ms) {
					t.Fatalf("user_version %d after Open, want %d", v, len(ms))
				}
			}
		})
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certs.db")
	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := rawDB(t, path).Exec("PRAGMA user_version = " + strconv.Itoa(SchemaVersion()+1)); err != nil {
		t.Fatal(err)
	}
	if db, err := Open(t.Context(), path, Options{}); err == nil {
		db.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
}

// TestConcurrentOpen opens one new file from several handles at once, as
// several processes starting together would: each migration runs once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certs.db")
	const n = 6
	errs := make([]error, n)
	dbs := make([]*DB, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = Open(context.Background(), path, Options{}) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		defer dbs[i].Close()
	}
	if v := readVersion(t, path); v != SchemaVersion() {
		t.Fatalf("user_version %d, want %d", v, SchemaVersion())
	}
}

// TestMigrateKeyHash: records stored before migration 0002 get their key,
// so that revoking one revokes the others of the same key.
func TestMigrateKeyHash(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "certs.db")
	raw := rawDB(t, path)
	if _, err := raw.Exec(ms[0].sql); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var fps []storage.Fingerprint
	for i, name := range []string{"laptop", "laptop (renewed)"} {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		fp := storage.FingerprintOf(der)
		fps = append(fps, fp)
		if _, err := raw.Exec(`INSERT INTO certs (account, name, der, fingerprint, state, no_cert_management,
			resource, not_before, not_after, issuer, source, created, changed)
			VALUES ('alice@example.org', ?, ?, ?, 'active', 0, '', 0, 0, '', 'enrolled', 0, 0)`, name, der, fp[:]); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	db, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.RevokeKey(t.Context(), "alice@example.org", "laptop", "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("RevokeKey revoked %d records, want both records of the key", len(got))
	}
	for _, fp := range fps {
		if c, err := db.FindCertByFingerprint(t.Context(), fp); err != nil || c.State != storage.StateRevoked {
			t.Fatalf("record %s: %v, %v; want revoked", fp, c, err)
		}
	}
}
