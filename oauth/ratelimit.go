package oauth

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiters bounds the failLimiter's map; beyond it, limiters that are
// full again (nobody failed recently) are dropped.
const maxLimiters = 10000

// failLimiter limits failed client authentications per key ("id:<client>",
// "addr:<ip>"): burst failures, then one per interval. A key out of
// allowance is refused before its credentials are checked.
type failLimiter struct {
	every rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newFailLimiter(every rate.Limit, burst int) *failLimiter {
	return &failLimiter{every: every, burst: burst, m: map[string]*rate.Limiter{}}
}

func (f *failLimiter) get(key string) *rate.Limiter {
	l := f.m[key]
	if l == nil {
		if len(f.m) >= maxLimiters {
			for k, v := range f.m {
				if v.Tokens() >= float64(f.burst) {
					delete(f.m, k)
				}
			}
			for k := range f.m { // still full of failing keys: forget some
				if len(f.m) < maxLimiters {
					break
				}
				delete(f.m, k)
			}
		}
		l = rate.NewLimiter(f.every, f.burst)
		f.m[key] = l
	}
	return l
}

// blocked reports whether any of keys has no failure left, and when the
// next one is allowed.
func (f *failLimiter) blocked(now time.Time, keys ...string) (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		if k == "" {
			continue
		}
		l, ok := f.m[k]
		if ok && l.TokensAt(now) < 1 {
			return true, time.Duration((1 - l.TokensAt(now)) / float64(f.every) * float64(time.Second))
		}
	}
	return false, 0
}

// failed counts a failure against every key.
func (f *failLimiter) failed(now time.Time, keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		if k != "" {
			f.get(k).AllowN(now, 1)
		}
	}
}

// addrKey is the limiter key of the request's peer address (the TCP peer:
// a proxy in front of saslcert is one address).
func addrKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host
}

// idKey is the limiter key of a claimed client id ("" for none).
func idKey(id string) string {
	if id == "" {
		return ""
	}
	return "id:" + id
}
