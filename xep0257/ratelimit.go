package xep0257

import (
	"sync"
	"time"
)

// RateLimit is a token bucket per account: Burst requests at once, then one
// every Every. It keeps at most maxRateKeys accounts: when full, buckets that
// have refilled (and so hold nothing worth remembering) are dropped, and if
// none has, the account that asks is refused (failing closed) until one has.
// Safe for concurrent use; the zero value is not usable: use NewRateLimit.
type RateLimit struct {
	every time.Duration
	burst float64
	now   func() time.Time

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxRateKeys bounds the accounts a RateLimit remembers (about 100 bytes each).
const maxRateKeys = 100_000

// NewRateLimit returns a limit of burst requests at once and one more every
// every (both must be positive), reading time from now (nil: time.Now).
func NewRateLimit(burst int, every time.Duration, now func() time.Time) *RateLimit {
	if now == nil {
		now = time.Now
	}
	return &RateLimit{every: every, burst: float64(burst), now: now, m: make(map[string]*bucket)}
}

// Allow takes one token from account's bucket. If there is none it returns
// false and how long until there is one.
func (r *RateLimit) Allow(account string) (bool, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	b := r.m[account]
	if b == nil {
		if len(r.m) >= maxRateKeys && !r.sweep(now) {
			return false, r.every
		}
		b = &bucket{tokens: r.burst, last: now}
		r.m[account] = b
	}
	r.refill(b, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(r.every))
	}
	b.tokens--
	return true, 0
}

func (r *RateLimit) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(r.burst, b.tokens+float64(d)/float64(r.every))
		b.last = now
	}
}

// sweep drops full buckets and reports whether any was dropped.
func (r *RateLimit) sweep(now time.Time) bool {
	dropped := false
	for k, b := range r.m {
		r.refill(b, now)
		if b.tokens >= r.burst {
			delete(r.m, k)
			dropped = true
		}
	}
	return dropped
}
