package storage

import "context"

// Observe returns a Store that behaves as s and, after every committed change
// to an account's certificates (AddCert, SetState, SetStateByFingerprint,
// RevokeKey, RevokeAccount that return no error), calls changed with the account's bare JID before the call
// returns. A failed call changes nothing and calls nothing. changed runs on
// the caller's goroutine with the caller's context; it should be quick or
// bounded by ctx, because the change is acknowledged only when it returns.
//
// The running service no longer uses it: its writers go through the
// certificate life-cycle owner, lifecycle.Manager, which runs this and the
// other side effects of a change in one order. Observe stays for callers
// that need only the notification.
func Observe(s Store, changed func(ctx context.Context, account string)) Store {
	return observed{Store: s, changed: changed}
}

type observed struct {
	Store
	changed func(ctx context.Context, account string)
}

func (o observed) AddCert(ctx context.Context, c *Cert, opts AddOptions) error {
	if err := o.Store.AddCert(ctx, c, opts); err != nil {
		return err
	}
	o.changed(ctx, c.Account)
	return nil
}

func (o observed) SetState(ctx context.Context, account, name string, to State, actor string) (*Cert, error) {
	c, err := o.Store.SetState(ctx, account, name, to, actor)
	if err != nil {
		return c, err
	}
	o.changed(ctx, account)
	return c, nil
}

func (o observed) SetStateByFingerprint(ctx context.Context, fp Fingerprint, to State, actor string) (*Cert, error) {
	c, err := o.Store.SetStateByFingerprint(ctx, fp, to, actor)
	if err != nil || c == nil {
		return c, err
	}
	o.changed(ctx, c.Account)
	return c, nil
}

func (o observed) RevokeKey(ctx context.Context, account, name, actor string) ([]*Cert, error) {
	cs, err := o.Store.RevokeKey(ctx, account, name, actor)
	if err != nil {
		return cs, err
	}
	o.changed(ctx, account)
	return cs, nil
}

func (o observed) RevokeAccount(ctx context.Context, account string, opts RevokeAccountOptions) ([]*Cert, error) {
	certs, err := o.Store.RevokeAccount(ctx, account, opts)
	if err != nil {
		return certs, err
	}
	o.changed(ctx, account)
	return certs, nil
}
