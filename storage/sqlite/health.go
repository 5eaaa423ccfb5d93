package sqlite

import (
	"context"

	"github.com/saslcert/saslcert/storage"
)

var (
	_ storage.Pinger  = (*DB)(nil)
	_ storage.Counter = (*DB)(nil)
)

// Ping implements storage.Pinger: one read of the schema table through the
// read pool.
func (db *DB) Ping(ctx context.Context) error {
	const op = "ping"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
		return db.mapErr(ctx, op, err)
	}
	return nil
}

// CountCerts implements storage.Counter. It scans the certs table (one
// read transaction, so the counts are consistent).
func (db *DB) CountCerts(ctx context.Context) (storage.Counts, error) {
	const op = "count certificates"
	out := storage.Counts{Certs: map[storage.State]int64{}}
	if err := db.begin(ctx, op); err != nil {
		return out, err
	}
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return out, db.mapErr(ctx, op, err)
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, `SELECT state, count(*) FROM certs GROUP BY state`)
	if err != nil {
		return out, db.mapErr(ctx, op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return out, db.mapErr(ctx, op, err)
		}
		out.Certs[storage.State(state)] = n
	}
	if err := rows.Err(); err != nil {
		return out, db.mapErr(ctx, op, err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tombstones`).Scan(&out.Tombstones); err != nil {
		return out, db.mapErr(ctx, op, err)
	}
	return out, nil
}
