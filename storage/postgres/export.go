package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

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
	scan  func(pgx.Row) (storage.Row, error)
}{
	{storage.TableCerts, `SELECT ` + certCols + ` FROM certs ORDER BY id`, func(r pgx.Row) (storage.Row, error) { return scanCert(r) }},
	{storage.TableAudit, `SELECT ` + auditCols + ` FROM audit ORDER BY id`, func(r pgx.Row) (storage.Row, error) {
		e, err := scanAudit(r.(pgx.CollectableRow))
		return &e, err
	}},
	{storage.TableTombstones, `SELECT account, deleted, actor FROM tombstones ORDER BY account`, func(r pgx.Row) (storage.Row, error) {
		t := new(storage.Tombstone)
		err := r.Scan(&t.Account, &t.Deleted, &t.Actor)
		t.Deleted = t.Deleted.UTC()
		return t, err
	}},
	{storage.TableWatchers, `SELECT name, audit_id, seen FROM watchers ORDER BY name`, func(r pgx.Row) (storage.Row, error) {
		m := new(storage.PassedOnMark)
		err := r.Scan(&m.Watcher, &m.AuditID, &m.Seen)
		m.Seen = m.Seen.UTC()
		return m, err
	}},
}

// callerError carries an error of the caller's function through Export and
// Import, so that it is returned as it is, not mapped.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

// Export implements storage.Exporter: one REPEATABLE READ, READ ONLY
// transaction (one snapshot), a query per table, rows streamed.
func (db *DB) Export(ctx context.Context, fn storage.RowFunc) error {
	const op = "export"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return db.mapErr(ctx, op, err)
	}
	defer tx.Rollback(context.Background())
	for _, q := range exportQueries {
		if err := exportTable(ctx, tx, q.query, q.scan, fn); err != nil {
			var ce *callerError
			if errors.As(err, &ce) {
				return ce.err
			}
			return db.mapErr(ctx, op+" "+string(q.table), err)
		}
	}
	return nil
}

func exportTable(ctx context.Context, tx pgx.Tx, query string, scan func(pgx.Row) (storage.Row, error), fn storage.RowFunc) error {
	rows, err := tx.Query(ctx, query)
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
	var n map[storage.Table]int64
	err := db.read(ctx, op, func() error {
		var err error
		n, err = countTables(ctx, db.pool)
		return err
	})
	return n, err
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func countTables(ctx context.Context, q queryRower) (map[storage.Table]int64, error) {
	var c, a, t, w int64
	err := q.QueryRow(ctx, `SELECT (SELECT count(*) FROM certs), (SELECT count(*) FROM audit),
		(SELECT count(*) FROM tombstones), (SELECT count(*) FROM watchers)`).Scan(&c, &a, &t, &w)
	if err != nil {
		return nil, err
	}
	return map[storage.Table]int64{storage.TableCerts: c, storage.TableAudit: a, storage.TableTombstones: t, storage.TableWatchers: w}, nil
}

// importBatch is the number of rows sent in one COPY.
const importBatch = 5000

// importColumns are the columns Import writes, per table, in the order
// importValues gives them.
var importColumns = map[storage.Table][]string{
	storage.TableCerts: {"id", "account", "name", "der", "fingerprint", "state", "no_cert_management", "resource",
		"not_before", "not_after", "issuer", "source", "created", "changed", "key_hash"},
	storage.TableAudit:      {"id", "time", "actor", "action", "account", "name", "fingerprint"},
	storage.TableTombstones: {"account", "deleted", "actor"},
	storage.TableWatchers:   {"name", "audit_id", "seen"},
}

func importValues(r storage.Row) []any {
	switch r := r.(type) {
	case *storage.Cert:
		var kh []byte
		if h, ok := storage.KeyHashOf(r.DER); ok {
			kh = h[:]
		}
		return []any{r.ID, r.Account, r.Name, r.DER, r.Fingerprint[:], string(r.State), r.NoCertManagement, r.Resource,
			r.NotBefore, r.NotAfter, r.Issuer, string(r.Source), r.Created, r.Changed, kh}
	case *storage.AuditEntry:
		return []any{r.ID, r.Time, r.Actor, string(r.Action), r.Account, r.Name, r.Fingerprint[:]}
	case *storage.Tombstone:
		return []any{r.Account, r.Deleted, r.Actor}
	case *storage.PassedOnMark:
		return []any{r.Watcher, r.AuditID, r.Seen}
	}
	return nil
}

// Import implements storage.Importer: one transaction holding the write
// lock (writeLock), rows sent with COPY in batches of importBatch, the
// identity sequences moved past the largest imported IDs. It is not
// retried (rows cannot be read twice): a failure changes nothing and is
// returned.
func (db *DB) Import(ctx context.Context, replace bool, rows func(storage.RowFunc) error) error {
	const op = "import"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	err := db.importTx(ctx, replace, rows)
	var ce *callerError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return ce.err
	case hasSentinel(err) && ctx.Err() == nil:
		return fmt.Errorf("storage/postgres: %s: %w", op, err)
	}
	return db.mapErr(ctx, op, err)
}

func (db *DB) importTx(ctx context.Context, replace bool, rows func(storage.RowFunc) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
		return err
	}
	if replace {
		if _, err := tx.Exec(ctx, `DELETE FROM certs; DELETE FROM audit; DELETE FROM tombstones; DELETE FROM watchers`); err != nil {
			return err
		}
	} else {
		n, err := countTables(ctx, tx)
		if err != nil {
			return err
		}
		var parts []string
		for _, t := range storage.Tables {
			if n[t] > 0 {
				parts = append(parts, fmt.Sprintf("%s: %d rows", t, n[t]))
			}
		}
		if len(parts) > 0 {
			return fmt.Errorf("%w (%s)", storage.ErrNotEmpty, strings.Join(parts, ", "))
		}
	}
	b := &importBuffer{ctx: ctx, tx: tx}
	var ours error
	err = rows(func(r storage.Row) error {
		ours = b.add(r)
		return ours
	})
	if err != nil && (ours == nil || !errors.Is(err, ours)) {
		return &callerError{err}
	}
	if err != nil {
		return err
	}
	if err := b.flush(); err != nil {
		return err
	}
	for _, t := range []string{"certs", "audit"} {
		if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('`+t+`', 'id'), COALESCE((SELECT max(id) FROM `+t+`), 0) + 1, false)`); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// importBuffer collects the rows of one table and sends them with COPY.
type importBuffer struct {
	ctx   context.Context
	tx    pgx.Tx
	order storage.TableOrder
	table storage.Table
	rows  [][]any
	first int64 // number of the buffer's first row in the import
	n     int64 // rows seen
}

func (b *importBuffer) add(r storage.Row) error {
	b.n++
	t := storage.RowTable(r)
	if err := b.order.Next(t); err != nil {
		return err
	}
	if err := storage.CheckRow(r); err != nil {
		return fmt.Errorf("%s row %d: %w", t, b.n, err)
	}
	if t != b.table || len(b.rows) == importBatch {
		if err := b.flush(); err != nil {
			return err
		}
		b.table, b.first = t, b.n
	}
	b.rows = append(b.rows, importValues(r))
	return nil
}

func (b *importBuffer) flush() error {
	if len(b.rows) == 0 {
		return nil
	}
	_, err := b.tx.CopyFrom(b.ctx, pgx.Identifier{string(b.table)}, importColumns[b.table], pgx.CopyFromRows(b.rows))
	if sqlState(err) == "23505" {
		what := fmt.Sprintf("rows %d..%d of %s", b.first, b.first+int64(len(b.rows))-1, b.table)
		if constraintName(err) == "certs_active_name" {
			return fmt.Errorf("%w: %s: an account has two active certificates of one name: %w", storage.ErrNameTaken, what, err)
		}
		return fmt.Errorf("%w: %s: a key (%s) is stored twice: %w", storage.ErrDuplicate, what, constraintName(err), err)
	}
	if err != nil {
		return fmt.Errorf("%s rows %d..%d: %w", b.table, b.first, b.first+int64(len(b.rows))-1, err)
	}
	b.rows = b.rows[:0]
	return nil
}
