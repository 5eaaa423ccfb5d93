package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saslcert/saslcert/storage"
)

// ImportCerts inserts certs in one transaction, with an ActionAdd audit row
// by actor for each: all of them or, on error, none, as
// sqlite.DB.ImportCerts does (admin imports, store copies, benchmark
// fills). Each record is checked as AddCert checks it, in order, against
// the store and the records before it; a record may carry its State (empty
// means active) and its Created and Changed times (zero means the store's
// clock). MaxActive limits do not apply. The rows are written with COPY,
// so large batches are fast. On success the records' ID, State, Created and
// Changed are set. Errors: as AddCert, naming the failing record's index.
func (db *DB) ImportCerts(ctx context.Context, certs []*storage.Cert, actor string) error {
	const op = "import certs"
	for i, c := range certs {
		if err := storage.CheckRecord(c, true); err != nil {
			return fmt.Errorf("storage/postgres: %s: record %d: %w", op, i, err)
		}
	}
	if err := db.begin(ctx, op); err != nil || len(certs) == 0 {
		return err
	}
	now := db.clock()
	type set struct {
		id               int64
		state            storage.State
		created, changed time.Time
	}
	done := make([]set, len(certs))
	err := db.write(ctx, op, func(tx pgx.Tx) error {
		if err := checkImport(ctx, tx, certs); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence('certs', 'id')) FROM generate_series(1, $1)`, len(certs))
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		certRows := make([][]any, len(certs))
		auditRows := make([][]any, len(certs))
		for i, c := range certs {
			s := set{id: ids[i], state: c.State, created: c.Created, changed: c.Changed}
			if s.state == "" {
				s.state = storage.StateActive
			}
			if s.created.IsZero() {
				s.created = now
			}
			if s.changed.IsZero() {
				s.changed = now
			}
			s.created, s.changed = s.created.Truncate(time.Microsecond).UTC(), s.changed.Truncate(time.Microsecond).UTC()
			done[i] = s
			var kh []byte
			if h, ok := storage.KeyHashOf(c.DER); ok {
				kh = h[:]
			}
			certRows[i] = []any{s.id, c.Account, c.Name, c.DER, c.Fingerprint[:], string(s.state), c.NoCertManagement,
				c.Resource, c.NotBefore, c.NotAfter, c.Issuer, string(c.Source), s.created, s.changed, kh}
			auditRows[i] = []any{now, actor, string(storage.ActionAdd), c.Account, c.Name, c.Fingerprint[:]}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"certs"}, []string{"id", "account", "name", "der", "fingerprint",
			"state", "no_cert_management", "resource", "not_before", "not_after", "issuer", "source", "created", "changed",
			"key_hash"}, pgx.CopyFromRows(certRows)); err != nil {
			return err
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"audit"}, []string{"time", "actor", "action", "account", "name", "fingerprint"},
			pgx.CopyFromRows(auditRows))
		return err
	})
	if err != nil {
		return err
	}
	for i, c := range certs {
		c.ID, c.State, c.Created, c.Changed = done[i].id, done[i].state, done[i].created, done[i].changed
	}
	return nil
}

// checkImport finds, under the write lock, the first record of certs that
// AddCert would refuse: an account with a tombstone, a fingerprint stored
// (or earlier in certs), an active name taken (or earlier in certs).
func checkImport(ctx context.Context, tx pgx.Tx, certs []*storage.Cert) error {
	accounts := make([]string, 0, len(certs))
	names := make([]string, 0, len(certs))
	fps := make([][]byte, 0, len(certs))
	for _, c := range certs {
		accounts = append(accounts, c.Account)
		names = append(names, c.Name)
		fps = append(fps, c.Fingerprint[:])
	}
	tomb := map[string]bool{}
	rows, err := tx.Query(ctx, `SELECT account FROM tombstones WHERE account = ANY($1)`, accounts)
	if err != nil {
		return err
	}
	ts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, a := range ts {
		tomb[a] = true
	}
	fpSeen := map[storage.Fingerprint]bool{}
	rows, err = tx.Query(ctx, `SELECT fingerprint FROM certs WHERE fingerprint = ANY($1)`, fps)
	if err != nil {
		return err
	}
	dups, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return err
	}
	for _, b := range dups {
		fpSeen[storage.Fingerprint(b)] = true
	}
	type accName struct{ account, name string }
	nameSeen := map[accName]bool{}
	rows, err = tx.Query(ctx, `SELECT c.account, c.name FROM certs c
		JOIN unnest($1::text[], $2::text[]) AS n(account, name) ON c.account = n.account AND c.name = n.name
		WHERE c.state = 'active'`, accounts, names)
	if err != nil {
		return err
	}
	taken, err := pgx.CollectRows(rows, pgx.RowToStructByPos[accName])
	if err != nil {
		return err
	}
	for _, t := range taken {
		nameSeen[t] = true
	}
	for i, c := range certs {
		k := accName{c.Account, c.Name}
		active := c.State == "" || c.State == storage.StateActive
		switch {
		case tomb[c.Account]:
			return fmt.Errorf("record %d: %w: %s", i, storage.ErrAccountDeleted, c.Account)
		case fpSeen[c.Fingerprint]:
			return fmt.Errorf("record %d: %w: %s", i, storage.ErrDuplicate, c.Fingerprint)
		case active && nameSeen[k]:
			return fmt.Errorf("record %d: %w: account %s already has an active certificate named %q", i, storage.ErrNameTaken, c.Account, c.Name)
		}
		fpSeen[c.Fingerprint] = true
		if active {
			nameSeen[k] = true
		}
	}
	return nil
}
