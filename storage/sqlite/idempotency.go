package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/saslcert/saslcert/storage"
)

var _ storage.Idempotency = (*DB)(nil)

// ClaimIdempotency implements storage.Idempotency in one write transaction:
// expired entries (of every key) are deleted, then the key is read and, if
// free, inserted as pending.
func (db *DB) ClaimIdempotency(ctx context.Context, c storage.IdempotencyClaim) (*storage.IdempotentResponse, error) {
	const op = "claim idempotency key"
	if c.Scope == "" || c.Key == "" || c.TTL <= 0 {
		return nil, fmt.Errorf("storage/sqlite: %s: %w: empty scope or key, or no TTL", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	now := db.clock()
	var found *storage.IdempotentResponse
	err := db.write(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE expires <= ?`, micro(now)); err != nil {
			return err
		}
		if c.PendingTTL > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE scope = ? AND key = ? AND done = 0 AND created <= ?`,
				c.Scope, c.Key, micro(now.Add(-c.PendingTTL))); err != nil {
				return err
			}
		}
		r := new(storage.IdempotentResponse)
		var hash []byte
		err := tx.QueryRowContext(ctx, `SELECT hash, done, status, content_type, body FROM idempotency WHERE scope = ? AND key = ?`,
			c.Scope, c.Key).Scan(&hash, &r.Done, &r.Status, &r.ContentType, &r.Body)
		switch {
		case err == nil:
			copy(r.Hash[:], hash)
			found = r
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO idempotency (scope, key, hash, done, status, content_type, body, created, expires)
			VALUES (?, ?, ?, 0, 0, '', x'', ?, ?)`, c.Scope, c.Key, c.Hash[:], micro(now), micro(now.Add(c.TTL)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// CompleteIdempotency implements storage.Idempotency.
func (db *DB) CompleteIdempotency(ctx context.Context, scope, key string, resp storage.IdempotentResponse) error {
	const op = "complete idempotency key"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	body := resp.Body
	if body == nil {
		body = []byte{}
	}
	return db.write(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE idempotency SET done = 1, status = ?, content_type = ?, body = ?
			WHERE scope = ? AND key = ? AND done = 0`, resp.Status, resp.ContentType, body, scope, key)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: %s", storage.ErrClaimLost, key)
		}
		return nil
	})
}

// ReleaseIdempotency implements storage.Idempotency.
func (db *DB) ReleaseIdempotency(ctx context.Context, scope, key string) error {
	const op = "release idempotency key"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	return db.write(ctx, op, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE scope = ? AND key = ? AND done = 0`, scope, key)
		return err
	})
}
