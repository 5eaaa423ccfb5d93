package component

import (
	"context"
	"sync"
	"time"
)

// boundOrder tells whether a certificate session bound before a change of
// its account reached the server plugin, so that checkBound keeps the
// sessions a <disable/> promises to keep (XEP-0257: live sessions stay).
//
// Bound notices are numbered in stream order (on the stream goroutine). The
// plugin sends every session notice it has queued before it acknowledges a
// <changed/> (its notices are batched for saslcert_notice_delay), and the
// answer is read on the stream goroutine too, so the number of notices read
// before the acknowledgement counts exactly the sessions that bound before
// the plugin forgot what it had cached about the account. A session bound
// after that logged in on an answer obtained before the change (a lookup in
// flight while it committed): its certificate's state in the store is the
// one that applies to it.
//
// A check waits for the mark only while a <changed/> of the account is on
// its way (sending/sent bracket NotifyChanged), at most
// Config.RequestTimeout: the disable's own <changed/> is usually still on its
// way when the check reads the store. Marks are kept for markTTL, longer
// than any check. Without a mark (no <changed/> was acknowledged: no caches,
// the link was down, or the change was made by another process:
// NotifyChanged records no mark for those, lifecycle.Foreign, since they are
// passed on up to the watch interval after their commit) a session is not
// known to have bound before, and checkBound closes it; with nothing on its
// way it does so at once instead of waiting out the request timeout.
type boundOrder struct {
	mu      sync.Mutex
	seq     uint64          // bound notices read so far
	marks   map[string]mark // bare JID -> the last acknowledged <changed/>
	pending map[string]int  // bare JID -> <changed/> notices on their way
	updated chan struct{}   // closed (and replaced) when a mark is set
}

// markTTL is how long a mark is kept: longer than any check of a bound
// session takes (a store read and a wait, each within the request timeout).
func markTTL(requestTimeout time.Duration) time.Duration { return 3 * requestTimeout }

// mark is the notice count when a <changed/> of an account was acknowledged.
type mark struct {
	seq uint64
	at  time.Time
}

// bound numbers a bound notice; call it on the stream goroutine, in stream
// order.
func (b *boundOrder) bound() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	return b.seq
}

// read returns the number of bound notices read so far; call it on the
// stream goroutine when an answer is read.
func (b *boundOrder) read() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq
}

// changed records that the plugin acknowledged a <changed/> of account
// after seq bound notices, at now; marks older than ttl are dropped.
func (b *boundOrder) changed(account string, seq uint64, now time.Time, ttl time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.marks == nil {
		b.marks = make(map[string]mark)
	}
	for a, m := range b.marks {
		if now.Sub(m.at) > ttl {
			delete(b.marks, a)
		}
	}
	if m, ok := b.marks[account]; !ok || seq > m.seq {
		b.marks[account] = mark{seq: seq, at: now}
	}
	if b.updated != nil {
		close(b.updated)
		b.updated = nil
	}
}

// sending records that a <changed/> of account is on its way to the plugin;
// sent must follow, after changed if it was acknowledged.
func (b *boundOrder) sending(account string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending = make(map[string]int)
	}
	b.pending[account]++
}

// sent records that a <changed/> of account is no longer on its way
// (acknowledged, refused or timed out), waking waiting checks.
func (b *boundOrder) sent(account string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending[account]--; b.pending[account] <= 0 {
		delete(b.pending, account)
	}
	if b.updated != nil {
		close(b.updated)
		b.updated = nil
	}
}

// before reports whether the bound notice numbered seq was read before the
// plugin acknowledged a <changed/> of account (still on record), waiting
// until ctx ends for such an acknowledgement while a <changed/> of account is
// on its way: a check that finds its certificate disabled usually runs while
// the disable's own <changed/> is on its way to the plugin. With no mark and
// nothing on its way it returns false at once.
func (b *boundOrder) before(ctx context.Context, account string, seq uint64) bool {
	for {
		b.mu.Lock()
		m, ok := b.marks[account]
		if ok && seq <= m.seq {
			b.mu.Unlock()
			return true
		}
		if b.pending[account] == 0 {
			b.mu.Unlock()
			return false
		}
		if b.updated == nil {
			b.updated = make(chan struct{})
		}
		updated := b.updated
		b.mu.Unlock()
		select {
		case <-updated:
		case <-ctx.Done():
			return false
		}
	}
}
