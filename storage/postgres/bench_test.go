package postgres_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/saslcert/saslcert/internal/pgtest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/postgres"
)

// benchDB opens a fresh database on a server with its durability settings
// on (every acknowledged write is in the WAL on disk).
func benchDB(b *testing.B) *postgres.DB {
	s := pgtest.Shared(b, pgtest.Options{Durable: true})
	db, err := postgres.Open(context.Background(), s.URL(s.CreateDB(b)), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

var benchSeq atomic.Int64

func benchCert() *storage.Cert {
	n := benchSeq.Add(1)
	return newCert(fmt.Sprintf("bench-%d@example.org", n/4), fmt.Sprintf("c%d", n%4))
}

// BenchmarkAddCert measures one durable insert (the write lock, the checks,
// the record and its audit row, COMMIT with the WAL flushed), serially and
// from 8 goroutines per CPU (writers queue on the write lock).
func BenchmarkAddCert(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		db := benchDB(b)
		for b.Loop() {
			if err := db.AddCert(context.Background(), benchCert(), storage.AddOptions{Actor: "bench", MaxActive: 10}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		db := benchDB(b)
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := db.AddCert(context.Background(), benchCert(), storage.AddOptions{Actor: "bench", MaxActive: 10}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkFindCertByFingerprint measures the login lookup alone on 10,000
// rows, serially.
func BenchmarkFindCertByFingerprint(b *testing.B) {
	db := benchDB(b)
	var fps []storage.Fingerprint
	for range 10_000 / 500 {
		batch := make([]*storage.Cert, 500)
		for i := range batch {
			batch[i] = benchCert()
			fps = append(fps, batch[i].Fingerprint)
		}
		if err := db.ImportCerts(context.Background(), batch, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	for b.Loop() {
		fp := fps[rng.IntN(len(fps))]
		if c, err := db.FindCertByFingerprint(context.Background(), fp); err != nil || c.Fingerprint != fp {
			b.Fatal(c, err)
		}
	}
}
