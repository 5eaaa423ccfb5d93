package component

import (
	"context"
	"encoding/xml"
	"errors"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// NotifyChanged tells the server plugin that the certificates of account (a
// bare JID) changed, so that it forgets what it cached about the account
// (lookups, <items/>) before the change is acknowledged:
//
//	<iq type='set' from='certs.example.org' to='example.org'>
//	  <changed xmlns='urn:x-saslcert:plugin:0' jid='alice@example.org'/>
//	</iq>
//
// It waits for the plugin's answer, at most Config.RequestTimeout. It does
// nothing when Config.CacheTTL is zero (the plugin caches nothing then) or
// the account is not of a served domain. Failures are logged, not returned:
// if the notice cannot be delivered, the connection it was meant for is
// broken or about to be, and the plugin forgets its whole cache when that
// connection ends. Wire it as the callback of storage.Observe around every
// store the component's writers use. It must not be called on the stream
// goroutine.
func (c *Component) NotifyChanged(ctx context.Context, account string) {
	if c.cfg.CacheTTL <= 0 {
		return
	}
	a, err := jid.Parse(account)
	if err != nil || a.Localpart() == "" {
		c.log.Warn("change of a certificate with a malformed account", "account", account)
		return
	}
	a = a.Bare()
	server, ok := c.domains[a.Domainpart()]
	if !ok {
		return
	}
	l := c.current()
	if l == nil {
		// The plugin forgot its cache when the connection ended and caches
		// nothing until the component connects again.
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	payload := xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: NSPlugin, Local: "changed"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "jid"}, Value: a.String()}},
	})
	err = l.request(ctx, server, stanza.SetIQ, payload, nil)
	var se stanza.Error
	if errors.As(err, &se) {
		// The plugin read the notice (in stream order) and refused it: a
		// plugin that does not know <changed/> caches nothing.
		c.log.Debug("the server plugin refused a change notice", "account", a.String(), "err", err)
		return
	}
	if err != nil {
		c.log.Warn("could not tell the server plugin about a change; closing the link so that it forgets its cache",
			"account", a.String(), "err", err)
		l.abort("change notice not delivered", err)
		return
	}
	c.log.Debug("change sent to the server plugin", "account", a.String())
}
