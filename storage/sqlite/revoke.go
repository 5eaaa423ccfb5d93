package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// RevokeKey implements storage.Store: the named record and every record of
// the account for the same key, in one BEGIN IMMEDIATE transaction.
func (db *DB) RevokeKey(ctx context.Context, account, name, actor string) ([]*storage.Cert, error) {
	const op = "revoke key"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	now := db.clock()
	var out []*storage.Cert
	err := db.write(ctx, op, func(tx *sql.Tx) error {
		c, err := scanCert(tx.StmtContext(ctx, db.st.setByName).QueryRowContext(ctx, string(storage.StateRevoked), micro(now), account, name))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: account %s has no active certificate named %q", storage.ErrNotFound, account, name)
		}
		if err != nil {
			return err
		}
		if err := newInserter(ctx, tx, &db.st).audit(now, actor, storage.ActionRevoke, c); err != nil {
			return err
		}
		more, err := db.revokeSameKey(ctx, tx, now, actor, c)
		out = append([]*storage.Cert{c}, more...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// revokeSameKey revokes, inside tx, every record of c's account for c's key
// (key_hash) that is not revoked yet, other than c itself, auditing each as
// revoked by actor, and returns them oldest first. A record whose DER is
// not shaped like a certificate has no key and shares it with nothing.
func (db *DB) revokeSameKey(ctx context.Context, tx *sql.Tx, now time.Time, actor string, c *storage.Cert) ([]*storage.Cert, error) {
	var kh []byte
	if err := tx.StmtContext(ctx, db.st.keyOf).QueryRowContext(ctx, c.ID).Scan(&kh); err != nil {
		return nil, err
	}
	if kh == nil {
		return nil, nil
	}
	rows, err := tx.StmtContext(ctx, db.st.revokeKey).QueryContext(ctx, micro(now), c.Account, kh, c.ID)
	if err != nil {
		return nil, err
	}
	var out []*storage.Cert
	for rows.Next() {
		r, err := scanCert(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, r)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *storage.Cert) int { return int(a.ID - b.ID) })
	ins := newInserter(ctx, tx, &db.st)
	for _, r := range out {
		if err := ins.audit(now, actor, storage.ActionRevoke, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkRenews makes sure, inside the insert's transaction, that the record
// an insert renews (AddOptions.Renews) is the account's and still active.
func (db *DB) checkRenews(ctx context.Context, tx *sql.Tx, c *storage.Cert, fp storage.Fingerprint) error {
	prev, err := scanCert(tx.StmtContext(ctx, db.st.findForWrite).QueryRowContext(ctx, fp[:]))
	switch {
	case errors.Is(err, sql.ErrNoRows):
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
