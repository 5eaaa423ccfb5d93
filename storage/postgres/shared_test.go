package postgres_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/pgtest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/postgres"
)

// TestOpenConcurrent: processes starting together on an empty database
// migrate it once (the advisory lock), and all of them open it.
func TestOpenConcurrent(t *testing.T) {
	s := pgtest.Shared(t)
	url := s.URL(s.CreateDB(t))
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			db, err := postgres.Open(t.Context(), url, postgres.Options{})
			if err == nil {
				db.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSchemaNewer: a database migrated by a newer program is refused.
func TestSchemaNewer(t *testing.T) {
	_, url := open(t, postgres.Options{})
	s := pgtest.Shared(t)
	if _, err := s.Exec(t.Context(), dbName(url), `INSERT INTO saslcert_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	if db, err := postgres.Open(t.Context(), url, postgres.Options{}); err == nil {
		db.Close()
		t.Fatal("Open accepted a database with a newer schema")
	}
}

func dbName(url string) string {
	i := len(url) - 1
	for url[i] != '/' {
		i--
	}
	j := i + 1
	for j < len(url) && url[j] != '?' {
		j++
	}
	return url[i+1 : j]
}

// TestUnavailable: with the server stopped every method fails with
// ErrUnavailable (never a wrong answer: a lookup does not say "not
// found"), Open with Wait waits for the server, and the store recovers by
// itself when the server is back.
func TestUnavailable(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{})
	url := s.URL(s.CreateDB(t))
	db, err := postgres.Open(t.Context(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := newCert("alice@example.org", "laptop")
	if err := db.AddCert(t.Context(), c, storage.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := db.FindCertByFingerprint(ctx, c.Fingerprint); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("FindCertByFingerprint with the server down: %v, want ErrUnavailable", err)
	}
	if _, err := db.FindCertByFingerprint(ctx, newCert("x@example.org", "x").Fingerprint); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("FindCertByFingerprint (unknown) with the server down: %v, want ErrUnavailable", err)
	}
	if err := db.AddCert(ctx, newCert("alice@example.org", "phone"), storage.AddOptions{}); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("AddCert with the server down: %v, want ErrUnavailable", err)
	}
	if _, err := db.SetState(ctx, "alice@example.org", "laptop", storage.StateRevoked, "t"); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("SetState with the server down: %v, want ErrUnavailable", err)
	}
	if _, err := postgres.Open(ctx, url, postgres.Options{}); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Open with the server down: %v, want ErrUnavailable", err)
	}
	opened := make(chan error, 1)
	go func() {
		db2, err := postgres.Open(ctx, url, postgres.Options{Wait: 30 * time.Second})
		if err == nil {
			db2.Close()
		}
		opened <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Errorf("Open with Wait while the server came back: %v", err)
	}
	got, err := db.FindCertByFingerprint(ctx, c.Fingerprint)
	if err != nil || got.State != storage.StateActive {
		t.Fatalf("after the restart: %v, %v", got, err)
	}
}

// TestChangesAndExclusive: a change committed through one store wakes the
// feed of another on the same database, also after the server restarted;
// Exclusive runs a job in one holder at a time.
func TestChangesAndExclusive(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{})
	url := s.URL(s.CreateDB(t))
	a, err := postgres.Open(t.Context(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(t.Context(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	feed := b.Changes(t.Context())
	wait := func(what string) {
		t.Helper()
		select {
		case <-feed:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no wake-up", what)
		}
	}
	drain := func() {
		for {
			select {
			case <-feed:
			case <-time.After(200 * time.Millisecond):
				return
			}
		}
	}
	wait("connected")
	drain()
	if err := a.AddCert(t.Context(), newCert("alice@example.org", "laptop"), storage.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("after an add")
	s.Stop()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	wait("after a reconnect")
	drain()
	if _, err := a.RevokeAccount(t.Context(), "alice@example.org", storage.RevokeAccountOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("after a revoke following a restart")

	var running, overlaps atomic.Int32
	ran := make(chan bool, 2)
	for _, db := range []*postgres.DB{a, b} {
		go func() {
			ok, err := db.Exclusive(t.Context(), "renewal", func(ctx context.Context) error {
				if running.Add(1) > 1 {
					overlaps.Add(1)
				}
				time.Sleep(300 * time.Millisecond)
				running.Add(-1)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			ran <- ok
		}()
	}
	n := 0
	for range 2 {
		if <-ran {
			n++
		}
	}
	if overlaps.Load() != 0 || n < 1 {
		t.Fatalf("Exclusive: %d overlaps, ran %d times", overlaps.Load(), n)
	}
	if ok, err := a.Exclusive(t.Context(), "renewal", func(context.Context) error { return nil }); !ok || err != nil {
		t.Fatalf("Exclusive after release: %v, %v", ok, err)
	}
}
