// Package sqlitetest helps tests and benchmarks, in any package, use the
// SQLite store: a fresh database in a temp dir, and bulk filler records.
//
// It lives next to the backend rather than in storage/storetest so that
// storetest (the backend-neutral contract suite, which sqlite's own tests
// import) never imports a backend.
package sqlitetest

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
)

// Open opens a new database file in tb.TempDir() and closes it when the test
// ends.
func Open(tb testing.TB, opts sqlite.Options) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "certs.db"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// FillerDERSize is the size of a filler record's DER, about that of a
// typical ECDSA P-256 client certificate with an xmppAddr.
const FillerDERSize = 600

// fillBatch is the number of records per ImportCerts transaction.
const fillBatch = 50000

// FillerNotAfter is the NotAfter of every filler record.
var FillerNotAfter = time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)

// Fill adds n active filler records to db through ImportCerts, in batches,
// and returns their fingerprints in insertion order. Filler DER is random
// bytes (nothing parses it); accounts are "fill-<run>-<k>@fill.example"
// with four records each, named "c0" to "c3", where <run> is random per
// call, so Fill may be called repeatedly on one database. It uses
// context.Background: a cancellable context would make the driver start a
// goroutine per statement, a noticeable cost at a million rows.
func Fill(tb testing.TB, db *sqlite.DB, n int) []storage.Fingerprint {
	tb.Helper()
	var seed [32]byte
	crand.Read(seed[:])
	rng := rand.NewChaCha8(seed)
	run := hex.EncodeToString(seed[:4])

	fps := make([]storage.Fingerprint, 0, n)
	for start := 0; start < n; start += fillBatch {
		m := min(fillBatch, n-start)
		ders := make([]byte, m*FillerDERSize)
		rng.Read(ders)
		recs := make([]storage.Cert, m)
		for j := range recs {
			der := ders[j*FillerDERSize : (j+1)*FillerDERSize : (j+1)*FillerDERSize]
			der[0], der[1], der[2], der[3] = 0x30, 0x82, (FillerDERSize-4)>>8, (FillerDERSize-4)&0xff
			recs[j] = storage.Cert{
				DER:         der,
				Fingerprint: storage.FingerprintOf(der),
				NotBefore:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
				NotAfter:    FillerNotAfter,
				Issuer:      "CN=filler",
				Source:      storage.SourceUpload,
			}
		}
		// Inserting a batch in fingerprint order walks the fingerprint
		// index once, in order, instead of hitting random pages: several
		// times faster at a million rows. Accounts and names are handed
		// out after sorting, so their indexes grow at the end.
		slices.SortFunc(recs, func(a, b storage.Cert) int { return bytes.Compare(a.Fingerprint[:], b.Fingerprint[:]) })
		batch := make([]*storage.Cert, m)
		for j := range recs {
			i := start + j
			recs[j].Account = fmt.Sprintf("fill-%s-%08d@fill.example", run, i/4)
			recs[j].Name = fmt.Sprintf("c%d", i%4)
			batch[j] = &recs[j]
			fps = append(fps, recs[j].Fingerprint)
		}
		if err := db.ImportCerts(context.Background(), batch, "sqlitetest.Fill"); err != nil {
			tb.Fatalf("Fill: records %d..%d: %v", start, start+m-1, err)
		}
	}
	return fps
}

// Filled is a database of filler records.
type Filled struct {
	DB           *sqlite.DB
	Fingerprints []storage.Fingerprint // of the filler records, in insertion order
}

// Cache builds filled databases on first use and keeps them for the life of
// the test binary, so that benchmarks of several sizes, serial and parallel,
// share one million-row database instead of filling one each. The zero value
// is ready to use. Call Close from TestMain after m.Run to remove the files:
//
//	var filled sqlitetest.Cache
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		filled.Close()
//		os.Exit(code)
//	}
//
// Benchmarks that change a cached database (AddCert) leave their records in
// it for later users; the filler fingerprints stay valid.
type Cache struct {
	mu   sync.Mutex
	dbs  map[int]*Filled
	dirs []string
}

// Get returns the cached database of n filler records, building it if need
// be and logging how long that took.
func (c *Cache) Get(tb testing.TB, n int) *Filled {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.dbs[n]; f != nil {
		return f
	}
	dir, err := os.MkdirTemp("", "saslcert-sqlitetest-")
	if err != nil {
		tb.Fatal(err)
	}
	c.dirs = append(c.dirs, dir)
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "certs.db"), sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	fps := Fill(tb, db, n)
	d := time.Since(start)
	var size int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(db.Path() + suffix); err == nil {
			size += fi.Size()
		}
	}
	tb.Logf("sqlitetest: filled %d rows in %v (%.0f rows/s), %d MiB on disk",
		n, d.Round(time.Millisecond), float64(n)/d.Seconds(), size>>20)
	if c.dbs == nil {
		c.dbs = map[int]*Filled{}
	}
	f := &Filled{DB: db, Fingerprints: fps}
	c.dbs[n] = f
	return f
}

// Close closes the cached databases and removes their files.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, f := range c.dbs {
		errs = append(errs, f.DB.Close())
	}
	for _, d := range c.dirs {
		errs = append(errs, os.RemoveAll(d))
	}
	c.dbs, c.dirs = nil, nil
	return errors.Join(errs...)
}
