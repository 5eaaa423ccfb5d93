package component

import "time"

// Observer is told about the component's events (metrics.Metrics implements
// it). Its methods are called on request goroutines: they must be quick and
// safe for concurrent use.
type Observer interface {
	// Lookup: one login lookup was answered after elapsed (from reading it
	// to its answer); outcome is one of the Lookup* outcomes or, for a
	// refusal, the SASL condition sent (sasl.NotAuthorized, ...).
	Lookup(outcome string, elapsed time.Duration)
}

// The outcomes of a login lookup besides a refusal's SASL condition.
const (
	// LookupGranted: the login may go ahead.
	LookupGranted = "granted"
	// LookupCertificateNeeded: the fingerprint is not stored; the plugin
	// sends the whole certificate (trusted-root logins).
	LookupCertificateNeeded = "certificate-needed"
	// LookupUndecided: the component could not decide (store unavailable,
	// timeout): temporary-auth-failure.
	LookupUndecided = "undecided"
	// LookupOverloaded: too many requests in flight; not even started.
	LookupOverloaded = "overloaded"
	// LookupMalformed: the lookup itself could not be read.
	LookupMalformed = "malformed"
)

// observeLookup reports a lookup to the configured observer, if any.
func (c *Component) observeLookup(outcome string, began time.Time) {
	if c.cfg.Observer != nil {
		c.cfg.Observer.Lookup(outcome, time.Since(began))
	}
}
