package lifecycle_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/lifecycle"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
	"github.com/saslcert/saslcert/storage/storetest"
)

var _ storage.Store = (*lifecycle.Manager)(nil)

const alice = "alice@example.org"

// recorder registers effects that record what ran, in order.
type recorder struct {
	mu  sync.Mutex
	ran []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, s)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.ran
	r.ran = nil
	return got
}

func (r *recorder) effects() lifecycle.Effects {
	return lifecycle.Effects{
		Changed:    func(_ context.Context, a string) { r.add("changed " + a) },
		Revoked:    func(_ context.Context, c *storage.Cert) { r.add("sessions " + c.Name) },
		RevokeAtCA: func(_ context.Context, c *storage.Cert) { r.add("ca " + c.Name) },
		Notice:     func(_ context.Context, ch lifecycle.Change) { r.add("notice " + string(ch.Kind)) },
	}
}

func record(t *testing.T, account, name string, key *certtest.Cert) *storage.Cert {
	t.Helper()
	o := certtest.Options{XMPPAddrs: []string{account}}
	if key != nil {
		o.Key = key.Key
	}
	c := certtest.New(t, o)
	return &storage.Cert{Account: account, Name: name, DER: c.DER, Fingerprint: storage.FingerprintOf(c.DER),
		NotBefore: c.Cert.NotBefore, NotAfter: c.Cert.NotAfter, Source: storage.SourceUpload}
}

// Every change runs its effects after the commit, in the documented order:
// caches, then per revoked record sessions and CA, then the notice; an
// account deletion runs only caches and notice; a failed change runs none.
func TestEffectsOrder(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, m *lifecycle.Manager) error
		want   []string
	}{
		{"add", func(t *testing.T, m *lifecycle.Manager) error {
			return m.AddCert(t.Context(), record(t, alice, "c", nil), storage.AddOptions{Actor: "x"})
		}, []string{"changed " + alice, "notice added"}},
		{"disable", func(t *testing.T, m *lifecycle.Manager) error {
			_, err := m.Disable(t.Context(), alice, "a", "x")
			return err
		}, []string{"changed " + alice, "notice disabled"}},
		{"revoke the key with its cascade", func(t *testing.T, m *lifecycle.Manager) error {
			_, err := m.RevokeKey(t.Context(), alice, "a", "x")
			return err
		}, []string{"changed " + alice, "sessions a", "ca a", "sessions a2", "ca a2", "notice revoked"}},
		{"revoke by SetState", func(t *testing.T, m *lifecycle.Manager) error {
			_, err := m.SetState(t.Context(), alice, "b", storage.StateRevoked, "x")
			return err
		}, []string{"changed " + alice, "sessions b", "ca b", "notice revoked"}},
		{"revoke all", func(t *testing.T, m *lifecycle.Manager) error {
			_, err := m.RevokeAll(t.Context(), alice, "cli")
			return err
		}, []string{"changed " + alice, "sessions a", "ca a", "sessions a2", "ca a2", "sessions b", "ca b", "notice account-revoked"}},
		{"account deleted", func(t *testing.T, m *lifecycle.Manager) error {
			_, err := m.DeleteAccount(t.Context(), alice, "server:example.org")
			return err
		}, []string{"changed " + alice, "notice account-deleted"}},
		{"account created", func(t *testing.T, m *lifecycle.Manager) error {
			_, err := m.ClearTombstone(t.Context(), alice)
			return err
		}, []string{"notice account-created"}},
		{"error/unknown name", func(t *testing.T, m *lifecycle.Manager) error {
			_, err := m.Disable(t.Context(), alice, "nope", "x")
			if err == nil {
				return fmt.Errorf("no error")
			}
			return nil
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := sqlitetest.Open(t, sqlite.Options{Now: func() time.Time { return certtest.Now }})
			key := certtest.New(t, certtest.Options{XMPPAddrs: []string{alice}})
			a := record(t, alice, "a", key)
			a2 := record(t, alice, "a2", key)
			for _, c := range []*storage.Cert{a, a2, record(t, alice, "b", nil)} {
				if err := db.AddCert(t.Context(), c, storage.AddOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			m := lifecycle.New(db, nil)
			var r recorder
			m.Register(r.effects())
			if err := tc.change(t, m); err != nil {
				t.Fatal(err)
			}
			if got := r.take(); !slices.Equal(got, tc.want) {
				t.Errorf("effects %q, want %q", got, tc.want)
			}
		})
	}
}

// Watch passes on the changes of every writer that is not this process,
// whatever its actor, and not the changes made through the Manager.
func TestWatchForeignWriters(t *testing.T) {
	db := sqlitetest.Open(t, sqlite.Options{})
	for _, n := range []string{"mine", "cli", "api", "other"} {
		if err := db.AddCert(t.Context(), record(t, alice, n, nil), storage.AddOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m := lifecycle.New(db, nil)
	var r recorder
	// Effects tell a change passed on (lifecycle.Foreign) from one of
	// their own Manager.
	m.Register(lifecycle.Effects{Revoked: func(ctx context.Context, c *storage.Cert) {
		r.add(fmt.Sprintf("%s foreign=%v", c.Name, lifecycle.Foreign(ctx)))
	}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Watch(ctx, lifecycle.WatchOptions{Interval: 10 * time.Millisecond, Watcher: "certs.example.org"})
	}()
	defer func() { cancel(); <-done }()
	waitMark(t, db, 0)
	if _, err := m.RevokeKey(t.Context(), alice, "mine", alice+"/phone"); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); !slices.Equal(got, []string{"mine foreign=false"}) {
		t.Fatalf("own change: effects %q", got)
	}
	// Other writers: the admin commands, an HTTP API client, another
	// component instance (same actor as a user of this one).
	for _, w := range [][2]string{{"cli", "cli"}, {"api", "api:backup"}, {"other", alice + "/laptop"}} {
		if _, err := db.RevokeKey(t.Context(), alice, w[0], w[1]); err != nil {
			t.Fatal(err)
		}
	}
	newest, err := db.Audit(t.Context(), "", 1)
	if err != nil {
		t.Fatal(err)
	}
	waitMark(t, db, newest[0].ID)
	if got := r.take(); !slices.Equal(got, []string{"cli foreign=true", "api foreign=true", "other foreign=true"}) {
		t.Errorf("passed on %q, want cli, api, other (not mine)", got)
	}
}

// With a Wake channel the watch reads the log when woken, not only every
// Interval (an hour here), and keeps working after the channel is closed.
func TestWatchWake(t *testing.T) {
	db := sqlitetest.Open(t, sqlite.Options{})
	for _, n := range []string{"one", "two"} {
		if err := db.AddCert(t.Context(), record(t, alice, n, nil), storage.AddOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m := lifecycle.New(db, nil)
	var r recorder
	m.Register(lifecycle.Effects{Revoked: func(_ context.Context, c *storage.Cert) { r.add(c.Name) }})
	wake := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Watch(ctx, lifecycle.WatchOptions{Interval: time.Hour, Watcher: "certs.example.org", Wake: wake})
	}()
	defer func() { cancel(); <-done }()
	waitMark(t, db, 0)
	for i, n := range []string{"one", "two"} {
		if _, err := db.RevokeKey(t.Context(), alice, n, "cli"); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			wake <- struct{}{}
		} else {
			close(wake) // a closed feed wakes once, then the watch polls
		}
		newest, err := db.Audit(t.Context(), "", 1)
		if err != nil {
			t.Fatal(err)
		}
		waitMark(t, db, newest[0].ID)
		if got := r.take(); !slices.Equal(got, []string{n}) {
			t.Fatalf("woken after revoking %s: passed on %q", n, got)
		}
	}
}

// waitMark waits until the watcher's passed-on mark reaches id.
func waitMark(t *testing.T, db storage.Store, id int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		marks, err := db.PassedOn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(marks) == 1 && marks[0].AuditID >= id {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the watch did not pass on up to audit entry %d", id)
}

// The Manager is a store: it passes the contract suite over SQLite.
func TestManagerContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) storage.Store {
		return lifecycle.New(sqlitetest.Open(t, sqlite.Options{Now: now}), nil)
	})
}
