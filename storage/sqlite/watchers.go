package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/saslcert/saslcert/storage"
)

// MarkPassedOn implements storage.Store.
func (db *DB) MarkPassedOn(ctx context.Context, watcher string, auditID int64) error {
	const op = "mark passed on"
	if watcher == "" {
		return fmt.Errorf("storage/sqlite: %s: %w: empty watcher", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	now := db.clock()
	return db.write(ctx, op, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO watchers (name, audit_id, seen) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET audit_id = max(audit_id, excluded.audit_id), seen = excluded.seen`,
			watcher, auditID, micro(now))
		return err
	})
}

// PassedOn implements storage.Store.
func (db *DB) PassedOn(ctx context.Context) ([]storage.PassedOnMark, error) {
	const op = "passed on"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT name, audit_id, seen FROM watchers ORDER BY name`)
	if err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	defer rows.Close()
	marks := []storage.PassedOnMark{}
	for rows.Next() {
		var m storage.PassedOnMark
		var seen int64
		if err := rows.Scan(&m.Watcher, &m.AuditID, &seen); err != nil {
			return nil, db.mapErr(ctx, op, err)
		}
		m.Seen = fromMicro(seen)
		marks = append(marks, m)
	}
	if err := rows.Err(); err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	return marks, nil
}
