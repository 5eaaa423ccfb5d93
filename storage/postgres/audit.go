package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/saslcert/saslcert/storage"
)

// Audit implements storage.Store. Entries come newest first by ID, which is
// the order their transactions committed in (the write lock).
func (db *DB) Audit(ctx context.Context, account string, limit int) ([]storage.AuditEntry, error) {
	if account == "" {
		return db.auditQuery(ctx, "audit", `SELECT `+auditCols+` FROM audit ORDER BY id DESC LIMIT $1`, limitArg(limit))
	}
	return db.auditQuery(ctx, "audit", `SELECT `+auditCols+` FROM audit WHERE account = $1 ORDER BY id DESC LIMIT $2`,
		account, limitArg(limit))
}

// AuditSince implements storage.Store.
func (db *DB) AuditSince(ctx context.Context, afterID int64, limit int) ([]storage.AuditEntry, error) {
	return db.auditQuery(ctx, "audit since", `SELECT `+auditCols+` FROM audit WHERE id > $1 ORDER BY id LIMIT $2`,
		afterID, limitArg(limit))
}

// limitArg is a LIMIT argument: NULL (no limit) for limit <= 0.
func limitArg(limit int) *int64 {
	if limit <= 0 {
		return nil
	}
	l := int64(limit)
	return &l
}

func (db *DB) auditQuery(ctx context.Context, op, sql string, args ...any) ([]storage.AuditEntry, error) {
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	var out []storage.AuditEntry
	err := db.read(ctx, op, func() error {
		rows, err := db.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanAudit)
		return err
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []storage.AuditEntry{}
	}
	return out, nil
}
