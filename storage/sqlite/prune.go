package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/saslcert/saslcert/storage"
)

// checkHistory deletes the account's expired disabled and revoked records
// (NotAfter before opts.ExpiredBefore) and fails with ErrHistoryFull if more
// than opts.MaxHistory of them remain. It runs inside AddCert's transaction.
func (db *DB) checkHistory(ctx context.Context, tx *sql.Tx, account string, opts storage.AddOptions) error {
	if !opts.ExpiredBefore.IsZero() {
		if _, err := tx.StmtContext(ctx, db.st.histExpired).ExecContext(ctx, account, micro(opts.ExpiredBefore)); err != nil {
			return err
		}
	}
	var n int
	if err := tx.StmtContext(ctx, db.st.histCount).QueryRowContext(ctx, account).Scan(&n); err != nil {
		return err
	}
	if n > opts.MaxHistory {
		return fmt.Errorf("%w: account %s keeps %d disabled or revoked certificates that have not expired (at most %d)",
			storage.ErrHistoryFull, account, n, opts.MaxHistory)
	}
	return nil
}

// Prune implements storage.Store.
func (db *DB) Prune(ctx context.Context, opts storage.PruneOptions) (storage.PruneResult, error) {
	const op = "prune"
	var res storage.PruneResult
	if err := db.begin(ctx, op); err != nil {
		return res, err
	}
	err := db.write(ctx, op, func(tx *sql.Tx) error {
		if !opts.ExpiredBefore.IsZero() {
			r, err := tx.ExecContext(ctx, `DELETE FROM certs WHERE state <> 'active' AND not_after < ?`, micro(opts.ExpiredBefore))
			if err != nil {
				return err
			}
			if res.Certs, err = r.RowsAffected(); err != nil {
				return err
			}
		}
		if !opts.AuditBefore.IsZero() {
			r, err := tx.ExecContext(ctx, `DELETE FROM audit WHERE time < ?`, micro(opts.AuditBefore))
			if err != nil {
				return err
			}
			if res.Audit, err = r.RowsAffected(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return storage.PruneResult{}, err
	}
	return res, nil
}
