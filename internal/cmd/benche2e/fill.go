package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
)

// fillerDERSize is the size of a filler record's DER, about that of an
// ECDSA P-256 client certificate with an xmppAddr (as in sqlitetest).
const fillerDERSize = 600

// fillBatch is the number of filler records per ImportCerts transaction.
const fillBatch = 50000

// dbFile is the database's name in `saslcert serve --data-dir`.
const dbFile = "saslcert.db"

// fillStore creates the component's database in dataDir and adds n active
// filler records to it through the store's public API (ImportCerts), before
// the component starts: one certificate per account fill<k>@domain, random
// DER that no login presents. Each batch is inserted in fingerprint order,
// which walks the unique index once instead of at random.
func fillStore(dataDir, domain string, n int, progress func(done int, elapsed time.Duration)) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	// Background: a cancellable context makes the driver start a goroutine
	// per statement, which costs at a million rows.
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dataDir, dbFile), sqlite.Options{})
	if err != nil {
		return err
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		db.Close()
		return err
	}
	rng := rand.NewChaCha8(seed)
	start := time.Now()
	nb := time.Now().Add(-time.Hour).Truncate(time.Second)
	na := nb.Add(10 * 365 * 24 * time.Hour)
	for first := 0; first < n; first += fillBatch {
		m := min(fillBatch, n-first)
		ders := make([]byte, m*fillerDERSize)
		_, _ = rng.Read(ders)
		recs := make([]storage.Cert, m)
		for j := range recs {
			der := ders[j*fillerDERSize : (j+1)*fillerDERSize : (j+1)*fillerDERSize]
			der[0], der[1], der[2], der[3] = 0x30, 0x82, (fillerDERSize-4)>>8, (fillerDERSize-4)&0xff
			recs[j] = storage.Cert{
				DER:         der,
				Fingerprint: storage.FingerprintOf(der),
				NotBefore:   nb,
				NotAfter:    na,
				Issuer:      "CN=filler",
				Source:      storage.SourceUpload,
			}
		}
		slices.SortFunc(recs, func(a, b storage.Cert) int { return bytes.Compare(a.Fingerprint[:], b.Fingerprint[:]) })
		batch := make([]*storage.Cert, m)
		for j := range recs {
			recs[j].Account = fmt.Sprintf("fill%07d@%s", first+j, domain)
			recs[j].Name = "c0"
			batch[j] = &recs[j]
		}
		if err := db.ImportCerts(ctx, batch, "benche2e"); err != nil {
			db.Close()
			return fmt.Errorf("filling records %d..%d: %w", first, first+m-1, err)
		}
		if progress != nil {
			progress(first+m, time.Since(start))
		}
	}
	return db.Close()
}
