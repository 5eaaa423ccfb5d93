package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/saslcert/saslcert/storage"
)

var (
	_ storage.Exporter = (*DB)(nil)
	_ storage.Importer = (*DB)(nil)
)

// exportQueries read each table in its export order (storage.Tables).
var exportQueries = []struct {
	table storage.Table
	query string
	scan  func(rowScanner) (storage.Row, error)
}{
	{storage.TableCerts, `SELECT ` + certCols + ` FROM certs ORDER BY id`, func(s rowScanner) (storage.Row, error) { return scanCert(s) }},
	{storage.TableAudit, `SELECT ` + auditCols + ` FROM audit ORDER BY id`, func(s rowScanner) (storage.Row, error) {
		e, err := scanAudit(s)
		return &e, err
	}},
	{storage.TableTombstones, `SELECT account, deleted, actor FROM tombstones ORDER BY account`, func(s rowScanner) (storage.Row, error) {
		t := new(storage.Tombstone)
		return t, s.Scan(&t.Account, timeDest{&t.Deleted}, &t.Actor)
	}},
	{storage.TableWatchers, `SELECT name, audit_id, seen FROM watchers ORDER BY name`, func(s rowScanner) (storage.Row, error) {
		m := new(storage.PassedOnMark)
		return m, s.Scan(&m.Watcher, &m.AuditID, timeDest{&m.Seen})
	}},
}

// callerError carries an error of the caller's function through the
// export and import loops, so that it is returned as it is, not mapped.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

// Export implements storage.Exporter: one read transaction (a WAL
// snapshot) on a read connection, a statement per table, rows streamed.
func (db *DB) Export(ctx context.Context, fn storage.RowFunc) error {
	const op = "export"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return db.mapErr(ctx, op, err)
	}
	defer tx.Rollback()
	for _, q := range exportQueries {
		if err := exportTable(ctx, tx, q.query, q.scan, fn); err != nil {
			if ce, ok := err.(*callerError); ok {
				return ce.err
			}
			return db.mapErr(ctx, op+" "+string(q.table), err)
		}
	}
	return nil
}

func exportTable(ctx context.Context, tx *sql.Tx, query string, scan func(rowScanner) (storage.Row, error), fn storage.RowFunc) error {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return &callerError{err}
		}
	}
	return rows.Err()
}

// Count implements storage.Exporter.
func (db *DB) Count(ctx context.Context) (map[storage.Table]int64, error) {
	const op = "count"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	n, err := countTables(ctx, db.r)
	if err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	return n, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func countTables(ctx context.Context, q querier) (map[storage.Table]int64, error) {
	var c, a, t, w int64
	err := q.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM certs), (SELECT count(*) FROM audit),
		(SELECT count(*) FROM tombstones), (SELECT count(*) FROM watchers)`).Scan(&c, &a, &t, &w)
	if err != nil {
		return nil, err
	}
	return map[storage.Table]int64{storage.TableCerts: c, storage.TableAudit: a, storage.TableTombstones: t, storage.TableWatchers: w}, nil
}

// notEmpty describes the tables of n that hold rows ("" if none).
func notEmpty(n map[storage.Table]int64) string {
	var parts []string
	for _, t := range storage.Tables {
		if n[t] > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d rows", t, n[t]))
		}
	}
	return strings.Join(parts, ", ")
}

// Import implements storage.Importer in one write transaction (BEGIN
// IMMEDIATE on the write connection).
func (db *DB) Import(ctx context.Context, replace bool, rows func(storage.RowFunc) error) error {
	const op = "import"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return db.mapErr(ctx, op, err)
	}
	if err := db.importTx(ctx, tx, replace, rows); err != nil {
		tx.Rollback()
		var ce *callerError
		switch {
		case errors.As(err, &ce):
			return ce.err
		case hasSentinel(err) && ctx.Err() == nil:
			return fmt.Errorf("storage/sqlite: %s: %w", op, err)
		}
		return db.mapErr(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return db.mapErr(ctx, op, err)
	}
	return nil
}

func (db *DB) importTx(ctx context.Context, tx *sql.Tx, replace bool, rows func(storage.RowFunc) error) error {
	if replace {
		for _, t := range storage.Tables {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+string(t)); err != nil {
				return err
			}
		}
	} else {
		n, err := countTables(ctx, tx)
		if err != nil {
			return err
		}
		if s := notEmpty(n); s != "" {
			return fmt.Errorf("%w (%s)", storage.ErrNotEmpty, s)
		}
	}
	ins := make(map[storage.Table]*sql.Stmt, len(storage.Tables))
	for t, q := range map[storage.Table]string{
		storage.TableCerts: `INSERT INTO certs (id, account, name, der, fingerprint, state, no_cert_management,
			resource, not_before, not_after, issuer, source, created, changed, key_hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		storage.TableAudit:      `INSERT INTO audit (id, time, actor, action, account, name, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		storage.TableTombstones: `INSERT INTO tombstones (account, deleted, actor) VALUES (?, ?, ?)`,
		storage.TableWatchers:   `INSERT INTO watchers (name, audit_id, seen) VALUES (?, ?, ?)`,
	} {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer st.Close()
		ins[t] = st
	}
	var order storage.TableOrder
	var n int64
	var ours error // the error this callback returned, told apart from rows' own
	err := rows(func(r storage.Row) error {
		ours = db.importRow(ctx, tx, ins, &order, &n, r)
		return ours
	})
	if err != nil && (ours == nil || !errors.Is(err, ours)) {
		return &callerError{err}
	}
	return err
}

// importRow checks and inserts one row of Import.
func (db *DB) importRow(ctx context.Context, tx *sql.Tx, ins map[storage.Table]*sql.Stmt, order *storage.TableOrder, n *int64, r storage.Row) error {
	*n++
	t := storage.RowTable(r)
	if err := order.Next(t); err != nil {
		return err
	}
	if err := storage.CheckRow(r); err != nil {
		return fmt.Errorf("%s row %d: %w", t, *n, err)
	}
	var err error
	switch r := r.(type) {
	case *storage.Cert:
		_, err = ins[t].ExecContext(ctx, r.ID, r.Account, r.Name, r.DER, r.Fingerprint[:], string(r.State),
			r.NoCertManagement, r.Resource, micro(r.NotBefore), micro(r.NotAfter), r.Issuer, string(r.Source),
			micro(r.Created), micro(r.Changed), sqlKeyHash(r.DER))
		if isUnique(err) {
			var dup bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM certs WHERE fingerprint = ? OR id = ?)`,
				r.Fingerprint[:], r.ID).Scan(&dup); err != nil {
				return err
			}
			if dup {
				return fmt.Errorf("%w: certs row id %d: the id or fingerprint %s is stored twice", storage.ErrDuplicate, r.ID, r.Fingerprint)
			}
			return fmt.Errorf("%w: certs row id %d: account %s has two active certificates named %q", storage.ErrNameTaken, r.ID, r.Account, r.Name)
		}
	case *storage.AuditEntry:
		_, err = ins[t].ExecContext(ctx, r.ID, micro(r.Time), r.Actor, string(r.Action), r.Account, r.Name, r.Fingerprint[:])
	case *storage.Tombstone:
		_, err = ins[t].ExecContext(ctx, r.Account, micro(r.Deleted), r.Actor)
	case *storage.PassedOnMark:
		_, err = ins[t].ExecContext(ctx, r.Watcher, r.AuditID, micro(r.Seen))
	}
	if isUnique(err) {
		return fmt.Errorf("%w: %s row %d is stored twice", storage.ErrDuplicate, t, *n)
	}
	if err != nil {
		return fmt.Errorf("%s row %d: %w", t, *n, err)
	}
	return nil
}
