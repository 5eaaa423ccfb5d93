// Package postgrestest fills PostgreSQL stores with filler records for
// benchmarks, as sqlitetest does for SQLite, through the store's
// ImportCerts (COPY).
package postgrestest

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/postgres"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
)

// fillBatch is the number of records per ImportCerts transaction.
const fillBatch = 50000

// Fill adds n active filler records to db, shaped as sqlitetest.Fill's
// (sqlitetest.FillerDERSize bytes of random DER, four per account), and
// returns their fingerprints. progress, if not nil, is called after every
// batch with the number of records so far.
func Fill(tb testing.TB, db *postgres.DB, n int, progress func(done int)) []storage.Fingerprint {
	tb.Helper()
	var seed [32]byte
	crand.Read(seed[:])
	rng := rand.NewChaCha8(seed)
	run := hex.EncodeToString(seed[:4])
	const size = sqlitetest.FillerDERSize
	fps := make([]storage.Fingerprint, 0, n)
	for start := 0; start < n; start += fillBatch {
		m := min(fillBatch, n-start)
		ders := make([]byte, m*size)
		rng.Read(ders)
		recs := make([]storage.Cert, m)
		for j := range recs {
			der := ders[j*size : (j+1)*size : (j+1)*size]
			der[0], der[1], der[2], der[3] = 0x30, 0x82, (size-4)>>8, (size-4)&0xff
			recs[j] = storage.Cert{
				DER: der, Fingerprint: storage.FingerprintOf(der),
				NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: sqlitetest.FillerNotAfter,
				Issuer: "CN=filler", Source: storage.SourceUpload,
			}
		}
		slices.SortFunc(recs, func(a, b storage.Cert) int { return bytes.Compare(a.Fingerprint[:], b.Fingerprint[:]) })
		batch := make([]*storage.Cert, m)
		for j := range recs {
			i := start + j
			recs[j].Account = fmt.Sprintf("fill-%s-%09d@fill.example", run, i/4)
			recs[j].Name = fmt.Sprintf("c%d", i%4)
			batch[j] = &recs[j]
			fps = append(fps, recs[j].Fingerprint)
		}
		if err := db.ImportCerts(context.Background(), batch, "postgrestest.Fill"); err != nil {
			tb.Fatalf("Fill: records %d..%d: %v", start, start+m-1, err)
		}
		if progress != nil {
			progress(start + m)
		}
	}
	return fps
}
