package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/storetest"
)

// durability runs the contract suite's kill -9 test against SQLite files.
var durability = storetest.Durability{
	Open: func(ctx context.Context, path string) (storage.Store, error) {
		return sqlite.Open(ctx, path, sqlite.Options{})
	},
	Location: func(t *testing.T) string { return filepath.Join(t.TempDir(), "certs.db") },
	Check:    checkIntegrity,
}

// TestHelperProcess is not a test: TestKill9 runs the test binary again with
// -test.run=^TestHelperProcess$ to write in a child process
// (storetest.Writer).
func TestHelperProcess(t *testing.T) { storetest.Writer(t, durability) }

// TestKill9 kills a writing process (SIGKILL on Unix) several times and
// checks after each kill that every acknowledged write is in the database
// and that the database is intact (storetest.Kill9).
func TestKill9(t *testing.T) { storetest.Kill9(t, durability) }

// checkIntegrity runs PRAGMA integrity_check on path through its own
// connection.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var res string
	if err := raw.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		t.Fatal(err)
	}
	if res != "ok" {
		t.Fatalf("integrity_check: %s", res)
	}
}
