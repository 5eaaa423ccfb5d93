package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saslcert/saslcert/storage"
)

// AddCert implements storage.Store. Under the write lock, one query reads
// the tombstone, the fingerprint and the active name, so that the errors
// come in the contract's order; the MaxActive and MaxHistory checks count
// after the insert, in the same transaction.
func (db *DB) AddCert(ctx context.Context, c *storage.Cert, opts storage.AddOptions) error {
	const op = "add cert"
	if err := storage.CheckRecord(c, false); err != nil {
		return fmt.Errorf("storage/postgres: %s: %w", op, err)
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	now := db.clock()
	var id int64
	err := db.write(ctx, op, func(tx pgx.Tx) error {
		if opts.Renews != (storage.Fingerprint{}) {
			if err := checkRenews(ctx, tx, c, opts.Renews); err != nil {
				return err
			}
		}
		var err error
		if id, err = insert(ctx, tx, c, storage.StateActive, now, now, now, opts.Actor); err != nil {
			return err
		}
		if opts.MaxActive > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM certs WHERE account = $1 AND state = 'active'`, c.Account).Scan(&n); err != nil {
				return err
			}
			if n > opts.MaxActive {
				return fmt.Errorf("%w: account %s may have %d active certificates", storage.ErrLimit, c.Account, opts.MaxActive)
			}
		}
		if opts.MaxHistory > 0 {
			return checkHistory(ctx, tx, c.Account, opts)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.ID, c.State, c.Created, c.Changed = id, storage.StateActive, now, now
	return nil
}

// insert stores c with the given state and times, audits it as added at
// now by actor, and returns its ID. It runs under the write lock, so its
// checks see every committed record: ErrAccountDeleted, then ErrDuplicate,
// then ErrNameTaken (only an active record takes its name).
func insert(ctx context.Context, tx pgx.Tx, c *storage.Cert, state storage.State, created, changed, now time.Time, actor string) (int64, error) {
	var deleted, dup, taken bool
	err := tx.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM tombstones WHERE account = $1),
		EXISTS (SELECT 1 FROM certs WHERE fingerprint = $2),
		EXISTS (SELECT 1 FROM certs WHERE account = $1 AND name = $3 AND state = 'active')`,
		c.Account, c.Fingerprint[:], c.Name).Scan(&deleted, &dup, &taken)
	switch {
	case err != nil:
		return 0, err
	case deleted:
		return 0, fmt.Errorf("%w: %s", storage.ErrAccountDeleted, c.Account)
	case dup:
		return 0, fmt.Errorf("%w: %s", storage.ErrDuplicate, c.Fingerprint)
	case taken && state == storage.StateActive:
		return 0, fmt.Errorf("%w: account %s already has an active certificate named %q", storage.ErrNameTaken, c.Account, c.Name)
	}
	var kh []byte
	if h, ok := storage.KeyHashOf(c.DER); ok {
		kh = h[:]
	}
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO certs (account, name, der, fingerprint, state, no_cert_management,
			resource, not_before, not_after, issuer, source, created, changed, key_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
		c.Account, c.Name, c.DER, c.Fingerprint[:], string(state), c.NoCertManagement, c.Resource,
		c.NotBefore, c.NotAfter, c.Issuer, string(c.Source), created, changed, kh).Scan(&id)
	if err != nil {
		return 0, classifyUnique(err, c)
	}
	return id, audit(ctx, tx, now, actor, storage.ActionAdd, c)
}

// classifyUnique maps a unique violation by its index, for writers that do
// not take the write lock (an older or foreign program); other errors pass.
func classifyUnique(err error, c *storage.Cert) error {
	if sqlState(err) != "23505" {
		return err
	}
	if constraintName(err) == "certs_fingerprint" {
		return fmt.Errorf("%w: %s", storage.ErrDuplicate, c.Fingerprint)
	}
	return fmt.Errorf("%w: account %s already has an active certificate named %q", storage.ErrNameTaken, c.Account, c.Name)
}

// audit writes one audit row.
func audit(ctx context.Context, tx pgx.Tx, now time.Time, actor string, action storage.Action, c *storage.Cert) error {
	_, err := tx.Exec(ctx, `INSERT INTO audit (time, actor, action, account, name, fingerprint) VALUES ($1, $2, $3, $4, $5, $6)`,
		now, actor, string(action), c.Account, c.Name, c.Fingerprint[:])
	return err
}

// FindCertByFingerprint implements storage.Store: the login lookup, one
// indexed query.
func (db *DB) FindCertByFingerprint(ctx context.Context, fp storage.Fingerprint) (*storage.Cert, error) {
	const op = "find cert"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	var c *storage.Cert
	err := db.read(ctx, op, func() error {
		var err error
		c, err = scanCert(db.pool.QueryRow(ctx, `SELECT `+certCols+` FROM certs WHERE fingerprint = $1`, fp[:]))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("storage/postgres: %s %s: %w", op, fp, storage.ErrNotFound)
	}
	return c, nil
}

// ListCerts implements storage.Store. States that are not valid match
// nothing.
func (db *DB) ListCerts(ctx context.Context, account string, states ...storage.State) ([]*storage.Cert, error) {
	const op = "list certs"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	var all []*storage.Cert
	err := db.read(ctx, op, func() error {
		var err error
		all, err = scanCerts(db.pool.Query(ctx, `SELECT `+certCols+` FROM certs WHERE account = $1 ORDER BY id`, account))
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(states) == 0 {
		return all, nil
	}
	out := []*storage.Cert{}
	for _, c := range all {
		for _, s := range states {
			if c.State == s {
				out = append(out, c)
				break
			}
		}
	}
	return out, nil
}

// SetState implements storage.Store.
func (db *DB) SetState(ctx context.Context, account, name string, to storage.State, actor string) (*storage.Cert, error) {
	cs, err := db.setByName(ctx, "set state", account, name, to, actor)
	if err != nil {
		return nil, err
	}
	return cs[0], nil
}

// RevokeKey implements storage.Store.
func (db *DB) RevokeKey(ctx context.Context, account, name, actor string) ([]*storage.Cert, error) {
	return db.setByName(ctx, "revoke key", account, name, storage.StateRevoked, actor)
}

// setByName moves the account's active record name to state to; a
// revocation revokes the key. It returns the named record first, then the
// others it revoked.
func (db *DB) setByName(ctx context.Context, op, account, name string, to storage.State, actor string) ([]*storage.Cert, error) {
	action, err := storage.ActionFor(to)
	if err != nil {
		return nil, fmt.Errorf("storage/postgres: %s: %w", op, err)
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	now := db.clock()
	var out []*storage.Cert
	err = db.write(ctx, op, func(tx pgx.Tx) error {
		c, err := scanCert(tx.QueryRow(ctx, `UPDATE certs SET state = $1, changed = $2
			WHERE account = $3 AND name = $4 AND state = 'active' RETURNING `+certCols, string(to), now, account, name))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: account %s has no active certificate named %q", storage.ErrNotFound, account, name)
		}
		if err != nil {
			return err
		}
		if err := audit(ctx, tx, now, actor, action, c); err != nil {
			return err
		}
		out = []*storage.Cert{c}
		if to != storage.StateRevoked {
			return nil
		}
		more, err := revokeSameKey(ctx, tx, now, actor, c)
		out = append(out, more...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetStateByFingerprint implements storage.Store.
func (db *DB) SetStateByFingerprint(ctx context.Context, fp storage.Fingerprint, to storage.State, actor string) (*storage.Cert, error) {
	const op = "set state"
	action, err := storage.ActionFor(to)
	if err != nil {
		return nil, fmt.Errorf("storage/postgres: %s: %w", op, err)
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	now := db.clock()
	var c *storage.Cert
	err = db.write(ctx, op, func(tx pgx.Tx) error {
		cur, err := scanCert(tx.QueryRow(ctx, `SELECT `+certCols+` FROM certs WHERE fingerprint = $1`, fp[:]))
		if errors.Is(err, pgx.ErrNoRows) {
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
		c, err = scanCert(tx.QueryRow(ctx, `UPDATE certs SET state = $1, changed = $2 WHERE id = $3 RETURNING `+certCols,
			string(to), now, cur.ID))
		if err != nil {
			return err
		}
		if err := audit(ctx, tx, now, actor, action, c); err != nil || to != storage.StateRevoked {
			return err
		}
		_, err = revokeSameKey(ctx, tx, now, actor, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// revokeSameKey revokes, inside tx, every record of c's account for c's key
// that is not revoked yet, other than c, auditing each, and returns them
// oldest first.
func revokeSameKey(ctx context.Context, tx pgx.Tx, now time.Time, actor string, c *storage.Cert) ([]*storage.Cert, error) {
	kh, ok := storage.KeyHashOf(c.DER)
	if !ok {
		return nil, nil
	}
	out, err := scanCerts(tx.Query(ctx, `WITH r AS (UPDATE certs SET state = 'revoked', changed = $1
			WHERE account = $2 AND key_hash = $3 AND state <> 'revoked' AND id <> $4 RETURNING `+certCols+`)
		SELECT `+certCols+` FROM r ORDER BY id`, now, c.Account, kh[:], c.ID))
	if err != nil {
		return nil, err
	}
	for _, r := range out {
		if err := audit(ctx, tx, now, actor, storage.ActionRevoke, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkRenews makes sure, inside the insert's transaction, that the record
// an insert renews is the account's and still active.
func checkRenews(ctx context.Context, tx pgx.Tx, c *storage.Cert, fp storage.Fingerprint) error {
	prev, err := scanCert(tx.QueryRow(ctx, `SELECT `+certCols+` FROM certs WHERE fingerprint = $1`, fp[:]))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: the renewed certificate %s is not stored", storage.ErrTransition, fp)
	case err != nil:
		return err
	case prev.Account != c.Account:
		return fmt.Errorf("%w: the renewed certificate %s belongs to another account", storage.ErrTransition, fp)
	case prev.State != storage.StateActive:
		return fmt.Errorf("%w: the renewed certificate %s is %s", storage.ErrTransition, fp, prev.State)
	}
	return nil
}
