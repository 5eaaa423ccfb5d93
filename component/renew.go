package component

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enrollcmd"
)

// errNotConnected is SendMessage's error while there is no stream.
var errNotConnected = errors.New("component: not connected to the server")

// SendMessage sends a <message type='normal'> with subject and body from the
// component to to (typically a user's bare JID; the server delivers it to
// the user's resources, or stores it if it does offline storage). It must not
// be called on the stream goroutine. It fails at once when the component is
// not connected.
func (c *Component) SendMessage(ctx context.Context, to jid.JID, subject, body string) error {
	l := c.current()
	if l == nil {
		return errNotConnected
	}
	var children []xml.TokenReader
	if subject != "" {
		children = append(children, textEl("", "subject", subject))
	}
	children = append(children, textEl("", "body", body))
	msg := stanza.Message{ID: newID(), From: c.cfg.JID, To: to, Type: stanza.NormalMessage}
	done := make(chan error, 1)
	go func() { done <- l.write(msg.Wrap(xmlstream.MultiReader(children...))) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxPendingNotices bounds the notices kept while they cannot be sent.
const maxPendingNotices = 10000

// RunRenewal runs the enrollment's Sweep (renewals, revocations at the CA,
// tidying up) once the component is first connected and then every
// interval, until ctx ends, and tells every account concerned with a
// <message/> from the component: that a renewed certificate is ready and how
// to fetch it, or that its certificate expires soon and must be requested
// again. Notices that cannot be sent while the component is disconnected are
// kept (up to 10000) and sent after the next sweep. It does nothing without
// EnableEnrollment. Run it on its own goroutine next to Run.
func (c *Component) RunRenewal(ctx context.Context, interval time.Duration) {
	if c.enroll == nil || interval <= 0 {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-c.Connected():
	}
	var pending []enroll.Notice
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		notices, err := c.sweepSafely(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Warn("renewal sweep failed; retrying at the next one", "err", err, "next_in", interval)
		}
		pending = append(pending, notices...)
		pending = c.sendNotices(ctx, pending)
		if n := len(pending) - maxPendingNotices; n > 0 {
			c.log.Warn("dropping renewal notices that could not be sent", "dropped", n)
			pending = pending[n:]
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepSafely runs the enrollment's Sweep, turning a panic into an error:
// a bug in one sweep must not take the process, and with it every login,
// down.
func (c *Component) sweepSafely(ctx context.Context) (notices []enroll.Notice, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic in the renewal sweep", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			notices, err = nil, fmt.Errorf("component: panic in the renewal sweep: %v", p)
		}
	}()
	return c.enroll.Sweep(ctx)
}

// sendNotices sends each notice and returns those that could not be sent.
func (c *Component) sendNotices(ctx context.Context, notices []enroll.Notice) []enroll.Notice {
	var left []enroll.Notice
	for i, n := range notices {
		subject, body := c.noticeText(n)
		sctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
		err := c.SendMessage(sctx, n.Account, subject, body)
		cancel()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, errNotConnected) {
				return append(left, notices[i:]...)
			}
			left = append(left, n)
			continue
		}
		c.log.Info("told an account about its certificate", "account", n.Account.String(), "kind", string(n.Kind))
	}
	return left
}

// noticeText is the subject and body of the message for n.
func (c *Component) noticeText(n enroll.Notice) (subject, body string) {
	const day = "2006-01-02 15:04 MST"
	switch n.Kind {
	case enroll.NoticeRenewed:
		return "Your new client certificate is ready",
			fmt.Sprintf("Your client certificate %q for %s expires on %s. A renewed certificate for the same key, %q, valid until %s, is ready. "+
				"Fetch it with the ad-hoc command %q (node %s) on %s, or take it from your list of certificates (XEP-0257), "+
				"and use it with your existing private key.",
				n.Old.Name, n.Account, n.Old.NotAfter.UTC().Format(day), n.New.Name, n.New.NotAfter.UTC().Format(day),
				enrollcmd.Name(enrollcmd.NodeLatest), enrollcmd.NodeLatest, c.cfg.JID)
	default:
		return "Your client certificate expires soon",
			fmt.Sprintf("Your client certificate %q for %s expires on %s and cannot be renewed automatically. "+
				"Request a new one with the ad-hoc command %q (node %s) on %s.",
				n.Old.Name, n.Account, n.Old.NotAfter.UTC().Format(day), enrollcmd.Name(enrollcmd.NodeEnroll), enrollcmd.NodeEnroll, c.cfg.JID)
	}
}
