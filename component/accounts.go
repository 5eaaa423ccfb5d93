package component

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/storage"
)

// handleAccountDeleted revokes every certificate of an account the server
// deleted (<account-deleted jid='alice@example.org'/>), so that whoever
// registers the name next does not inherit them. The account is marked on the
// stream goroutine, before any later lookup is read, and lookups for it are
// refused until the revocations are committed; if they cannot be committed
// the mark stays (fail closed) until the component restarts, and the error is
// logged and answered.
func (l *link) handleAccountDeleted(server jid.JID, iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c := l.c
	var account jid.JID
	var err error
	for _, a := range start.Attr {
		if a.Name.Local == "jid" {
			account, err = jid.Parse(a.Value)
		}
	}
	if err != nil || account.Localpart() == "" || account.Resourcepart() != "" {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Modify, stanza.BadRequest, "jid must be a bare account JID")))
	}
	if account.Domainpart() != server.Domainpart() {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Auth, stanza.Forbidden, "the account is not on "+server.Domainpart())))
	}
	if c.accounts == nil {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Cancel, stanza.ServiceUnavailable, "no store")))
	}
	key := account.String()
	c.deleting.Store(key, struct{}{})
	err = l.dispatch(func(ctx context.Context) xml.TokenReader {
		n, err := c.revokeAccount(ctx, key, "server:"+server.String()+" (account deleted)")
		if err != nil {
			c.log.Error("could not revoke the certificates of a deleted account; its logins stay refused until restart",
				"account", key, "err", err)
			return c.errorIQ(iq, stanzaErr(stanza.Wait, stanza.InternalServerError, "the certificate store is busy; try again"))
		}
		c.deleting.Delete(key)
		c.log.Info("account deleted: certificates revoked", "account", key, "revoked", n)
		return c.resultIQ(iq, xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Space: NSPlugin, Local: "account-deleted"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "revoked"}, Value: strconv.Itoa(n)}},
		}))
	}, func() xml.TokenReader { return c.errorIQ(iq, internalError()) })
	if err != nil {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Wait, stanza.ResourceConstraint, "busy")))
	}
	return nil
}

// revokeAccount revokes every active or disabled certificate of account.
func (c *Component) revokeAccount(ctx context.Context, account, actor string) (int, error) {
	certs, err := c.accounts.ListCerts(ctx, account, storage.StateActive, storage.StateDisabled)
	if err != nil {
		return 0, err
	}
	for _, rec := range certs {
		if _, err := c.accounts.SetStateByFingerprint(ctx, rec.Fingerprint, storage.StateRevoked, actor); err != nil {
			return 0, fmt.Errorf("revoke %s: %w", rec.Fingerprint, err)
		}
	}
	return len(certs), nil
}

// beingDeleted reports whether account's certificates are being revoked
// because the server deleted it.
func (c *Component) beingDeleted(account string) bool {
	_, ok := c.deleting.Load(account)
	return ok
}
