package component

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/lifecycle"
	"github.com/saslcert/saslcert/pluginproto"
)

// ErrChangeUnconfirmed is returned (wrapped) by NotifyChanged when the server
// plugin has not confirmed, within Config.RequestTimeout, that it forgot
// what it cached: the notice is on the stream ahead of everything written
// after it (and a late refusal makes the component tell the plugin to forget
// everything), or the link ended (and the plugin forgets everything with
// it). A change acknowledged over the link is safe either way; one
// acknowledged elsewhere (the admin commands) is not confirmed yet.
var ErrChangeUnconfirmed = errors.New("component: the server plugin has not confirmed the change notice")

// NotifyChanged tells the server plugin that the certificates of account (a
// bare JID) changed, so that it forgets what it cached about the account
// (lookups, <items/>) before the change is acknowledged:
//
//	<iq type='set' from='certs.example.org' to='example.org'>
//	  <changed xmlns='urn:x-saslcert:plugin:0' jid='alice@example.org'/>
//	</iq>
//
// It does nothing (nil) when Config.CacheTTL is zero (the plugin caches
// nothing then), the account is not of a served domain, or the component is
// not connected (the plugin forgot everything when the link ended and
// caches nothing until the next connect).
//
// The notice has its own deadline, Config.RequestTimeout from the call,
// whatever is left of ctx: a change committed just before its request's
// deadline is passed on like any other, and no late request takes the link
// down. NotifyChanged returns only once the notice is written on the link,
// so every acknowledgement sent on the link afterwards reaches the server
// after it (the server reads the link in order); if the notice cannot be
// written within the deadline, the link is closed (its output is stuck).
// Then it waits for the plugin's answer until the deadline:
//
//   - a result: nil;
//   - an error (the plugin read the notice but did not apply it): the
//     component asks the plugin to forget everything (a new <sessions/>
//     query, which every plugin version answers by emptying its caches)
//     and returns nil once that is answered; if the plugin refuses that as
//     well, the link is closed as a last resort;
//   - no answer in time, or the link ended: an error wrapping
//     ErrChangeUnconfirmed. The notice stays on the stream; a late error
//     answer still makes the component ask the plugin to forget
//     everything.
//
// Wire it as the lifecycle.Effects.Changed of the life-cycle owner every
// component's writers use. It must not be called on the stream goroutine.
func (c *Component) NotifyChanged(ctx context.Context, account string) error {
	if c.cfg.CacheTTL <= 0 {
		return nil
	}
	a, err := jid.Parse(account)
	if err != nil || a.Localpart() == "" {
		c.log.Warn("change of a certificate with a malformed account", "account", account)
		return nil
	}
	a = a.Bare()
	server, ok := c.domains[a.Domainpart()]
	if !ok {
		return nil
	}
	l := c.current()
	if l == nil {
		return nil
	}
	c.order.sending(a.String())
	defer c.order.sent(a.String())
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.RequestTimeout)
	defer cancel()
	payload := pluginproto.Changed{JID: a.String()}.TokenReader()
	var notices uint64
	err = l.confirm(ctx, server, stanza.SetIQ, payload, nil, &notices, func(err error) {
		if err == nil {
			c.log.Info("the server plugin confirmed a change notice late", "account", a.String())
			return
		}
		c.log.Warn("the server plugin refused a change notice late; asking it to forget everything", "account", a.String(), "err", err)
		fctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
		defer cancel()
		_ = l.forgetAll(fctx, server)
	})
	var se stanza.Error
	if errors.As(err, &se) {
		c.log.Warn("the server plugin refused a change notice; asking it to forget everything", "account", a.String(), "err", err)
		err = l.forgetAll(ctx, server)
	}
	if err != nil {
		c.log.Warn("the server plugin has not confirmed a change notice; it stays on the link", "account", a.String(), "err", err)
		return err
	}
	// The plugin sent its queued session notices before this answer: the
	// sessions they name bound before the change reached it, and, for a
	// change committed here moments ago, before the change was committed.
	// Another writer's change is passed on up to the watch interval after it
	// was committed: sessions bound in between are not known to be older.
	if !lifecycle.Foreign(ctx) {
		c.order.changed(a.String(), notices, c.cfg.Now(), markTTL(c.cfg.RequestTimeout))
	}
	c.log.Debug("change sent to the server plugin", "account", a.String())
	return nil
}

// forgetAll asks server's plugin to forget everything it cached, with the
// <sessions/> query it answers after every connect (which also refreshes
// the session registry), waiting as confirm does. If the plugin refuses it,
// nothing else can empty its caches while the link lives, so the link is
// closed.
func (l *link) forgetAll(ctx context.Context, server jid.JID) error {
	c := l.c
	payload, handle, _ := l.sessionsQuery(server)
	tolerant := func(start xml.StartElement, r xml.TokenReader) error {
		// A result means the caches are gone, whatever it lists.
		if err := handle(start, r); err != nil {
			c.log.Warn("unreadable session list from the server plugin", "err", err)
		}
		return nil
	}
	refused := func(err error) {
		l.abort("the server plugin refuses to forget its caches", err)
	}
	err := l.confirm(ctx, server, stanza.GetIQ, payload, tolerant, nil, func(err error) {
		if err != nil {
			refused(err)
		}
	})
	var se stanza.Error
	if errors.As(err, &se) {
		refused(err)
		return fmt.Errorf("%w: %w", ErrChangeUnconfirmed, err)
	}
	return err
}

// confirm sends an IQ to the plugin and waits for its answer until ctx ends;
// if notices is not nil and the answer came in time, it gets the number of
// bound notices read before the answer (boundOrder).
// It returns once the IQ is written (post). The answer is nil for a result
// (after handle, if set, read it) or the stanza.Error. Without an answer in
// time, or if the link ended or the IQ could not be written, it returns an
// error wrapping ErrChangeUnconfirmed; an answer that comes later, before
// the link ends and within Config.CacheTTL + Config.RequestTimeout, is
// passed to late on another goroutine.
func (l *link) confirm(ctx context.Context, to jid.JID, typ stanza.IQType, payload xml.TokenReader,
	handle func(start xml.StartElement, r xml.TokenReader) error, notices *uint64, late func(error)) error {
	id, p, err := l.post(ctx, to, typ, payload, handle)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrChangeUnconfirmed, err)
	}
	select {
	case err := <-p.done:
		l.unwait(id)
		if notices != nil {
			*notices = p.notices
		}
		return err
	case <-l.done:
		l.unwait(id)
		return fmt.Errorf("%w: %w", ErrChangeUnconfirmed, errLinkClosed)
	case <-ctx.Done():
	}
	// Waiting longer than CacheTTL (plus a request's time) is pointless:
	// by then everything the plugin cached before the notice has expired.
	go func() {
		defer l.unwait(id)
		t := time.NewTimer(l.c.cfg.CacheTTL + l.c.cfg.RequestTimeout)
		defer t.Stop()
		select {
		case err := <-p.done:
			late(err)
		case <-l.done:
		case <-t.C:
			l.c.log.Warn("the server plugin never answered a notice; what it cached before has expired by now", "id", id)
		}
	}()
	return fmt.Errorf("%w: %w", ErrChangeUnconfirmed, ctx.Err())
}
