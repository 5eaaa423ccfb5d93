package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/saslcert/saslcert/storage"
)

// The /v1 API's optional interfaces (migration 0020_api).
var (
	_ storage.Searcher    = (*DB)(nil)
	_ storage.Idempotency = (*DB)(nil)
)

// domainExpr is the account's domain, as the indexes certs_domain and
// audit_domain name it.
const domainExpr = `split_part(account, '@', 2)`

// where collects the conditions of a search and their numbered arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(w.args))))
}

func (w *where) sql(table, cols string, limit int) string {
	w.args = append(w.args, limit)
	return `SELECT ` + cols + ` FROM ` + table + ` WHERE ` + strings.Join(w.conds, ` AND `) +
		` ORDER BY id LIMIT $` + strconv.Itoa(len(w.args))
}

// SearchCerts implements storage.Searcher from the index certs_domain.
func (db *DB) SearchCerts(ctx context.Context, q storage.CertQuery) ([]*storage.Cert, error) {
	const op = "search certs"
	if err := q.Check(); err != nil {
		return nil, err
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	w := &where{}
	w.add(domainExpr+` = ?`, q.Domain)
	w.add(`id > ?`, q.AfterID)
	if q.Account != "" {
		w.add(`account = ?`, q.Account)
	}
	if len(q.States) > 0 {
		states := make([]string, len(q.States))
		for i, s := range q.States {
			states[i] = string(s)
		}
		w.add(`state = ANY(?)`, states)
	}
	if q.NameContains != "" {
		w.add(`strpos(name, ?) > 0`, q.NameContains)
	}
	if !q.ExpiresAfter.IsZero() {
		w.add(`not_after >= ?`, q.ExpiresAfter)
	}
	if !q.ExpiresBefore.IsZero() {
		w.add(`not_after < ?`, q.ExpiresBefore)
	}
	query := w.sql("certs", certCols, q.Limit)
	var out []*storage.Cert
	err := db.read(ctx, op, func() error {
		var err error
		out, err = scanCerts(db.pool.Query(ctx, query, w.args...))
		return err
	})
	return out, err
}

// SearchAudit implements storage.Searcher from the index audit_domain.
func (db *DB) SearchAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditEntry, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	w := &where{}
	w.add(domainExpr+` = ?`, q.Domain)
	w.add(`id > ?`, q.AfterID)
	if q.Account != "" {
		w.add(`account = ?`, q.Account)
	}
	if q.Actor != "" {
		w.add(`actor = ?`, q.Actor)
	}
	if !q.Since.IsZero() {
		w.add(`time >= ?`, q.Since)
	}
	query := w.sql("audit", auditCols, q.Limit)
	return db.auditQuery(ctx, "search audit", query, w.args...)
}

// ClaimIdempotency implements storage.Idempotency in one write transaction
// (under the store's write lock): expired entries are deleted, then the key
// is read and, if free, inserted as pending.
func (db *DB) ClaimIdempotency(ctx context.Context, c storage.IdempotencyClaim) (*storage.IdempotentResponse, error) {
	const op = "claim idempotency key"
	if c.Scope == "" || c.Key == "" || c.TTL <= 0 {
		return nil, fmt.Errorf("storage/postgres: %s: %w: empty scope or key, or no TTL", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	now := db.clock()
	var found *storage.IdempotentResponse
	err := db.write(ctx, op, func(tx pgx.Tx) error {
		found = nil
		if _, err := tx.Exec(ctx, `DELETE FROM idempotency WHERE expires <= $1`, now); err != nil {
			return err
		}
		if c.PendingTTL > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM idempotency WHERE scope = $1 AND key = $2 AND NOT done AND created <= $3`,
				c.Scope, c.Key, now.Add(-c.PendingTTL)); err != nil {
				return err
			}
		}
		r := new(storage.IdempotentResponse)
		var hash []byte
		err := tx.QueryRow(ctx, `SELECT hash, done, status, content_type, body FROM idempotency WHERE scope = $1 AND key = $2`,
			c.Scope, c.Key).Scan(&hash, &r.Done, &r.Status, &r.ContentType, &r.Body)
		switch {
		case err == nil:
			copy(r.Hash[:], hash)
			found = r
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO idempotency (scope, key, hash, done, status, content_type, body, created, expires)
			VALUES ($1, $2, $3, false, 0, '', '', $4, $5)`, c.Scope, c.Key, c.Hash[:], now, now.Add(c.TTL))
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
	var updated int64
	err := db.write(ctx, op, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE idempotency SET done = true, status = $1, content_type = $2, body = $3
			WHERE scope = $4 AND key = $5 AND NOT done`, resp.Status, resp.ContentType, body, scope, key)
		updated = tag.RowsAffected()
		return err
	})
	if err == nil && updated == 0 {
		return fmt.Errorf("storage/postgres: %s %s: %w", op, key, storage.ErrClaimLost)
	}
	return err
}

// ReleaseIdempotency implements storage.Idempotency.
func (db *DB) ReleaseIdempotency(ctx context.Context, scope, key string) error {
	const op = "release idempotency key"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	return db.write(ctx, op, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM idempotency WHERE scope = $1 AND key = $2 AND NOT done`, scope, key)
		return err
	})
}
