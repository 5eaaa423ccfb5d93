package sasl_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/pgtest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
)

// filled holds the SQLite databases of the store-backed benchmarks, shared
// by the serial and parallel runs of each size.
var filled sqlitetest.Cache

func TestMain(m *testing.M) {
	code := m.Run()
	filled.Close()
	pgtest.StopShared()
	os.Exit(code)
}

// loginCerts is how many real certificates each filled database gets for
// the measured logins; the filler records around them are never parsed.
const loginCerts = 1000

// realCerts adds loginCerts real P-256 certificates (one account each) to the
// filled database of n rows, once, and returns their DER.
func realCerts(b *testing.B, f *sqlitetest.Filled) [][]byte {
	b.Helper()
	realMu.Lock()
	defer realMu.Unlock()
	if ders, ok := realByDB[f]; ok {
		return ders
	}
	ders, recs := loginRecords(b)
	if err := f.DB.ImportCerts(context.Background(), recs, "bench"); err != nil {
		b.Fatal(err)
	}
	realByDB[f] = ders
	return ders
}

// loginRecords makes loginCerts real P-256 certificates (one account each)
// and their records.
func loginRecords(b *testing.B) ([][]byte, []*storage.Cert) {
	key := certtest.Key(b, certtest.ECDSAP256)
	ders := make([][]byte, 0, loginCerts)
	recs := make([]*storage.Cert, 0, loginCerts)
	for i := range loginCerts {
		acct := fmt.Sprintf("login%04d@example.org", i)
		c, err := certtest.Make(certtest.Options{XMPPAddrs: []string{acct}, Key: key})
		if err != nil {
			b.Fatal(err)
		}
		ders = append(ders, c.DER)
		recs = append(recs, &storage.Cert{
			Account: acct, Name: "bench", DER: c.DER, Fingerprint: storage.FingerprintOf(c.DER),
			NotBefore: c.Cert.NotBefore, NotAfter: c.Cert.NotAfter, Issuer: c.Cert.Issuer.String(),
			Source: storage.SourceUpload,
		})
	}
	return ders, recs
}

var (
	realMu   sync.Mutex
	realByDB = map[*sqlitetest.Filled][][]byte{}
)

// BenchmarkAuthorizeSQLite measures the login decision against the real
// SQLite store holding 1k, 100k and 1M records: SHA-256, one point lookup,
// exact DER comparison, x509 parse, validity, xmppAddr and authzid rules.
// serial reports p50 and p99 latency; parallel reports decisions/s with
// GOMAXPROCS goroutines.
func BenchmarkAuthorizeSQLite(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		if testing.Short() && n > 1_000 {
			continue
		}
		b.Run(fmt.Sprintf("rows=%d/serial", n), func(b *testing.B) {
			f := filled.Get(b, n)
			ders := realCerts(b, f)
			benchAuthorizeSerial(b, f.DB, ders)
		})
		b.Run(fmt.Sprintf("rows=%d/parallel", n), func(b *testing.B) {
			f := filled.Get(b, n)
			ders := realCerts(b, f)
			benchAuthorizeParallel(b, f.DB, ders)
		})
	}
}
