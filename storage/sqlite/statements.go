package sqlite

import (
	"context"
	"database/sql"
)

// certCols are the certs columns in the order scanCert reads them.
const certCols = `id, account, name, der, fingerprint, state, no_cert_management,
	resource, not_before, not_after, issuer, source, created, changed`

const auditCols = `id, time, actor, action, account, name, fingerprint`

// statements are prepared once at Open; database/sql re-prepares them on
// each pooled connection the first time that connection runs them.
type statements struct {
	// Write pool, used inside transactions through Tx.StmtContext.
	insertCert   *sql.Stmt
	insertAudit  *sql.Stmt
	countActive  *sql.Stmt
	fpExists     *sql.Stmt
	findForWrite *sql.Stmt
	setByName    *sql.Stmt
	setByID      *sql.Stmt
	keyOf        *sql.Stmt
	revokeKey    *sql.Stmt
	tombExists   *sql.Stmt
	tombInsert   *sql.Stmt
	tombDelete   *sql.Stmt
	revokeAll    *sql.Stmt
	histExpired  *sql.Stmt
	histCount    *sql.Stmt

	// Read pool.
	find         *sql.Stmt
	list         *sql.Stmt
	auditAll     *sql.Stmt
	auditAccount *sql.Stmt
	auditSince   *sql.Stmt
	walkPage     *sql.Stmt
	tombList     *sql.Stmt
	accountsPage *sql.Stmt
}

func (s *statements) prepare(ctx context.Context, w, r *sql.DB) error {
	for _, p := range []struct {
		dst   **sql.Stmt
		db    *sql.DB
		query string
	}{
		{&s.insertCert, w, `INSERT INTO certs (account, name, der, fingerprint, state, no_cert_management,
			resource, not_before, not_after, issuer, source, created, changed, key_hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.insertAudit, w, `INSERT INTO audit (time, actor, action, account, name, fingerprint)
			VALUES (?, ?, ?, ?, ?, ?)`},
		// state = 'active' literally, so the partial index certs_active_name serves it.
		{&s.countActive, w, `SELECT count(*) FROM certs WHERE account = ? AND state = 'active'`},
		{&s.fpExists, w, `SELECT EXISTS (SELECT 1 FROM certs WHERE fingerprint = ?)`},
		{&s.findForWrite, w, `SELECT ` + certCols + ` FROM certs WHERE fingerprint = ?`},
		{&s.setByName, w, `UPDATE certs SET state = ?, changed = ?
			WHERE account = ? AND name = ? AND state = 'active' RETURNING ` + certCols},
		{&s.setByID, w, `UPDATE certs SET state = ?, changed = ? WHERE id = ? RETURNING ` + certCols},
		// The record's account and key, for revokeKey.
		{&s.keyOf, w, `SELECT key_hash FROM certs WHERE id = ?`},
		{&s.revokeKey, w, `UPDATE certs SET state = 'revoked', changed = ?
			WHERE account = ? AND key_hash = ? AND state <> 'revoked' AND id <> ? RETURNING ` + certCols},
		{&s.tombExists, w, `SELECT EXISTS (SELECT 1 FROM tombstones WHERE account = ?)`},
		{&s.tombInsert, w, `INSERT INTO tombstones (account, deleted, actor) VALUES (?, ?, ?)
			ON CONFLICT (account) DO NOTHING`},
		{&s.tombDelete, w, `DELETE FROM tombstones WHERE account = ?`},
		{&s.revokeAll, w, `UPDATE certs SET state = 'revoked', changed = ?
			WHERE account = ? AND state IN ('active', 'disabled') RETURNING ` + certCols},
		// An account's history (disabled and revoked records), for AddOptions.MaxHistory.
		{&s.histExpired, w, `DELETE FROM certs WHERE account = ? AND state <> 'active' AND not_after < ?`},
		{&s.histCount, w, `SELECT count(*) FROM certs WHERE account = ? AND state <> 'active'`},

		{&s.find, r, `SELECT ` + certCols + ` FROM certs WHERE fingerprint = ?`},
		{&s.list, r, `SELECT ` + certCols + ` FROM certs WHERE account = ? ORDER BY id`},
		// LIMIT -1 means no limit in SQLite.
		{&s.auditAll, r, `SELECT ` + auditCols + ` FROM audit ORDER BY id DESC LIMIT ?`},
		{&s.auditAccount, r, `SELECT ` + auditCols + ` FROM audit WHERE account = ? ORDER BY id DESC LIMIT ?`},
		{&s.auditSince, r, `SELECT ` + auditCols + ` FROM audit WHERE id > ? ORDER BY id LIMIT ?`},
		{&s.walkPage, r, `SELECT ` + certCols + ` FROM certs WHERE id > ? ORDER BY id LIMIT ?`},
		{&s.tombList, r, `SELECT account FROM tombstones ORDER BY account`},
		// Distinct accounts with usable records, a page at a time (index certs_account).
		{&s.accountsPage, r, `SELECT DISTINCT account FROM certs
			WHERE account > ? AND state IN ('active', 'disabled') ORDER BY account LIMIT ?`},
	} {
		st, err := p.db.PrepareContext(ctx, p.query)
		if err != nil {
			return err
		}
		*p.dst = st
	}
	return nil
}

func (s *statements) close() {
	for _, st := range []*sql.Stmt{
		s.insertCert, s.insertAudit, s.countActive, s.fpExists, s.findForWrite, s.setByName, s.setByID,
		s.keyOf, s.revokeKey, s.tombExists, s.tombInsert, s.tombDelete, s.revokeAll, s.histExpired, s.histCount,
		s.find, s.list, s.auditAll, s.auditAccount, s.auditSince, s.walkPage, s.tombList, s.accountsPage,
	} {
		if st != nil {
			st.Close()
		}
	}
}
