package component

import (
	"context"
	"encoding/xml"
	"sync"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/pluginproto"
	"github.com/saslcert/saslcert/storage"
)

// Account deletion and re-registration (docs/PLUGIN-PROTOCOL.md, "account
// deleted", "account created", "account reconciliation").
//
// A deleted account's certificates must never log in to whoever registers
// the name next. The plugin sends <account-deleted/> (queued in Prosody's
// storage until acknowledged); the component revokes every certificate of the
// account and writes its tombstone in one store transaction
// (Store.RevokeAccount), so that an append, enrollment or renewal racing the
// deletion either commits before it (and is revoked by it) or is refused
// (storage.ErrAccountDeleted). The tombstone is lifted by <account-created/>
// (Prosody's user-registered event) or by the reconciliation, which also
// finds accounts deleted while the component was away or by prosodyctl.

// handleAccountDeleted revokes every certificate of an account the server
// deleted (<account-deleted jid='alice@example.org'/>) and writes its
// tombstone. The account is marked on the stream goroutine, before any later
// lookup is read, and lookups for it are refused until the revocations are
// committed; if they cannot be committed the mark stays (fail closed) until
// the component restarts, the error is logged and answered with a wait
// error, and the plugin sends the notice again.
func (l *link) handleAccountDeleted(server jid.JID, iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c := l.c
	var notice pluginproto.AccountDeleted
	return l.accountNotice(server, iq, t, start, &notice, func() string { return notice.JID }, func(key string) func(context.Context) xml.TokenReader {
		c.deleting.Store(key, struct{}{})
		return func(ctx context.Context) xml.TokenReader {
			n, err := c.deleteAccount(ctx, key, "server:"+server.String()+" (account deleted)")
			if err != nil {
				c.log.Error("could not revoke the certificates of a deleted account; its logins stay refused until restart",
					"account", key, "err", err)
				return c.errorIQ(iq, stanzaErr(stanza.Wait, stanza.InternalServerError, "the certificate store is busy; try again"))
			}
			c.deleting.Delete(key)
			c.log.Info("account deleted: certificates revoked", "account", key, "revoked", n)
			return c.resultIQ(iq, pluginproto.AccountDeletedResult{Revoked: n}.TokenReader())
		}
	})
}

// accountNotice decodes an account notice into notice, checks its account
// (jidOf, after decoding) and, on the stream goroutine, calls start with
// the account; the work start returns runs on a worker and its answer is
// sent. Every failure is answered with a stanza error.
func (l *link) accountNotice(server jid.JID, iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement,
	notice any, jidOf func() string, begin func(key string) func(context.Context) xml.TokenReader) error {
	c := l.c
	if err := decodeElement(*start, t, notice); err != nil {
		return send(t, c.errorIQ(iq, badPayload(err, start.Name.Local)))
	}
	account, se, ok := accountOf(server, jidOf())
	if !ok {
		return send(t, c.errorIQ(iq, se))
	}
	if c.accounts == nil {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Cancel, stanza.ServiceUnavailable, "no store")))
	}
	work := begin(account.String())
	if err := l.dispatch(work, func() xml.TokenReader { return c.errorIQ(iq, internalError()) }); err != nil {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Wait, stanza.ResourceConstraint, "busy")))
	}
	return nil
}

// handleAccountCreated lifts the tombstone of an account the server has just
// registered (<account-created jid='alice@example.org'/>), so that its new
// owner may add certificates. It first waits until every request the
// component read before this notice has finished: a write of the previous
// owner that was still in flight must hit the tombstone, not the new
// account. It answers <account-created cleared='true|false'/>; a wait error
// if the store or the wait failed (the plugin sends the notice again).
func (l *link) handleAccountCreated(server jid.JID, iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c := l.c
	var notice pluginproto.AccountCreated
	return l.accountNotice(server, iq, t, start, &notice, func() string { return notice.JID }, func(key string) func(context.Context) xml.TokenReader {
		mark := c.inflight.mark() // on the stream goroutine: everything read before this notice
		return func(ctx context.Context) xml.TokenReader {
			cleared, err := c.undeleteAccount(ctx, key, mark)
			if err != nil {
				c.log.Warn("could not lift the tombstone of a registered account", "account", key, "err", err)
				return c.errorIQ(iq, stanzaErr(stanza.Wait, stanza.InternalServerError, "the certificate store is busy; try again"))
			}
			c.log.Info("account registered", "account", key, "tombstone_lifted", cleared)
			return c.resultIQ(iq, pluginproto.AccountCreatedResult{Cleared: cleared}.TokenReader())
		}
	})
}

// accountOf checks the jid of an account notice: a bare account JID of
// server's domain.
func accountOf(server jid.JID, text string) (jid.JID, stanza.Error, bool) {
	account, err := jid.Parse(text)
	if err != nil || account.Localpart() == "" || account.Resourcepart() != "" {
		return jid.JID{}, stanzaErr(stanza.Modify, stanza.BadRequest, "jid must be a bare account JID"), false
	}
	if account.Domainpart() != server.Domainpart() {
		return jid.JID{}, stanzaErr(stanza.Auth, stanza.Forbidden, "the account is not on "+server.Domainpart()), false
	}
	return account, stanza.Error{}, true
}

// deleteAccount revokes every active or disabled certificate of account and
// writes its tombstone, in one store transaction, and returns how many it
// revoked.
func (c *Component) deleteAccount(ctx context.Context, account, actor string) (int, error) {
	revoked, err := c.accounts.RevokeAccount(ctx, account, storage.RevokeAccountOptions{Actor: actor, Deleted: true})
	return len(revoked), err
}

// undeleteAccount waits until no request started before mark is still being
// processed, then lifts account's tombstone.
func (c *Component) undeleteAccount(ctx context.Context, account string, mark uint64) (bool, error) {
	if err := c.inflight.waitBefore(ctx, mark); err != nil {
		return false, err
	}
	return c.accounts.ClearTombstone(ctx, account)
}

// beingDeleted reports whether account's certificates are being revoked
// because the server deleted it.
func (c *Component) beingDeleted(account string) bool {
	_, ok := c.deleting.Load(account)
	return ok
}

// inflight numbers the requests dispatch runs, so that one can wait for
// every request read before it (handleAccountCreated). The zero value is
// ready to use.
type inflight struct {
	mu      sync.Mutex
	next    uint64
	running map[uint64]struct{}
	changed chan struct{} // closed and replaced whenever a request ends
}

// enter registers a request and returns its number.
func (f *inflight) enter() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running == nil {
		f.running = make(map[uint64]struct{})
	}
	n := f.next
	f.next++
	f.running[n] = struct{}{}
	return n
}

// leave ends request n.
func (f *inflight) leave(n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.running, n)
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
}

// mark returns the number the next request will get.
func (f *inflight) mark() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next
}

// waitBefore waits until every request numbered below mark has ended, or
// ctx ends.
func (f *inflight) waitBefore(ctx context.Context, mark uint64) error {
	for {
		f.mu.Lock()
		busy := false
		for n := range f.running {
			if n < mark {
				busy = true
				break
			}
		}
		if !busy {
			f.mu.Unlock()
			return nil
		}
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
