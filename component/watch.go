package component

import (
	"context"
	"slices"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// AuditReader is the part of a store WatchAudit reads.
type AuditReader interface {
	Audit(ctx context.Context, account string, limit int) ([]storage.AuditEntry, error)
	AuditSince(ctx context.Context, afterID int64, limit int) ([]storage.AuditEntry, error)
	FindCertByFingerprint(ctx context.Context, fp storage.Fingerprint) (*storage.Cert, error)
	MarkPassedOn(ctx context.Context, watcher string, auditID int64) error
}

// watchPage bounds the audit entries read per poll.
const watchPage = 500

// WatchAudit follows the store's audit log every interval until ctx ends and
// passes on the changes that other processes made with one of actors (the
// administrator's commands write "cli"): a <changed/> notice per account
// (NotifyChanged), and revoked(ctx, cert) for every revocation — wire it to
// the same function as xep0257.Handler.Revoked, so that live sessions are
// closed (and, with enrollment, the CA is told) as for a revoke made through
// XMPP. It starts after the newest entry present when it is called. Changes
// made through the component are not repeated (they were passed on before
// they were acknowledged). Entries read while the component is disconnected
// are passed on as far as possible; what they would change is repaired at
// connect anyway (the plugin starts with empty caches, and the revocation
// sweep closes sessions of revoked certificates). A failed read is logged
// and retried at the next poll. It returns when ctx is done.
//
// After every poll it records in the store (MarkPassedOn, named by the
// component's JID) the newest audit ID it has passed on, which also says
// that it is alive: the administrator's commands wait for it to reach the
// entry they wrote before they report a change as done.
func (c *Component) WatchAudit(ctx context.Context, store AuditReader, interval time.Duration, revoked func(context.Context, *storage.Cert), actors ...string) {
	if store == nil || interval <= 0 || len(actors) == 0 {
		return
	}
	var last int64
	for {
		newest, err := store.Audit(ctx, "", 1)
		if err == nil {
			if len(newest) == 1 {
				last = newest[0].ID
			}
			break
		}
		c.log.Warn("audit watch: cannot read the audit log; retrying", "err", err)
		if !sleepCtx(ctx, interval) {
			return
		}
	}
	c.markPassedOn(ctx, store, last)
	for sleepCtx(ctx, interval) {
		for {
			entries, err := store.AuditSince(ctx, last, watchPage)
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("audit watch: cannot read the audit log", "err", err)
				}
				break
			}
			c.passOn(ctx, store, entries, revoked, actors)
			if len(entries) > 0 {
				last = entries[len(entries)-1].ID
			}
			if len(entries) < watchPage {
				break
			}
		}
		c.markPassedOn(ctx, store, last)
	}
}

// markPassedOn records that every audit entry up to last was passed on.
func (c *Component) markPassedOn(ctx context.Context, store AuditReader, last int64) {
	if err := store.MarkPassedOn(ctx, c.cfg.JID.String(), last); err != nil && ctx.Err() == nil {
		c.log.Warn("audit watch: cannot record how far the audit log was passed on", "err", err)
	}
}

// passOn tells the plugin about entries written by one of actors.
func (c *Component) passOn(ctx context.Context, store AuditReader, entries []storage.AuditEntry, revoked func(context.Context, *storage.Cert), actors []string) {
	seen := map[string]bool{}
	for _, e := range entries {
		if !slices.Contains(actors, e.Actor) {
			continue
		}
		c.log.Info("audit watch: passing on a change made outside the component", "actor", e.Actor, "action", string(e.Action),
			"account", e.Account, "name", e.Name, "fingerprint", e.Fingerprint.String())
		if !seen[e.Account] {
			seen[e.Account] = true
			c.NotifyChanged(ctx, e.Account)
		}
		if e.Action != storage.ActionRevoke || revoked == nil {
			continue
		}
		cert, err := store.FindCertByFingerprint(ctx, e.Fingerprint)
		if err != nil {
			c.log.Warn("audit watch: cannot read a revoked certificate; its sessions are closed at the next connect", "fingerprint", e.Fingerprint.String(), "err", err)
			continue
		}
		revoked(ctx, cert)
	}
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
