package storecopy_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/pgtest"
	"github.com/saslcert/saslcert/storage/postgres"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
	"github.com/saslcert/saslcert/storage/storecopy"
)

// BenchmarkCopy copies an SQLite store of SASLCERT_BENCH_COPY_ROWS filler
// certificates (default 100000; each with its audit entry) into a fresh
// SQLite file and into a fresh PostgreSQL database, verified, and reports
// rows (of all tables) per second.
func BenchmarkCopy(b *testing.B) {
	n := 100000
	if s := os.Getenv("SASLCERT_BENCH_COPY_ROWS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	src := sqlitetest.Open(b, sqlite.Options{})
	sqlitetest.Fill(b, src, n)
	rows := int64(2 * n)
	targets := []struct {
		name string
		open func(b *testing.B) storecopy.Target
	}{
		{"to-sqlite", func(b *testing.B) storecopy.Target {
			db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "t.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			return db
		}},
		{"to-postgres", func(b *testing.B) storecopy.Target {
			srv := pgtest.Shared(b)
			db, err := postgres.Open(b.Context(), srv.URL(srv.CreateDB(b)), postgres.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			return db
		}},
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			var spent time.Duration
			for b.Loop() {
				b.StopTimer()
				dst := tg.open(b)
				b.StartTimer()
				t0 := time.Now()
				if _, err := storecopy.Copy(b.Context(), src, dst, storecopy.Options{}); err != nil {
					b.Fatal(err)
				}
				spent += time.Since(t0)
			}
			b.ReportMetric(float64(rows)*float64(b.N)/spent.Seconds(), "rows/s")
		})
	}
}
