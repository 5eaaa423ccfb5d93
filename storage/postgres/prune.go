package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/saslcert/saslcert/storage"
)

// checkHistory deletes the account's expired disabled and revoked records
// and fails with ErrHistoryFull if more than opts.MaxHistory remain. It
// runs inside AddCert's transaction.
func checkHistory(ctx context.Context, tx pgx.Tx, account string, opts storage.AddOptions) error {
	if !opts.ExpiredBefore.IsZero() {
		if _, err := tx.Exec(ctx, `DELETE FROM certs WHERE account = $1 AND state <> 'active' AND not_after < $2`,
			account, opts.ExpiredBefore); err != nil {
			return err
		}
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM certs WHERE account = $1 AND state <> 'active'`, account).Scan(&n); err != nil {
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
	err := db.write(ctx, op, func(tx pgx.Tx) error {
		res = storage.PruneResult{}
		if !opts.ExpiredBefore.IsZero() {
			tag, err := tx.Exec(ctx, `DELETE FROM certs WHERE state <> 'active' AND not_after < $1`, opts.ExpiredBefore)
			if err != nil {
				return err
			}
			res.Certs = tag.RowsAffected()
		}
		if !opts.AuditBefore.IsZero() {
			tag, err := tx.Exec(ctx, `DELETE FROM audit WHERE time < $1`, opts.AuditBefore)
			if err != nil {
				return err
			}
			res.Audit = tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return storage.PruneResult{}, err
	}
	return res, nil
}

// walkPageSize is how many records WalkCerts reads per query.
const walkPageSize = 256

// WalkCerts implements storage.Store. Each page is read in its own query,
// holding no connection while fn runs, so fn may use the store; every
// record that existed before the walk began and is not deleted is visited
// exactly once.
func (db *DB) WalkCerts(ctx context.Context, fn func(*storage.Cert) error) error {
	const op = "walk certs"
	var after int64
	for {
		if err := db.begin(ctx, op); err != nil {
			return err
		}
		var page []*storage.Cert
		err := db.read(ctx, op, func() error {
			var err error
			page, err = scanCerts(db.pool.Query(ctx, `SELECT `+certCols+` FROM certs WHERE id > $1 ORDER BY id LIMIT $2`,
				after, walkPageSize))
			return err
		})
		if err != nil {
			return err
		}
		for _, c := range page {
			if err := fn(c); err != nil {
				return err
			}
		}
		if len(page) < walkPageSize {
			return nil
		}
		after = page[len(page)-1].ID
	}
}
