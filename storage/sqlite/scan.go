package sqlite

import (
	"fmt"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// clock reads the store's clock at the precision times are stored with.
func (db *DB) clock() time.Time { return db.now().Truncate(time.Microsecond).UTC() }

// micro is the stored form of t: Unix microseconds, rounded down.
func micro(t time.Time) int64 { return t.UnixMicro() }

// fromMicro is the inverse of micro, in UTC.
func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

type rowScanner interface {
	Scan(dest ...any) error
}

// scanCert reads one row of certCols.
func scanCert(s rowScanner) (*storage.Cert, error) {
	c := new(storage.Cert)
	var state, source string
	err := s.Scan(&c.ID, &c.Account, &c.Name, &c.DER, fingerprintDest{&c.Fingerprint}, &state,
		&c.NoCertManagement, &c.Resource, timeDest{&c.NotBefore}, timeDest{&c.NotAfter}, &c.Issuer,
		&source, timeDest{&c.Created}, timeDest{&c.Changed})
	if err != nil {
		return nil, err
	}
	c.State, c.Source = storage.State(state), storage.Source(source)
	return c, nil
}

// scanAudit reads one row of auditCols.
func scanAudit(s rowScanner) (storage.AuditEntry, error) {
	var e storage.AuditEntry
	var action string
	err := s.Scan(&e.ID, timeDest{&e.Time}, &e.Actor, &action, &e.Account, &e.Name, fingerprintDest{&e.Fingerprint})
	e.Action = storage.Action(action)
	return e, err
}

// timeDest scans an INTEGER of Unix microseconds into a time.Time.
type timeDest struct{ t *time.Time }

func (d timeDest) Scan(src any) error {
	us, ok := src.(int64)
	if !ok {
		return fmt.Errorf("time column holds %T, want INTEGER", src)
	}
	*d.t = fromMicro(us)
	return nil
}

// fingerprintDest scans a 32-byte BLOB into a Fingerprint without the extra
// copy database/sql makes for *[]byte destinations.
type fingerprintDest struct{ fp *storage.Fingerprint }

func (d fingerprintDest) Scan(src any) error {
	b, ok := src.([]byte)
	if !ok || len(b) != len(d.fp) {
		return fmt.Errorf("fingerprint column holds %T of length %d, want a 32-byte BLOB", src, len(b))
	}
	copy(d.fp[:], b)
	return nil
}
