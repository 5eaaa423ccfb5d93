package sqlite_test

import (
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
)

// benchSizes are the store sizes lookups are measured at.
var benchSizes = []int{1000, 100_000, 1_000_000}

// filled holds the filled databases for the whole test binary run, so the
// million-row database is built once and shared by all benchmarks.
var filled sqlitetest.Cache

func TestMain(m *testing.M) {
	code := m.Run()
	filled.Close()
	os.Exit(code)
}

// benchSeq numbers the records benchmarks add, keeping names unique across
// benchmarks that share a database.
var benchSeq atomic.Int64

// benchCert returns a new record: four per account, random DER.
func benchCert() *storage.Cert {
	n := benchSeq.Add(1)
	der := make([]byte, sqlitetest.FillerDERSize)
	rand.Read(der)
	return &storage.Cert{
		Account:     "bench-" + strconv.FormatInt(n/4, 10) + "@example.org",
		Name:        "c" + strconv.FormatInt(n%4, 10),
		DER:         der,
		Fingerprint: storage.FingerprintOf(der),
		NotBefore:   time.Now(),
		NotAfter:    time.Now().Add(time.Hour),
		Source:      storage.SourceUpload,
	}
}

// BenchmarkAddCert measures one durable insert (a BEGIN IMMEDIATE
// transaction with the record and its audit row, committed with an fsync),
// on an empty database and on the million-row one.
func BenchmarkAddCert(b *testing.B) {
	for _, n := range []int{0, 1_000_000} {
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) {
			var db *sqlite.DB
			if n == 0 {
				db = sqlitetest.Open(b, sqlite.Options{})
			} else {
				db = filled.Get(b, n).DB
			}
			ctx := context.Background()
			for b.Loop() {
				if err := db.AddCert(ctx, benchCert(), storage.AddOptions{Actor: "bench", MaxActive: 10}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAddCertParallel measures insert throughput from many goroutines;
// they share the one write connection, so this shows queueing, not
// parallelism.
func BenchmarkAddCertParallel(b *testing.B) {
	db := sqlitetest.Open(b, sqlite.Options{})
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := db.AddCert(ctx, benchCert(), storage.AddOptions{Actor: "bench"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// lookupDB returns the database of n filler records to look up in: the
// shared one, or with mmap another handle on the same file whose read
// connections map the file.
func lookupDB(b *testing.B, n int, mmap bool) (*sqlite.DB, []storage.Fingerprint) {
	f := filled.Get(b, n)
	if !mmap {
		return f.DB, f.Fingerprints
	}
	db, err := sqlite.Open(context.Background(), f.DB.Path(), sqlite.Options{MmapSize: 2 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db, f.Fingerprints
}

// lookups runs fn for each store size, with and without mmap.
func lookups(b *testing.B, fn func(b *testing.B, db *sqlite.DB, fps []storage.Fingerprint)) {
	for _, n := range benchSizes {
		for _, mmap := range []bool{false, true} {
			name := "rows=" + strconv.Itoa(n) + "/mmap=off"
			if mmap {
				name = "rows=" + strconv.Itoa(n) + "/mmap=on"
			}
			b.Run(name, func(b *testing.B) {
				db, fps := lookupDB(b, n, mmap)
				fn(b, db, fps)
			})
		}
	}
}

// BenchmarkFindCertByFingerprint measures point lookups of random existing
// fingerprints on one goroutine.
func BenchmarkFindCertByFingerprint(b *testing.B) {
	lookups(b, func(b *testing.B, db *sqlite.DB, fps []storage.Fingerprint) {
		benchFind(b, db, fps, context.Background())
	})
}

// BenchmarkFindCertByFingerprintCancellable is the same with a cancellable
// context, as callers with per-request deadlines pass: the driver then
// watches the context during each query.
func BenchmarkFindCertByFingerprintCancellable(b *testing.B) {
	lookups(b, func(b *testing.B, db *sqlite.DB, fps []storage.Fingerprint) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		benchFind(b, db, fps, ctx)
	})
}

func benchFind(b *testing.B, db *sqlite.DB, fps []storage.Fingerprint, ctx context.Context) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	for b.Loop() {
		fp := fps[rng.IntN(len(fps))]
		c, err := db.FindCertByFingerprint(ctx, fp)
		if err != nil || c.Fingerprint != fp {
			b.Fatal(c, err)
		}
	}
}

// BenchmarkFindCertByFingerprintParallel measures lookups from GOMAXPROCS
// goroutines on the read pool.
func BenchmarkFindCertByFingerprintParallel(b *testing.B) {
	lookups(b, func(b *testing.B, db *sqlite.DB, fps []storage.Fingerprint) {
		var seq atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			rng := mrand.New(mrand.NewPCG(seq.Add(1), 7))
			for pb.Next() {
				fp := fps[rng.IntN(len(fps))]
				c, err := db.FindCertByFingerprint(context.Background(), fp)
				if err != nil || c.Fingerprint != fp {
					b.Error(c, err)
					return
				}
			}
		})
	})
}
