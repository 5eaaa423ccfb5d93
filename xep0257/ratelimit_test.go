package xep0257

import (
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRateLimit(2, time.Minute, func() time.Time { return now })
	for _, step := range []struct {
		name    string
		advance time.Duration
		account string
		ok      bool
	}{
		{"first of burst", 0, "a", true},
		{"second of burst", 0, "a", true},
		{"burst used", 0, "a", false},
		{"another account has its own", 0, "b", true},
		{"half a period is not enough", 30 * time.Second, "a", false},
		{"one period refills one", 30 * time.Second, "a", true},
		{"and only one", 0, "a", false},
		{"refill never exceeds the burst", time.Hour, "a", true},
		{"second after the long pause", 0, "a", true},
		{"third after the long pause", 0, "a", false},
	} {
		now = now.Add(step.advance)
		if ok, wait := r.Allow(step.account); ok != step.ok || (!ok && wait <= 0) {
			t.Errorf("%s: Allow = %v (wait %v), want %v", step.name, ok, wait, step.ok)
		}
	}
}
