package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/saslcert/saslcert/storage"
)

// RevokeAccount implements storage.Store: one UPDATE of the account's active
// and disabled records, an audit row per record and (opts.Deleted) the
// tombstone, in one BEGIN IMMEDIATE transaction.
func (db *DB) RevokeAccount(ctx context.Context, account string, opts storage.RevokeAccountOptions) ([]*storage.Cert, error) {
	const op = "revoke account"
	if account == "" {
		return nil, fmt.Errorf("storage/sqlite: %s: %w: empty account", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	now := db.clock()
	var revoked []*storage.Cert
	err := db.write(ctx, op, func(tx *sql.Tx) error {
		revoked = nil
		rows, err := tx.StmtContext(ctx, db.st.revokeAll).QueryContext(ctx, micro(now), account)
		if err != nil {
			return err
		}
		for rows.Next() {
			c, err := scanCert(rows)
			if err != nil {
				rows.Close()
				return err
			}
			revoked = append(revoked, c)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// RETURNING gives no order; audit and answer oldest first.
		slices.SortFunc(revoked, func(a, b *storage.Cert) int { return cmp.Compare(a.ID, b.ID) })
		ins := newInserter(ctx, tx, &db.st)
		for _, c := range revoked {
			if err := ins.audit(now, opts.Actor, storage.ActionRevoke, c); err != nil {
				return err
			}
		}
		if opts.Deleted {
			if _, err := tx.StmtContext(ctx, db.st.tombInsert).ExecContext(ctx, account, micro(now), opts.Actor); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if revoked == nil {
		revoked = []*storage.Cert{}
	}
	return revoked, nil
}

// ClearTombstone implements storage.Store.
func (db *DB) ClearTombstone(ctx context.Context, account string) (bool, error) {
	const op = "clear tombstone"
	if account == "" {
		return false, fmt.Errorf("storage/sqlite: %s: %w: empty account", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return false, err
	}
	var cleared bool
	err := db.write(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, db.st.tombDelete).ExecContext(ctx, account)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		cleared = n > 0
		return err
	})
	if err != nil {
		return false, err
	}
	return cleared, nil
}

// Tombstones implements storage.Store.
func (db *DB) Tombstones(ctx context.Context) ([]string, error) {
	return db.queryStrings(ctx, "list tombstones", db.st.tombList)
}

// Accounts implements storage.Store.
func (db *DB) Accounts(ctx context.Context, after string, limit int) ([]string, error) {
	const op = "list accounts"
	if limit <= 0 {
		return nil, fmt.Errorf("storage/sqlite: %s: %w: limit %d", op, storage.ErrInvalid, limit)
	}
	return db.queryStrings(ctx, op, db.st.accountsPage, after, limit)
}

// queryStrings runs a read statement whose rows are one string each and
// returns them (an empty slice, not nil, for no rows).
func (db *DB) queryStrings(ctx context.Context, op string, stmt *sql.Stmt, args ...any) ([]string, error) {
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, db.mapErr(ctx, op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	return out, nil
}
