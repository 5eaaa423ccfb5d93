package lifecycle

import (
	"context"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// WatchOptions configure Watch.
type WatchOptions struct {
	// Interval between reads of the audit log (> 0).
	Interval time.Duration
	// Watcher names this process in the store's passed-on marks
	// (Store.MarkPassedOn): the component's JID, or the instance's name
	// when several processes share one store.
	Watcher string
	// Wake, if not nil, makes Watch read the log at once, not at the next
	// interval: a store shared by several processes
	// (storage.ChangeFeed) signals it when any of them wrote. The log
	// stays the source of truth; Interval remains the bound should a
	// wake-up be lost.
	Wake <-chan struct{}
}

// watchPage bounds the audit entries read per poll.
const watchPage = 500

// remember records, while a Watch is following the log, that this process
// wrote the audit entries action of cs.
func (m *Manager) remember(action storage.Action, cs ...*storage.Cert) {
	m.ownMu.Lock()
	defer m.ownMu.Unlock()
	if !m.recording {
		return
	}
	for _, c := range cs {
		if c != nil {
			m.own[ownKey{c.Fingerprint, action}]++
		}
	}
}

// mine reports whether this process wrote e (and forgets it: every entry is
// read once).
func (m *Manager) mine(e storage.AuditEntry) bool {
	m.ownMu.Lock()
	defer m.ownMu.Unlock()
	k := ownKey{e.Fingerprint, e.Action}
	if m.own[k] == 0 {
		return false
	}
	if m.own[k]--; m.own[k] == 0 {
		delete(m.own, k)
	}
	return true
}

// Watch follows the store's audit log every opts.Interval until ctx ends and
// passes on every change that a writer other than this process made (the
// administrator's commands, an HTTP API, another component instance),
// whatever its actor: the Changed effects once per account and poll, and for
// every revocation the Revoked and RevokeAtCA effects, as if the change had
// been made through the Manager. Changes made through this Manager are not
// repeated (their effects ran before they were acknowledged): while Watch
// runs, the Manager remembers the audit entries it writes. It starts after
// the newest entry present when it is called. A failed read is logged and
// retried at the next poll. Watch may run once per Manager.
//
// After every poll it records in the store (MarkPassedOn, named
// opts.Watcher) the newest audit ID it has passed on, which also says that it
// is alive: the administrator's commands wait for it to reach the entry they
// wrote before they report a change as done.
func (m *Manager) Watch(ctx context.Context, opts WatchOptions) {
	if opts.Interval <= 0 {
		return
	}
	var last int64
	for {
		m.writing.Lock()
		newest, err := m.Store.Audit(ctx, "", 1)
		if err == nil {
			m.ownMu.Lock()
			m.recording = true
			m.ownMu.Unlock()
		}
		m.writing.Unlock()
		if err == nil {
			if len(newest) == 1 {
				last = newest[0].ID
			}
			break
		}
		m.log.Warn("audit watch: cannot read the audit log; retrying", "err", err)
		if !sleepCtx(ctx, opts.Interval) {
			return
		}
	}
	defer func() {
		m.ownMu.Lock()
		m.recording = false
		clear(m.own)
		m.ownMu.Unlock()
	}()
	m.markPassedOn(ctx, opts.Watcher, last)
	wake := opts.Wake
	for {
		var ok bool
		if ok, wake = waitWake(ctx, opts.Interval, wake); !ok {
			return
		}
		for {
			m.writing.Lock()
			entries, err := m.Store.AuditSince(ctx, last, watchPage)
			m.writing.Unlock()
			if err != nil {
				if ctx.Err() == nil {
					m.log.Warn("audit watch: cannot read the audit log", "err", err)
				}
				break
			}
			m.passOn(ctx, entries)
			if len(entries) > 0 {
				last = entries[len(entries)-1].ID
			}
			if len(entries) < watchPage {
				break
			}
		}
		m.markPassedOn(ctx, opts.Watcher, last)
	}
}

// markPassedOn records that every audit entry up to last was passed on.
func (m *Manager) markPassedOn(ctx context.Context, watcher string, last int64) {
	if err := m.Store.MarkPassedOn(ctx, watcher, last); err != nil && ctx.Err() == nil {
		m.log.Warn("audit watch: cannot record how far the audit log was passed on", "err", err)
	}
}

// passOn runs the side effects of the entries other writers made.
func (m *Manager) passOn(ctx context.Context, entries []storage.AuditEntry) {
	seen := map[string]bool{}
	for _, e := range entries {
		if m.mine(e) {
			continue
		}
		m.log.Info("audit watch: passing on a change made outside the component", "actor", e.Actor, "action", string(e.Action),
			"account", e.Account, "name", e.Name, "fingerprint", e.Fingerprint.String())
		ch := Change{Kind: KindForeign, Account: e.Account, Actor: e.Actor}
		var accounts []string
		if !seen[e.Account] {
			seen[e.Account] = true
			accounts = append(accounts, e.Account)
		}
		if e.Action == storage.ActionRevoke {
			cert, err := m.Store.FindCertByFingerprint(ctx, e.Fingerprint)
			if err != nil {
				m.log.Warn("audit watch: cannot read a revoked certificate; its sessions are closed at the next connect", "fingerprint", e.Fingerprint.String(), "err", err)
			} else {
				ch.Revoked = []*storage.Cert{cert}
			}
		}
		m.run(context.WithValue(ctx, foreignKey{}, true), ch, accounts...)
	}
}

// waitWake waits d or until wake fires; false if ctx ended first. It
// returns the channel to wait on next time: nil once wake is closed.
func waitWake(ctx context.Context, d time.Duration, wake <-chan struct{}) (bool, <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, wake
	case <-t.C:
		return true, wake
	case _, open := <-wake:
		if !open {
			return true, nil
		}
		return true, wake
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
