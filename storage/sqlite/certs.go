package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// AddCert implements storage.Store. Duplicate and name checks come from the
// unique indexes; the MaxActive check counts the account's active records
// after the insert, in the same BEGIN IMMEDIATE transaction, so concurrent
// adds cannot overshoot the limit. When several checks fail, ErrDuplicate
// wins over ErrNameTaken, which wins over ErrLimit.
func (db *DB) AddCert(ctx context.Context, c *storage.Cert, opts storage.AddOptions) error {
	const op = "add cert"
	if err := storage.CheckRecord(c, false); err != nil {
		return fmt.Errorf("storage/sqlite: %s: %w", op, err)
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	now := db.clock()
	var id int64
	err := db.write(ctx, op, func(tx *sql.Tx) error {
		if opts.Renews != (storage.Fingerprint{}) {
			if err := db.checkRenews(ctx, tx, c, opts.Renews); err != nil {
				return err
			}
		}
		ins := newInserter(ctx, tx, &db.st)
		var err error
		if id, err = ins.insert(c, storage.StateActive, now, now, now, opts.Actor); err != nil {
			return err
		}
		if opts.MaxActive > 0 {
			var n int
			if err := tx.StmtContext(ctx, db.st.countActive).QueryRowContext(ctx, c.Account).Scan(&n); err != nil {
				return err
			}
			if n > opts.MaxActive {
				return fmt.Errorf("%w: account %s may have %d active certificates", storage.ErrLimit, c.Account, opts.MaxActive)
			}
		}
		if opts.MaxHistory > 0 {
			return db.checkHistory(ctx, tx, c.Account, opts)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.ID, c.State, c.Created, c.Changed = id, storage.StateActive, now, now
	return nil
}

// ImportCerts inserts certs in one transaction, with an ActionAdd audit row
// by actor for each: all of them or, on error, none. It is meant for admin
// imports and for filling benchmark databases. Each record is checked as
// AddCert checks it; in addition a record may carry its State (empty means
// active) and its Created and Changed times (zero means the store's clock).
// MaxActive limits do not apply. On success the records' ID, State, Created
// and Changed are set. Errors: as AddCert, naming the failing record's index.
func (db *DB) ImportCerts(ctx context.Context, certs []*storage.Cert, actor string) error {
	const op = "import certs"
	for i, c := range certs {
		if err := storage.CheckRecord(c, true); err != nil {
			return fmt.Errorf("storage/sqlite: %s: record %d: %w", op, i, err)
		}
	}
	if err := db.begin(ctx, op); err != nil || len(certs) == 0 {
		return err
	}
	now := db.clock()
	type set struct {
		id               int64
		state            storage.State
		created, changed time.Time
	}
	done := make([]set, len(certs))
	err := db.write(ctx, op, func(tx *sql.Tx) error {
		ins := newInserter(ctx, tx, &db.st)
		for i, c := range certs {
			s := set{state: c.State, created: c.Created, changed: c.Changed}
			if s.state == "" {
				s.state = storage.StateActive
			}
			if s.created.IsZero() {
				s.created = now
			}
			if s.changed.IsZero() {
				s.changed = now
			}
			s.created, s.changed = fromMicro(micro(s.created)), fromMicro(micro(s.changed))
			id, err := ins.insert(c, s.state, s.created, s.changed, now, actor)
			if err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
			s.id = id
			done[i] = s
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, c := range certs {
		c.ID, c.State, c.Created, c.Changed = done[i].id, done[i].state, done[i].created, done[i].changed
	}
	return nil
}

// FindCertByFingerprint implements storage.Store.
func (db *DB) FindCertByFingerprint(ctx context.Context, fp storage.Fingerprint) (*storage.Cert, error) {
	const op = "find cert"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	c, err := scanCert(db.st.find.QueryRowContext(ctx, fp[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("storage/sqlite: %s %s: %w", op, fp, storage.ErrNotFound)
	}
	if err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	return c, nil
}

// ListCerts implements storage.Store. Records come in ID order, which is the
// order they were stored in. States that are not valid match nothing.
func (db *DB) ListCerts(ctx context.Context, account string, states ...storage.State) ([]*storage.Cert, error) {
	const op = "list certs"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	rows, err := db.st.list.QueryContext(ctx, account)
	if err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	defer rows.Close()
	certs := []*storage.Cert{}
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, db.mapErr(ctx, op, err)
		}
		if len(states) == 0 || hasState(states, c.State) {
			certs = append(certs, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	return certs, nil
}

func hasState(states []storage.State, s storage.State) bool {
	for _, x := range states {
		if x == s {
			return true
		}
	}
	return false
}

// SetState implements storage.Store.
func (db *DB) SetState(ctx context.Context, account, name string, to storage.State, actor string) (*storage.Cert, error) {
	const op = "set state"
	action, err := storage.ActionFor(to)
	if err != nil {
		return nil, fmt.Errorf("storage/sqlite: %s: %w", op, err)
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	now := db.clock()
	var c *storage.Cert
	err = db.write(ctx, op, func(tx *sql.Tx) error {
		var err error
		c, err = scanCert(tx.StmtContext(ctx, db.st.setByName).QueryRowContext(ctx, string(to), micro(now), account, name))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: account %s has no active certificate named %q", storage.ErrNotFound, account, name)
		}
		if err != nil {
			return err
		}
		if err := newInserter(ctx, tx, &db.st).audit(now, actor, action, c); err != nil || to != storage.StateRevoked {
			return err
		}
		_, err = db.revokeSameKey(ctx, tx, now, actor, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// SetStateByFingerprint implements storage.Store.
func (db *DB) SetStateByFingerprint(ctx context.Context, fp storage.Fingerprint, to storage.State, actor string) (*storage.Cert, error) {
	const op = "set state"
	action, err := storage.ActionFor(to)
	if err != nil {
		return nil, fmt.Errorf("storage/sqlite: %s: %w", op, err)
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	now := db.clock()
	var c *storage.Cert
	err = db.write(ctx, op, func(tx *sql.Tx) error {
		cur, err := scanCert(tx.StmtContext(ctx, db.st.findForWrite).QueryRowContext(ctx, fp[:]))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", storage.ErrNotFound, fp)
		}
		if err != nil {
			return err
		}
		switch {
		case cur.State == to:
			c = cur // no-op: nothing changes, nothing is audited
			return nil
		case cur.State == storage.StateRevoked:
			return fmt.Errorf("%w: %s is revoked, cannot become %s", storage.ErrTransition, fp, to)
		}
		// Left: active -> disabled|revoked, disabled -> revoked.
		c, err = scanCert(tx.StmtContext(ctx, db.st.setByID).QueryRowContext(ctx, string(to), micro(now), cur.ID))
		if err != nil {
			return err
		}
		if err := newInserter(ctx, tx, &db.st).audit(now, actor, action, c); err != nil || to != storage.StateRevoked {
			return err
		}
		_, err = db.revokeSameKey(ctx, tx, now, actor, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// walkPageSize is how many records WalkCerts reads per query. Pages keep no
// connection or read transaction open while fn runs, so fn may use the store.
const walkPageSize = 256

// WalkCerts implements storage.Store. Each page is read in its own
// statement, so records added during the walk may or may not be visited;
// every record that existed before the walk began and is not deleted (Prune
// deletes only expired history) is visited exactly once.
func (db *DB) WalkCerts(ctx context.Context, fn func(*storage.Cert) error) error {
	const op = "walk certs"
	var after int64
	for {
		if err := db.begin(ctx, op); err != nil {
			return err
		}
		page, err := db.walkPage(ctx, after)
		if err != nil {
			return db.mapErr(ctx, op, err)
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

func (db *DB) walkPage(ctx context.Context, after int64) ([]*storage.Cert, error) {
	rows, err := db.st.walkPage.QueryContext(ctx, after, walkPageSize)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	page := make([]*storage.Cert, 0, walkPageSize)
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, err
		}
		page = append(page, c)
	}
	return page, rows.Err()
}

// write runs fn in a write transaction (BEGIN IMMEDIATE on the single write
// connection) and commits. If fn fails the transaction is rolled back and
// the error mapped: errors that already carry a storage sentinel keep it.
func (db *DB) write(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return db.mapErr(ctx, op, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		if hasSentinel(err) && ctx.Err() == nil {
			return fmt.Errorf("storage/sqlite: %s: %w", op, err)
		}
		return db.mapErr(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return db.mapErr(ctx, op, err)
	}
	return nil
}

func hasSentinel(err error) bool {
	for _, s := range []error{
		storage.ErrNotFound, storage.ErrNameTaken, storage.ErrDuplicate, storage.ErrLimit, storage.ErrHistoryFull,
		storage.ErrTransition, storage.ErrInvalid, storage.ErrUnavailable, storage.ErrAccountDeleted, storage.ErrClaimLost,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// inserter writes cert and audit rows inside one transaction.
type inserter struct {
	ctx                          context.Context
	tx                           *sql.Tx
	cert, audits, fpExists, tomb *sql.Stmt
}

func newInserter(ctx context.Context, tx *sql.Tx, st *statements) *inserter {
	return &inserter{
		ctx:      ctx,
		tx:       tx,
		cert:     tx.StmtContext(ctx, st.insertCert),
		audits:   tx.StmtContext(ctx, st.insertAudit),
		fpExists: tx.StmtContext(ctx, st.fpExists),
		tomb:     tx.StmtContext(ctx, st.tombExists),
	}
}

// insert stores c with the given state and times, audits it as added at
// now, and returns its ID. A unique-index violation is told apart by
// looking for the fingerprint in the same transaction: found means
// ErrDuplicate, otherwise the active-name index fired: ErrNameTaken.
//
// An account with a tombstone gets ErrAccountDeleted: read in the same
// transaction as the insert, so that an add racing RevokeAccount either
// commits first (and is revoked by it) or sees the tombstone.
func (in *inserter) insert(c *storage.Cert, state storage.State, created, changed, now time.Time, actor string) (int64, error) {
	var deleted bool
	if err := in.tomb.QueryRowContext(in.ctx, c.Account).Scan(&deleted); err != nil {
		return 0, err
	}
	if deleted {
		return 0, fmt.Errorf("%w: %s", storage.ErrAccountDeleted, c.Account)
	}
	res, err := in.cert.ExecContext(in.ctx, c.Account, c.Name, c.DER, c.Fingerprint[:], string(state),
		c.NoCertManagement, c.Resource, micro(c.NotBefore), micro(c.NotAfter), c.Issuer, string(c.Source),
		micro(created), micro(changed), sqlKeyHash(c.DER))
	if isUnique(err) {
		var dup bool
		if err := in.fpExists.QueryRowContext(in.ctx, c.Fingerprint[:]).Scan(&dup); err != nil {
			return 0, err
		}
		if dup {
			return 0, fmt.Errorf("%w: %s", storage.ErrDuplicate, c.Fingerprint)
		}
		return 0, fmt.Errorf("%w: account %s already has an active certificate named %q", storage.ErrNameTaken, c.Account, c.Name)
	}
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	return id, in.audit(now, actor, storage.ActionAdd, c)
}

func (in *inserter) audit(now time.Time, actor string, action storage.Action, c *storage.Cert) error {
	_, err := in.audits.ExecContext(in.ctx, micro(now), actor, string(action), c.Account, c.Name, c.Fingerprint[:])
	return err
}
