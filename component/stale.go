package component

import (
	"context"
	"errors"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/pluginproto"
	"github.com/saslcert/saslcert/storage"
)

// checkBound is run for every "bound" session notice (numbered seq by
// boundOrder), off the stream goroutine. A session that binds with a
// certificate that is no longer active in the store may have logged in with
// an answer the plugin got (or cached) before the change reached it: a change
// made by another process is passed on only at the next audit poll, and even
// a change made here reaches the plugin a moment after it is committed. Such
// a session is closed: all sessions of a revoked certificate (NotifyRevoked),
// only this one for a disabled certificate (NotifyDisabled). A session of a
// disabled certificate whose notice the plugin sent before it acknowledged
// the account's <changed/> (boundOrder.before) bound before the disable
// reached it, and stays, as XEP-0257 <disable/> promises; when that order is
// not known (no <changed/> acknowledged since, or its mark expired) the
// component errs towards closing. Certificates the store does not hold
// (trusted-roots logins) are left alone; a failed store read is logged and
// the session left open (the login was granted by the store moments before).
func (c *Component) checkBound(full jid.JID, fp storage.Fingerprint, seq uint64) {
	if c.store == nil {
		return
	}
	if err := c.work.acquire(); err != nil {
		c.log.Warn("cannot check a new certificate session now", "jid", full.String(), "err", err)
		return
	}
	go func() {
		defer c.work.release()
		defer c.work.worked()
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
		defer cancel()
		cert, err := c.store.FindCertByFingerprint(ctx, fp)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return
		case err != nil:
			c.log.Warn("cannot check a new certificate session against the store", "jid", full.String(), "err", err)
			return
		case cert.Account != full.Bare().String():
			return
		}
		switch cert.State {
		case storage.StateRevoked:
			c.log.Info("a session bound with a revoked certificate; closing its sessions", "jid", full.String(), "fingerprint", fp.String())
			c.NotifyRevoked(ctx, cert)
		case storage.StateDisabled:
			wctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
			before := c.order.before(wctx, cert.Account, seq)
			cancel()
			if before {
				c.log.Debug("a session bound before its certificate was disabled; it stays", "jid", full.String(), "fingerprint", fp.String())
				return
			}
			c.log.Info("a session bound with a disabled certificate; closing it", "jid", full.String(), "fingerprint", fp.String())
			c.NotifyDisabled(ctx, full, fp)
		}
	}()
}

// NotifyDisabled asks the server plugin to close the one session full if it
// logged in with the certificate fp (docs/PLUGIN-PROTOCOL.md, <disabled/>),
// and waits for its answer (at most Config.RequestTimeout). Failures are
// logged. It must not be called on the stream goroutine.
func (c *Component) NotifyDisabled(ctx context.Context, full jid.JID, fp storage.Fingerprint) {
	server, ok := c.domains[full.Domainpart()]
	if !ok || full.Localpart() == "" || full.Resourcepart() == "" {
		c.log.Warn("cannot close a session that is not a full JID of a served domain", "jid", full.String())
		return
	}
	l := c.current()
	if l == nil {
		c.log.Warn("not connected: cannot close a session of a disabled certificate", "jid", full.String())
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	payload := pluginproto.Disabled{JID: full.String(), Fingerprint: fp.String()}.TokenReader()
	closed := l.closedAnswer()
	err := l.request(ctx, server, stanza.SetIQ, payload, closed.read)
	if err != nil {
		c.log.Warn("could not ask the server plugin to close a session of a disabled certificate", "jid", full.String(), "err", err)
		return
	}
	if closed.Count == 1 {
		c.reg.Closed(full)
	}
	c.log.Info("asked the server plugin to close a session of a disabled certificate", "jid", full.String(), "closed", closed.Count)
}
