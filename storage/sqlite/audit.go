package sqlite

import (
	"context"
	"database/sql"

	"github.com/saslcert/saslcert/storage"
)

// Audit implements storage.Store. Entries come newest first by ID, which is
// the order they were written in (not the clock's, should it go backwards).
func (db *DB) Audit(ctx context.Context, account string, limit int) ([]storage.AuditEntry, error) {
	const op = "audit"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	lim := int64(limit)
	if limit <= 0 {
		lim = -1 // no limit
	}
	var rows *sql.Rows
	var err error
	if account == "" {
		rows, err = db.st.auditAll.QueryContext(ctx, lim)
	} else {
		rows, err = db.st.auditAccount.QueryContext(ctx, account, lim)
	}
	return db.auditRows(ctx, op, rows, err)
}

// AuditSince implements storage.Store.
func (db *DB) AuditSince(ctx context.Context, afterID int64, limit int) ([]storage.AuditEntry, error) {
	const op = "audit since"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	lim := int64(limit)
	if limit <= 0 {
		lim = -1 // no limit
	}
	rows, err := db.st.auditSince.QueryContext(ctx, afterID, lim)
	return db.auditRows(ctx, op, rows, err)
}

// auditRows reads the entries of an audit query (rows, err as QueryContext
// returned them).
func (db *DB) auditRows(ctx context.Context, op string, rows *sql.Rows, err error) ([]storage.AuditEntry, error) {
	if err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	defer rows.Close()
	entries := []storage.AuditEntry{}
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, db.mapErr(ctx, op, err)
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	return entries, nil
}
