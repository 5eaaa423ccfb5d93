package cluster_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/pgtest"
	"github.com/saslcert/saslcert/lifecycle"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/postgres"
)

// BenchmarkRevokePropagation measures how long after one instance's
// revocation was acknowledged (lifecycle.Manager.RevokeKey returned) another
// instance on the same PostgreSQL database runs its Revoked effect (the one
// that tells its server to forget the account and close the sessions): the
// NOTIFY at commit, the LISTEN connection's wake-up, one AuditSince read and
// one FindCertByFingerprint. Two stores with their own pools and listening
// connections stand for the two processes; the audit watch's poll interval
// is 10 s, so every figure below that is the change feed's doing. It reports
// p50, p99 and max over the revocations of the run.
func BenchmarkRevokePropagation(b *testing.B) {
	s := pgtest.Start(b, pgtest.Options{Durable: true})
	url := s.URL(s.CreateDB(b))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() *postgres.DB {
		db, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}
	dbA, dbB := open(), open()
	a := lifecycle.New(dbA, nil)
	mB := lifecycle.New(dbB, nil)
	var mu sync.Mutex
	seen := map[storage.Fingerprint]chan time.Time{}
	mB.Register(lifecycle.Effects{Revoked: func(_ context.Context, c *storage.Cert) {
		now := time.Now()
		mu.Lock()
		ch := seen[c.Fingerprint]
		mu.Unlock()
		if ch != nil {
			ch <- now
		}
	}})
	go mB.Watch(ctx, lifecycle.WatchOptions{Interval: 10 * time.Second, Watcher: "b", Wake: dbB.Changes(ctx)})
	time.Sleep(200 * time.Millisecond) // the watch has read its starting position

	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		der := make([]byte, 600)
		rand.Read(der)
		c := &storage.Cert{Account: fmt.Sprintf("p%d@example.org", i), Name: "n", DER: der, Fingerprint: storage.FingerprintOf(der),
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), Source: storage.SourceUpload}
		if err := a.AddCert(ctx, c, storage.AddOptions{Actor: "bench"}); err != nil {
			b.Fatal(err)
		}
		ch := make(chan time.Time, 1)
		mu.Lock()
		seen[c.Fingerprint] = ch
		mu.Unlock()
		if _, err := a.RevokeKey(ctx, c.Account, c.Name, "bench"); err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		select {
		case at := <-ch:
			lat = append(lat, max(0, at.Sub(acked)))
		case <-time.After(30 * time.Second):
			b.Fatalf("revocation %d did not reach the other instance", i)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1e3, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1e3, "max-ms")
}
