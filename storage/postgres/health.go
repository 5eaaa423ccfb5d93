package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/saslcert/saslcert/storage"
)

var (
	_ storage.Pinger  = (*DB)(nil)
	_ storage.Counter = (*DB)(nil)
)

// Ping implements storage.Pinger: one trivial read on a pooled connection
// (a dead one is replaced and the read tried again, as every read is).
// Errors: storage.ErrUnavailable.
func (db *DB) Ping(ctx context.Context) error {
	const op = "ping"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	return db.read(ctx, op, func() error {
		var n int
		return db.pool.QueryRow(ctx, `SELECT 1`).Scan(&n)
	})
}

// CountCerts implements storage.Counter: the records by state and the
// tombstones, in one REPEATABLE READ transaction so the counts agree. It
// scans the certs table (the metrics cache it).
func (db *DB) CountCerts(ctx context.Context) (storage.Counts, error) {
	const op = "count certificates"
	var out storage.Counts
	if err := db.begin(ctx, op); err != nil {
		return out, err
	}
	err := db.read(ctx, op, func() error {
		out = storage.Counts{Certs: map[storage.State]int64{}}
		tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.Background()) }()
		rows, err := tx.Query(ctx, `SELECT state, count(*) FROM certs GROUP BY state`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var state string
			var n int64
			if err := rows.Scan(&state, &n); err != nil {
				rows.Close()
				return err
			}
			out.Certs[storage.State(state)] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM tombstones`).Scan(&out.Tombstones)
	})
	return out, err
}
