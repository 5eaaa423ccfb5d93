package sasl_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saslcert/saslcert/internal/pgtest"
	"github.com/saslcert/saslcert/storage/postgres"
	"github.com/saslcert/saslcert/storage/postgres/postgrestest"
)

// pgRowsEnv, if set, adds a size (e.g. 10000000) to the PostgreSQL login
// benchmark: filling 10M rows takes a while.
const pgRowsEnv = "SASLCERT_BENCH_PG_ROWS"

// pgFilled holds the filled PostgreSQL databases, one per size, with the
// DER of their real certificates.
var pgFilled struct {
	mu   sync.Mutex
	dbs  map[int]*postgres.DB
	ders map[int][][]byte
}

// pgStore returns a database of n filler rows plus loginCerts real
// certificates on the shared benchmark server (durable settings, 512MB of
// shared buffers), filling it on first use.
func pgStore(b *testing.B, n int) (*postgres.DB, [][]byte) {
	b.Helper()
	pgFilled.mu.Lock()
	defer pgFilled.mu.Unlock()
	if db, ok := pgFilled.dbs[n]; ok {
		return db, pgFilled.ders[n]
	}
	s := pgtest.Shared(b, pgtest.Options{Durable: true, SharedBuffers: "512MB"})
	url := s.URL(s.CreateDB(b))
	db, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	postgrestest.Fill(b, db, n, func(done int) {
		if done%1_000_000 == 0 {
			fmt.Fprintf(os.Stderr, "pg fill: %d rows in %v\n", done, time.Since(start).Round(time.Second))
		}
	})
	ders, recs := loginRecords(b)
	if err := db.ImportCerts(context.Background(), recs, "bench"); err != nil {
		b.Fatal(err)
	}
	// Settle the fill before measuring: statistics, the visibility map,
	// and a checkpoint, so that none of it runs during the measured logins.
	for _, sql := range []string{"VACUUM ANALYZE", "CHECKPOINT"} {
		if _, err := s.Exec(context.Background(), dbNameOf(url), sql); err != nil {
			b.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "pg fill: %d rows ready in %v; %s\n", n+len(recs), time.Since(start).Round(time.Second), pgSizes(b, url))
	if pgFilled.dbs == nil {
		pgFilled.dbs, pgFilled.ders = map[int]*postgres.DB{}, map[int][][]byte{}
	}
	pgFilled.dbs[n], pgFilled.ders[n] = db, ders
	return db, ders
}

// dbNameOf is the database name in a pgtest URL.
func dbNameOf(url string) string {
	i := len("postgres://")
	for url[i] != '/' {
		i++
	}
	j := i + 1
	for j < len(url) && url[j] != '?' {
		j++
	}
	return url[i+1 : j]
}

// BenchmarkAuthorizePostgres is BenchmarkAuthorizeSQLite against the
// PostgreSQL store (storage/postgres over TCP on loopback, a real server
// with its durability settings on): serial p50 and p99, and decisions/s
// from GOMAXPROCS goroutines (the pool holds that many connections).
func BenchmarkAuthorizePostgres(b *testing.B) {
	sizes := []int{1_000, 1_000_000}
	if n, err := strconv.Atoi(os.Getenv(pgRowsEnv)); err == nil && n > 0 {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		if testing.Short() && n > 1_000 {
			continue
		}
		b.Run(fmt.Sprintf("rows=%d/serial", n), func(b *testing.B) {
			db, ders := pgStore(b, n)
			benchAuthorizeSerial(b, db, ders)
		})
		b.Run(fmt.Sprintf("rows=%d/parallel", n), func(b *testing.B) {
			db, ders := pgStore(b, n)
			benchAuthorizeParallel(b, db, ders)
		})
	}
}

// pgSizes describes the database's size on disk: the whole database, and
// the certs and audit tables with their indexes.
func pgSizes(b *testing.B, url string) string {
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	var db, certs, certsIdx, audit int64
	err = conn.QueryRow(context.Background(), `SELECT pg_database_size(current_database()),
		pg_table_size('certs'), pg_indexes_size('certs'), pg_total_relation_size('audit')`).Scan(&db, &certs, &certsIdx, &audit)
	if err != nil {
		b.Fatal(err)
	}
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	return fmt.Sprintf("database %.0f MiB: certs %.0f MiB + its indexes %.0f MiB, audit %.0f MiB", mib(db), mib(certs), mib(certsIdx), mib(audit))
}
