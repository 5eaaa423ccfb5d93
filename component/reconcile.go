package component

import (
	"context"
	"encoding/xml"
	"errors"
	"slices"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/pluginproto"
	"github.com/saslcert/saslcert/storage"
)

// reconcileBatch is how many accounts one <accounts/> query asks about.
const reconcileBatch = 100

// reconcileLoop runs the account reconciliation now and then every
// Config.ReconcileInterval until the link ends.
func (l *link) reconcileLoop(servers []jid.JID) {
	t := time.NewTicker(l.c.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		l.reconcileAccounts(servers)
		select {
		case <-l.done:
			return
		case <-t.C:
		}
	}
}

// reconcileAccounts finds accounts the server no longer has, although the
// store has active or disabled certificates for them (deleted while the
// component was away, or by prosodyctl in another process, which fires no
// event), and revokes their certificates and writes their tombstones, as
// <account-deleted/> would; and accounts with a tombstone that the server
// has again (registered where no event reached the component), whose
// tombstones it lifts, as <account-created/> would. It asks each served
// domain's plugin about the accounts in batches; only an explicit
// exists='false' revokes, only an explicit exists='true' lifts: an unknown
// answer, an error or no answer changes nothing.
func (l *link) reconcileAccounts(servers []jid.JID) {
	c := l.c
	if c.accounts == nil {
		return
	}
	// Everything below ends when the link does.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()

	// Tombstones are few (deleted accounts whose names nobody took again):
	// ask about them first, all at once.
	tombs, err := c.accounts.Tombstones(ctx)
	if err != nil {
		c.log.Warn("account reconciliation: cannot read the tombstones", "err", err)
		return
	}
	for _, server := range servers {
		if !l.reconcileBatches(ctx, server, inDomain(tombs, server.Domainpart()), false) {
			return
		}
	}
	// Accounts with certificates: one page of the store at a time (memory
	// stays bounded by the page, whatever the store holds), a pause between
	// queries so that a large store does not crowd out logins on the
	// server's single thread.
	after := ""
	for {
		page, err := c.accounts.Accounts(ctx, after, reconcilePage)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("account reconciliation: cannot read the store", "err", err)
			}
			return
		}
		if len(page) == 0 {
			return
		}
		after = page[len(page)-1]
		for _, server := range servers {
			if !l.reconcileBatches(ctx, server, inDomain(page, server.Domainpart()), true) {
				return
			}
		}
	}
}

// reconcilePage is how many accounts one store read gives the
// reconciliation; reconcilePause is the pause after each <accounts/> query.
const (
	reconcilePage  = 1000
	reconcilePause = 20 * time.Millisecond
)

// inDomain returns the accounts of domain, in the order given.
func inDomain(accounts []string, domain string) []string {
	var out []string
	for _, a := range accounts {
		if domainOf(a) == domain {
			out = append(out, a)
		}
	}
	return out
}

// reconcileBatches asks server about accounts, reconcileBatch at a time.
// For accounts with certificates (withCerts), an explicit exists='false'
// revokes them and writes the tombstone; for tombstoned ones, an explicit
// exists='true' lifts it. It reports false when the reconciliation should
// stop (the link ended, the plugin refused or did not answer).
func (l *link) reconcileBatches(ctx context.Context, server jid.JID, accounts []string, withCerts bool) bool {
	c := l.c
	for batch := range slices.Chunk(accounts, reconcileBatch) {
		answers, err := l.askAccounts(ctx, server, batch)
		if err != nil {
			var se stanza.Error
			if errors.As(err, &se) {
				c.log.Warn("account reconciliation: the server plugin refused the query; is it up to date?",
					"domain", server.String(), "err", err)
			} else if ctx.Err() == nil {
				c.log.Warn("account reconciliation: no answer", "domain", server.String(), "err", err)
			}
			return false
		}
		for _, a := range batch {
			switch answers[a] {
			case pluginproto.ExistsFalse:
				if withCerts {
					l.reconcileDeleted(ctx, server, a)
				}
			case pluginproto.ExistsTrue:
				if !withCerts {
					l.reconcileCreated(ctx, a)
				}
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(reconcilePause):
		}
	}
	return true
}

// reconcileDeleted revokes the certificates of account, which the server
// says does not exist, writes its tombstone, and closes live sessions that
// logged in with them (prosodyctl deluser leaves them open).
func (l *link) reconcileDeleted(ctx context.Context, server jid.JID, account string) {
	c := l.c
	c.deleting.Store(account, struct{}{})
	sctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	revoked, err := c.accounts.RevokeAccount(sctx, account, storage.RevokeAccountOptions{
		Actor: "server:" + server.String() + " (account not found)", Deleted: true,
	})
	cancel()
	if err != nil {
		// The mark stays: logins to the account are refused until the
		// next reconciliation manages it or the component restarts.
		c.log.Error("account reconciliation: could not revoke the certificates of a deleted account", "account", account, "err", err)
		return
	}
	c.deleting.Delete(account)
	c.log.Info("account reconciliation: the server has no such account; certificates revoked", "account", account, "revoked", len(revoked))
	for _, r := range revoked {
		c.NotifyRevoked(ctx, r)
	}
}

// reconcileCreated lifts the tombstone of account, which the server has
// again, once the requests read before now have finished.
func (l *link) reconcileCreated(ctx context.Context, account string) {
	c := l.c
	sctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	cleared, err := c.undeleteAccount(sctx, account, c.inflight.mark())
	if err != nil {
		c.log.Warn("account reconciliation: could not lift a tombstone", "account", account, "err", err)
		return
	}
	if cleared {
		c.log.Info("account reconciliation: the account exists again; tombstone lifted", "account", account)
	}
}

// askAccounts asks server's plugin whether the accounts exist and returns
// its answers by account (ExistsTrue, ExistsFalse or anything else for
// unknown). Answers about accounts it did not ask about are ignored.
func (l *link) askAccounts(ctx context.Context, server jid.JID, accounts []string) (map[string]pluginproto.Exists, error) {
	query := pluginproto.Accounts{Accounts: make([]pluginproto.Account, 0, len(accounts))}
	asked := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		query.Accounts = append(query.Accounts, pluginproto.Account{JID: a})
		asked[a] = true
	}
	answers := make(map[string]pluginproto.Exists, len(accounts))
	rctx, cancel := context.WithTimeout(ctx, l.c.cfg.RequestTimeout)
	defer cancel()
	err := l.request(rctx, server, stanza.GetIQ, query.TokenReader(), func(start xml.StartElement, r xml.TokenReader) error {
		var v pluginproto.Accounts
		if err := decodeElement(start, r, &v); err != nil {
			return errors.New("component: unreadable answer to <accounts/>: " + err.Error())
		}
		for _, a := range v.Accounts {
			if !asked[a.JID] {
				continue
			}
			if _, dup := answers[a.JID]; dup {
				answers[a.JID] = "" // contradicting or repeated answers: unknown
				continue
			}
			answers[a.JID] = a.Exists
		}
		return nil
	})
	return answers, err
}

// domainOf is the domainpart of a stored account (a normalised bare JID).
func domainOf(account string) string {
	_, d, _ := strings.Cut(account, "@")
	return d
}
