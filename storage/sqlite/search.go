package sqlite

import (
	"context"
	"strings"

	"github.com/saslcert/saslcert/storage"
)

var _ storage.Searcher = (*DB)(nil)

// domainExpr is the account's domain, exactly as the indexes certs_domain
// and audit_domain (migration 0006) name it.
const domainExpr = `substr(account, instr(account, '@') + 1)`

// SearchCerts implements storage.Searcher from the index certs_domain.
func (db *DB) SearchCerts(ctx context.Context, q storage.CertQuery) ([]*storage.Cert, error) {
	const op = "search certs"
	if err := q.Check(); err != nil {
		return nil, err
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	query, args := certSearch(q)
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	defer rows.Close()
	out := []*storage.Cert{}
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, db.mapErr(ctx, op, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	return out, nil
}

// SearchAudit implements storage.Searcher from the index audit_domain.
func (db *DB) SearchAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditEntry, error) {
	const op = "search audit"
	if err := q.Check(); err != nil {
		return nil, err
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	query, args := auditSearch(q)
	rows, err := db.r.QueryContext(ctx, query, args...)
	return db.auditRows(ctx, op, rows, err)
}

// certSearch is the query of SearchCerts and its arguments.
func certSearch(q storage.CertQuery) (string, []any) {
	where := []string{domainExpr + ` = ?`, `id > ?`}
	args := []any{q.Domain, q.AfterID}
	if q.Account != "" {
		where, args = append(where, `account = ?`), append(args, q.Account)
	}
	if len(q.States) > 0 {
		where = append(where, `state IN (?`+strings.Repeat(`, ?`, len(q.States)-1)+`)`)
		for _, s := range q.States {
			args = append(args, string(s))
		}
	}
	if q.NameContains != "" {
		// instr is byte-wise and case-sensitive, as storage.CertQuery.Match.
		where, args = append(where, `instr(name, ?) > 0`), append(args, q.NameContains)
	}
	if !q.ExpiresAfter.IsZero() {
		where, args = append(where, `not_after >= ?`), append(args, micro(q.ExpiresAfter))
	}
	if !q.ExpiresBefore.IsZero() {
		where, args = append(where, `not_after < ?`), append(args, micro(q.ExpiresBefore))
	}
	args = append(args, q.Limit)
	return `SELECT ` + certCols + ` FROM certs WHERE ` + strings.Join(where, ` AND `) +
		` ORDER BY id LIMIT ?`, args
}

// auditSearch is the query of SearchAudit and its arguments.
func auditSearch(q storage.AuditQuery) (string, []any) {
	where := []string{domainExpr + ` = ?`, `id > ?`}
	args := []any{q.Domain, q.AfterID}
	if q.Account != "" {
		where, args = append(where, `account = ?`), append(args, q.Account)
	}
	if q.Actor != "" {
		where, args = append(where, `actor = ?`), append(args, q.Actor)
	}
	if !q.Since.IsZero() {
		where, args = append(where, `time >= ?`), append(args, micro(q.Since))
	}
	args = append(args, q.Limit)
	return `SELECT ` + auditCols + ` FROM audit WHERE ` + strings.Join(where, ` AND `) +
		` ORDER BY id LIMIT ?`, args
}
