package enroll

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/saslcert/saslcert/storage"
)

// Defaults of the per-account issuance rate (ServiceConfig.IssueBurst and
// IssueEvery): five certificates at once, then one every ten minutes.
const (
	DefaultIssueBurst = 5
	DefaultIssueEvery = 10 * time.Minute
)

// ErrRateLimited: the account asked for certificates faster than
// ServiceConfig.IssueBurst and IssueEvery allow; nothing was sent to a CA.
// Try again later.
var ErrRateLimited = errors.New("enroll: too many certificate requests")

// maxRateEntries bounds the accounts whose issuance rate is remembered;
// beyond it, accounts whose allowance is full again are forgotten.
const maxRateEntries = 4096

// limiter holds, per account, the issuances in progress (asked of a CA, not
// yet stored or failed) with the names they will be stored under, and the
// issuance rate. Issuances in progress count against
// ServiceConfig.MaxPerAccount like active certificates, so that N requests
// sent at once cannot all reach the CA: at most the free slots do; and
// their names count as taken, so that two of them are not issued for one
// name only for the store to refuse the second.
type limiter struct {
	burst int
	every time.Duration // <= 0: no rate limit

	mu       sync.Mutex
	inflight map[string]int
	names    map[string]map[string]bool // account -> names claimed by issuances in progress
	rates    map[string]*rate.Limiter
}

func newLimiter(burst int, every time.Duration) *limiter {
	return &limiter{burst: burst, every: every, inflight: make(map[string]int),
		names: make(map[string]map[string]bool), rates: make(map[string]*rate.Limiter)}
}

// reservation is one issuance in progress.
type reservation struct {
	l       *limiter
	account string
	name    string // claimed, "" if none yet
	once    sync.Once
}

// reserve takes one of account's slots for an issuance, if fewer than max
// are in progress; the reservation's release gives it back (and its name)
// and must be called. Errors wrap storage.ErrLimit.
func (l *limiter) reserve(account string, max int) (*reservation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight[account] >= max {
		return nil, fmt.Errorf("%w: %d certificate requests of %s are in progress", storage.ErrLimit, l.inflight[account], account)
	}
	l.inflight[account]++
	return &reservation{l: l, account: account}, nil
}

// release ends the reservation; calls after the first do nothing.
func (r *reservation) release() {
	r.once.Do(func() {
		l := r.l
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.inflight[r.account]--; l.inflight[r.account] <= 0 {
			delete(l.inflight, r.account)
		}
		if r.name != "" {
			delete(l.names[r.account], r.name)
			if len(l.names[r.account]) == 0 {
				delete(l.names, r.account)
			}
		}
	})
}

// claim makes name the reservation's, unless another issuance in progress
// for the account has claimed it (false). A reservation claims one name.
func (r *reservation) claim(name string) bool {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.name != "" || l.names[r.account][name] {
		return false
	}
	if l.names[r.account] == nil {
		l.names[r.account] = make(map[string]bool)
	}
	l.names[r.account][name] = true
	r.name = name
	return true
}

// others is the number of the account's issuances in progress besides r.
func (r *reservation) others() int {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	return max(r.l.inflight[r.account]-1, 0)
}

// allow takes one issuance from account's rate allowance at now. Errors
// wrap ErrRateLimited and say when to try again.
func (l *limiter) allow(account string, now time.Time) error {
	if l.every <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.rates[account]
	if !ok {
		if len(l.rates) >= maxRateEntries {
			for a, r := range l.rates {
				if r.TokensAt(now) >= float64(l.burst) {
					delete(l.rates, a)
				}
			}
		}
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.rates[account] = lim
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return Errorf(ErrRateLimited, "%s may request %d certificates at once and then one every %s", account, l.burst, l.every)
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return Errorf(ErrRateLimited, "%s may request %d certificates at once and then one every %s; try again in %s", account, l.burst, l.every, d.Round(time.Second))
	}
	return nil
}
