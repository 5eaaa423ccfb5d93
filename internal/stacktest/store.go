package stacktest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
)

// Digest summarises everything the store holds: every certificate record
// (all fields, WalkCerts order) and every audit entry (all fields). Two equal
// digests mean the store did not change in between.
type Digest struct {
	Certs int    // certificate records, any state
	Audit int    // audit entries
	Sum   string // hex SHA-256 over all of it
}

func (d Digest) String() string {
	return fmt.Sprintf("%d certs, %d audit entries, sha256:%s", d.Certs, d.Audit, d.Sum)
}

// OpenStore opens the stack's database through a separate handle (as
// another process would see it); the caller closes it.
func (st *Stack) OpenStore(ctx context.Context) (*sqlite.DB, error) {
	return sqlite.Open(ctx, st.DBPath, sqlite.Options{BusyTimeout: 30 * time.Second})
}

// Digest computes the store's Digest through a separate handle.
func (st *Stack) Digest(tb testing.TB) Digest {
	tb.Helper()
	d, err := st.TryDigest()
	if err != nil {
		tb.Fatalf("stacktest: digest: %v", err)
	}
	return d
}

// TryDigest is Digest returning its error.
func (st *Stack) TryDigest() (Digest, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := st.OpenStore(ctx)
	if err != nil {
		return Digest{}, err
	}
	defer db.Close()
	return DigestOf(ctx, db)
}

// DigestOf computes the Digest of any store.
func DigestOf(ctx context.Context, s storage.Store) (Digest, error) {
	var d Digest
	h := sha256.New()
	err := s.WalkCerts(ctx, func(c *storage.Cert) error {
		d.Certs++
		putInt(h, c.ID)
		putStr(h, c.Account)
		putStr(h, c.Name)
		putStr(h, string(c.DER))
		h.Write(c.Fingerprint[:])
		putStr(h, string(c.State))
		putBool(h, c.NoCertManagement)
		putStr(h, c.Resource)
		putTime(h, c.NotBefore)
		putTime(h, c.NotAfter)
		putStr(h, c.Issuer)
		putStr(h, string(c.Source))
		putTime(h, c.Created)
		putTime(h, c.Changed)
		return nil
	})
	if err != nil {
		return d, err
	}
	h.Write([]byte("audit"))
	entries, err := s.Audit(ctx, "", 0)
	if err != nil {
		return d, err
	}
	for _, e := range entries {
		d.Audit++
		putInt(h, e.ID)
		putTime(h, e.Time)
		putStr(h, e.Actor)
		putStr(h, string(e.Action))
		putStr(h, e.Account)
		putStr(h, e.Name)
		h.Write(e.Fingerprint[:])
	}
	d.Sum = hex.EncodeToString(h.Sum(nil))
	return d, nil
}

func putInt(h hash.Hash, v int64) { _ = binary.Write(h, binary.BigEndian, v) }
func putStr(h hash.Hash, s string) {
	putInt(h, int64(len(s)))
	h.Write([]byte(s))
}
func putBool(h hash.Hash, b bool) {
	if b {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
}
func putTime(h hash.Hash, t time.Time) { putInt(h, t.UnixMicro()) }

// Certs returns every record in the store (any state), in ID order.
func (st *Stack) Certs(tb testing.TB) []*storage.Cert {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := st.OpenStore(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var out []*storage.Cert
	if err := db.WalkCerts(ctx, func(c *storage.Cert) error { out = append(out, c); return nil }); err != nil {
		tb.Fatal(err)
	}
	return out
}

// AddCert stores c for account (a user of the stack's domain, or a bare JID)
// under name, directly in the database, after the same sasl.CheckUpload an
// upload gets. It is set-up that does not go through XMPP.
func (st *Stack) AddCert(tb testing.TB, account, name string, c *certtest.Cert, noCertManagement bool) *storage.Cert {
	tb.Helper()
	rec, err := st.TryAddCerts([]Seed{{Account: account, Name: name, DER: c.DER, NoCertManagement: noCertManagement}})
	if err != nil {
		tb.Fatal(err)
	}
	return rec[0]
}

// Seed is one certificate for TryAddCerts.
type Seed struct {
	Account, Name    string
	DER              []byte
	NoCertManagement bool
}

// TryAddCerts stores seeds through one separate store handle (see AddCert).
func (st *Stack) TryAddCerts(seeds []Seed) ([]*storage.Cert, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db, err := st.OpenStore(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	out := make([]*storage.Cert, 0, len(seeds))
	for _, s := range seeds {
		acct, err := st.account(s.Account)
		if err != nil {
			return nil, err
		}
		up, err := sasl.CheckUpload(s.DER, acct, time.Now(), sasl.DefaultPolicy())
		if err != nil {
			return nil, fmt.Errorf("stacktest: %s for %s: %w", s.Name, acct, err)
		}
		rec := up.Record(s.Name, s.NoCertManagement, storage.SourceUpload)
		if err := db.AddCert(ctx, rec, storage.AddOptions{Actor: "stacktest"}); err != nil {
			return nil, fmt.Errorf("stacktest: storing %s for %s: %w", s.Name, acct, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func (st *Stack) account(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err == nil && j.Localpart() == "" {
		j, err = jid.Parse(s + "@" + st.Domain)
	}
	if err != nil {
		return jid.JID{}, fmt.Errorf("stacktest: account %q: %w", s, err)
	}
	return j.Bare(), nil
}

// IntegrityCheck runs SQLite's PRAGMA integrity_check on the database
// through its own read-only connection and returns its verdict ("ok" when
// the file is sound).
func (st *Stack) IntegrityCheck(tb testing.TB) string {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+st.DBPath+"?mode=ro&_busy_timeout=30000")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		tb.Fatalf("integrity_check: %v", err)
	}
	return res
}
