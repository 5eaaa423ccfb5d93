package enroll

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultRenewBefore renews a certificate when a third of its lifetime is
// left.
var DefaultRenewBefore = RenewBefore{Fraction: 1.0 / 3}

// RenewBefore says when an enrolled certificate is renewed: once Fraction of
// its lifetime is left, or Duration before it expires. At most one of them
// is set; the zero value never renews.
type RenewBefore struct {
	Fraction float64       // in (0, 1)
	Duration time.Duration // > 0
}

// ParseRenewBefore parses a fraction of the lifetime ("1/3", "33%",
// "0.33"), a duration before expiry ("48h", "90m"), or "0" / "never" (no
// renewal).
func ParseRenewBefore(s string) (RenewBefore, error) {
	s = strings.TrimSpace(s)
	bad := func() (RenewBefore, error) {
		return RenewBefore{}, fmt.Errorf("renew-before %q: want a fraction of the lifetime (1/3, 33%%, 0.33), a duration (48h) or never", s)
	}
	switch s {
	case "", "0", "never", "off":
		return RenewBefore{}, nil
	}
	var f float64
	var err error
	switch {
	case strings.HasSuffix(s, "%"):
		f, err = strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		f /= 100
	case strings.Contains(s, "/"):
		num, den, _ := strings.Cut(s, "/")
		var n, d float64
		n, err = strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err == nil {
			d, err = strconv.ParseFloat(strings.TrimSpace(den), 64)
		}
		if err == nil && d == 0 {
			return bad()
		}
		f = n / d
	default:
		if d, derr := time.ParseDuration(s); derr == nil {
			if d <= 0 {
				return bad()
			}
			return RenewBefore{Duration: d}, nil
		}
		f, err = strconv.ParseFloat(s, 64)
	}
	if err != nil || !(f > 0 && f < 1) {
		return bad()
	}
	return RenewBefore{Fraction: f}, nil
}

// String formats r as ParseRenewBefore reads it.
func (r RenewBefore) String() string {
	switch {
	case r.Duration > 0:
		return r.Duration.String()
	case r.Fraction > 0:
		return strconv.FormatFloat(r.Fraction*100, 'g', 4, 64) + "%"
	}
	return "never"
}

// Enabled reports whether r ever renews.
func (r RenewBefore) Enabled() bool { return r.Duration > 0 || (r.Fraction > 0 && r.Fraction < 1) }

// Due reports whether a certificate valid from notBefore to notAfter is due
// for renewal at now. An expired certificate is never due (it can no longer
// be renewed without a new proof of possession).
func (r RenewBefore) Due(notBefore, notAfter, now time.Time) bool {
	if !r.Enabled() || !now.Before(notAfter) {
		return false
	}
	left := notAfter.Sub(now)
	if r.Duration > 0 {
		return left <= r.Duration
	}
	return float64(left) <= r.Fraction*float64(notAfter.Sub(notBefore))
}
