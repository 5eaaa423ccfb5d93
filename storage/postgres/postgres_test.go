package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/pgtest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/postgres"
	"github.com/saslcert/saslcert/storage/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// open opens a fresh database on the shared server.
func open(t *testing.T, opts postgres.Options) (*postgres.DB, string) {
	t.Helper()
	s := pgtest.Shared(t)
	url := s.URL(s.CreateDB(t))
	db, err := postgres.Open(t.Context(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, url
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) storage.Store {
		db, _ := open(t, postgres.Options{Now: now})
		return db
	})
}

// durability runs the contract suite's kill -9 test (the writing process
// killed) against databases on a server with its real durability settings.
var durability = storetest.Durability{
	Open: func(ctx context.Context, url string) (storage.Store, error) {
		return postgres.Open(ctx, url, postgres.Options{})
	},
	Location: func(t *testing.T) string {
		s := pgtest.Start(t, pgtest.Options{Durable: true})
		return s.URL(s.CreateDB(t))
	},
}

// TestHelperProcess is not a test: TestKill9 runs the test binary again to
// write in a child process (storetest.Writer).
func TestHelperProcess(t *testing.T) { storetest.Writer(t, durability) }

// TestKill9 kills a writing process several times and checks that every
// acknowledged write is in the database (storetest.Kill9).
func TestKill9(t *testing.T) { storetest.Kill9(t, durability) }

// TestKill9Server kills the database server itself (SIGKILL to the
// postmaster, as a crash) while four writers add records, restarts it and
// checks that every acknowledged add is there: a nil error means the commit
// reached PostgreSQL's WAL on disk.
func TestKill9Server(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a server; skipped with -short")
	}
	s := pgtest.Start(t, pgtest.Options{Durable: true})
	url := s.URL(s.CreateDB(t))
	db, err := postgres.Open(t.Context(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mu sync.Mutex
	var acked []storage.Fingerprint
	var failed int
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				c := newCert("kill@example.org", fmt.Sprintf("w%d-%d", w, i))
				err := db.AddCert(ctx, c, storage.AddOptions{Actor: "kill"})
				mu.Lock()
				if err == nil {
					acked = append(acked, c.Fingerprint)
				} else if errors.Is(err, storage.ErrUnavailable) {
					failed++
				} else if ctx.Err() == nil {
					t.Errorf("AddCert: %v, want nil or ErrUnavailable", err)
				}
				mu.Unlock()
			}
		})
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Kill()
	time.Sleep(200 * time.Millisecond) // writers see the server gone
	cancel()
	wg.Wait()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	for _, fp := range acked {
		if _, err := db.FindCertByFingerprint(t.Context(), fp); err != nil {
			t.Fatalf("acknowledged %s lost after the server was killed: %v", fp, err)
		}
	}
	t.Logf("%d acknowledged adds present after kill -9 of the server; %d failed with ErrUnavailable", len(acked), failed)
}

// newCert returns a valid record (not stored) with random DER.
func newCert(account, name string) *storage.Cert {
	der := make([]byte, 300)
	rand.Read(der)
	return &storage.Cert{Account: account, Name: name, DER: der, Fingerprint: storage.FingerprintOf(der),
		NotBefore: time.Now().Add(-time.Hour).UTC(), NotAfter: time.Now().Add(time.Hour).UTC(), Source: storage.SourceUpload}
}
