package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/saslcert/saslcert/storage"
)

// MarkPassedOn implements storage.Store. It does not take the write lock:
// one upsert on the watcher's own row.
func (db *DB) MarkPassedOn(ctx context.Context, watcher string, auditID int64) error {
	const op = "mark passed on"
	if watcher == "" {
		return fmt.Errorf("storage/postgres: %s: %w: empty watcher", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	now := db.clock()
	return db.read(ctx, op, func() error {
		_, err := db.pool.Exec(ctx, `INSERT INTO watchers (name, audit_id, seen) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET audit_id = greatest(watchers.audit_id, excluded.audit_id), seen = excluded.seen`,
			watcher, auditID, now)
		return err
	})
}

// PassedOn implements storage.Store.
func (db *DB) PassedOn(ctx context.Context) ([]storage.PassedOnMark, error) {
	const op = "passed on"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	var marks []storage.PassedOnMark
	err := db.read(ctx, op, func() error {
		rows, err := db.pool.Query(ctx, `SELECT name, audit_id, seen FROM watchers ORDER BY name`)
		if err != nil {
			return err
		}
		marks, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.PassedOnMark, error) {
			var m storage.PassedOnMark
			err := r.Scan(&m.Watcher, &m.AuditID, &m.Seen)
			m.Seen = m.Seen.UTC()
			return m, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	if marks == nil {
		marks = []storage.PassedOnMark{}
	}
	return marks, nil
}
