package lifecycle

import (
	"context"

	"github.com/saslcert/saslcert/storage"
)

// The Manager's writes: each commits through the store and, if that
// succeeded, remembers its audit entries (while a Watch follows the log) and
// runs the side effects before it returns. A failed write changed nothing and
// runs nothing. Errors are the store's (storage.Err*).

// AddCert adds c (an append, an enrolment, a renewal, an import); see
// storage.Store.AddCert.
func (m *Manager) AddCert(ctx context.Context, c *storage.Cert, opts storage.AddOptions) error {
	m.writing.RLock()
	err := m.Store.AddCert(ctx, c, opts)
	if err == nil {
		m.remember(storage.ActionAdd, c)
	}
	m.writing.RUnlock()
	if err != nil {
		return err
	}
	m.run(ctx, Change{Kind: KindAdded, Account: c.Account, Actor: opts.Actor}, c.Account)
	return nil
}

// SetState disables or revokes the account's active record called name. A
// revocation is Revoke's (the key, with its cascade), returning the named
// record.
func (m *Manager) SetState(ctx context.Context, account, name string, to storage.State, actor string) (*storage.Cert, error) {
	if to == storage.StateRevoked {
		cs, err := m.RevokeKey(ctx, account, name, actor)
		if err != nil || len(cs) == 0 {
			return nil, err
		}
		return cs[0], nil
	}
	m.writing.RLock()
	c, err := m.Store.SetState(ctx, account, name, to, actor)
	if err == nil {
		m.remember(storage.ActionDisable, c)
	}
	m.writing.RUnlock()
	if err != nil {
		return c, err
	}
	m.run(ctx, Change{Kind: KindDisabled, Account: account, Actor: actor}, account)
	return c, nil
}

// Disable disables the account's active record called name.
func (m *Manager) Disable(ctx context.Context, account, name, actor string) (*storage.Cert, error) {
	return m.SetState(ctx, account, name, storage.StateDisabled, actor)
}

// RevokeKey revokes the account's active record called name and every other
// record of the account for the same key, and returns them all (the named
// one first); see storage.Store.RevokeKey.
func (m *Manager) RevokeKey(ctx context.Context, account, name, actor string) ([]*storage.Cert, error) {
	m.writing.RLock()
	cs, err := m.Store.RevokeKey(ctx, account, name, actor)
	if err == nil {
		m.remember(storage.ActionRevoke, cs...)
	}
	m.writing.RUnlock()
	if err != nil {
		return cs, err
	}
	m.run(ctx, Change{Kind: KindRevoked, Account: account, Actor: actor, Revoked: cs}, account)
	return cs, nil
}

// SetStateByFingerprint is SetState for the record with fingerprint fp. The
// side effects of a revocation run here for that record only: the other
// records of its key that the store revokes with it are not remembered as
// this process's, so a running Watch passes them on (closing their sessions
// and telling the CA) like another writer's.
func (m *Manager) SetStateByFingerprint(ctx context.Context, fp storage.Fingerprint, to storage.State, actor string) (*storage.Cert, error) {
	m.writing.RLock()
	c, err := m.Store.SetStateByFingerprint(ctx, fp, to, actor)
	if err == nil && c != nil {
		if to == storage.StateRevoked {
			m.remember(storage.ActionRevoke, c)
		} else {
			m.remember(storage.ActionDisable, c)
		}
	}
	m.writing.RUnlock()
	if err != nil || c == nil {
		return c, err
	}
	ch := Change{Kind: KindDisabled, Account: c.Account, Actor: actor}
	if to == storage.StateRevoked {
		ch.Kind, ch.Revoked = KindRevoked, []*storage.Cert{c}
	}
	m.run(ctx, ch, c.Account)
	return c, nil
}

// RevokeAccount revokes every active or disabled record of account (and with
// opts.Deleted writes its tombstone) in one store transaction; see
// storage.Store.RevokeAccount.
func (m *Manager) RevokeAccount(ctx context.Context, account string, opts storage.RevokeAccountOptions) ([]*storage.Cert, error) {
	m.writing.RLock()
	cs, err := m.Store.RevokeAccount(ctx, account, opts)
	if err == nil {
		m.remember(storage.ActionRevoke, cs...)
	}
	m.writing.RUnlock()
	if err != nil {
		return cs, err
	}
	kind := KindAccountRevoked
	if opts.Deleted {
		kind = KindAccountDeleted
	}
	m.run(ctx, Change{Kind: kind, Account: account, Actor: opts.Actor, Revoked: cs}, account)
	return cs, nil
}

// RevokeAll revokes every active or disabled certificate of account, which
// lives on (no tombstone): the administrator's "cert revoke --all".
func (m *Manager) RevokeAll(ctx context.Context, account, actor string) ([]*storage.Cert, error) {
	return m.RevokeAccount(ctx, account, storage.RevokeAccountOptions{Actor: actor})
}

// DeleteAccount revokes every certificate of an account the server deleted
// and writes its tombstone, in one transaction.
func (m *Manager) DeleteAccount(ctx context.Context, account, actor string) ([]*storage.Cert, error) {
	return m.RevokeAccount(ctx, account, storage.RevokeAccountOptions{Actor: actor, Deleted: true})
}

// ClearTombstone lifts account's tombstone (the name was registered again)
// and reports whether there was one.
func (m *Manager) ClearTombstone(ctx context.Context, account string) (bool, error) {
	cleared, err := m.Store.ClearTombstone(ctx, account)
	if err != nil {
		return false, err
	}
	m.run(ctx, Change{Kind: KindAccountCreated, Account: account})
	return cleared, nil
}
