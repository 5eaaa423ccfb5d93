package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/saslcert/saslcert/storage"
)

// RevokeAccount implements storage.Store: one UPDATE of the account's active
// and disabled records, an audit row per record and (opts.Deleted) the
// tombstone, in one transaction under the write lock.
func (db *DB) RevokeAccount(ctx context.Context, account string, opts storage.RevokeAccountOptions) ([]*storage.Cert, error) {
	const op = "revoke account"
	if account == "" {
		return nil, fmt.Errorf("storage/postgres: %s: %w: empty account", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	now := db.clock()
	var revoked []*storage.Cert
	err := db.write(ctx, op, func(tx pgx.Tx) error {
		var err error
		revoked, err = scanCerts(tx.Query(ctx, `WITH r AS (UPDATE certs SET state = 'revoked', changed = $1
				WHERE account = $2 AND state IN ('active', 'disabled') RETURNING `+certCols+`)
			SELECT `+certCols+` FROM r ORDER BY id`, now, account))
		if err != nil {
			return err
		}
		for _, c := range revoked {
			if err := audit(ctx, tx, now, opts.Actor, storage.ActionRevoke, c); err != nil {
				return err
			}
		}
		if opts.Deleted {
			if _, err := tx.Exec(ctx, `INSERT INTO tombstones (account, deleted, actor) VALUES ($1, $2, $3)
				ON CONFLICT (account) DO NOTHING`, account, now, opts.Actor); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return revoked, nil
}

// ClearTombstone implements storage.Store.
func (db *DB) ClearTombstone(ctx context.Context, account string) (bool, error) {
	const op = "clear tombstone"
	if account == "" {
		return false, fmt.Errorf("storage/postgres: %s: %w: empty account", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return false, err
	}
	var cleared bool
	err := db.write(ctx, op, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM tombstones WHERE account = $1`, account)
		cleared = tag.RowsAffected() > 0
		return err
	})
	if err != nil {
		return false, err
	}
	return cleared, nil
}

// Tombstones implements storage.Store.
func (db *DB) Tombstones(ctx context.Context) ([]string, error) {
	return db.queryStrings(ctx, "list tombstones", `SELECT account FROM tombstones ORDER BY account`)
}

// Accounts implements storage.Store.
func (db *DB) Accounts(ctx context.Context, after string, limit int) ([]string, error) {
	const op = "list accounts"
	if limit <= 0 {
		return nil, fmt.Errorf("storage/postgres: %s: %w: limit %d", op, storage.ErrInvalid, limit)
	}
	return db.queryStrings(ctx, op, `SELECT DISTINCT account FROM certs
		WHERE account > $1 AND state IN ('active', 'disabled') ORDER BY account LIMIT $2`, after, limit)
}

// queryStrings runs a query whose rows are one string each (an empty
// slice, not nil, for no rows).
func (db *DB) queryStrings(ctx context.Context, op, sql string, args ...any) ([]string, error) {
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	var out []string
	err := db.read(ctx, op, func() error {
		rows, err := db.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}
