package storage

import "context"

// Optional interfaces a backend may implement beside Store. Callers test
// for them with a type assertion and do without when they are missing.

// Pinger is a store that can tell whether it answers (the readiness check
// of saslcert serve's /readyz).
type Pinger interface {
	// Ping runs one trivial read against the store. Errors:
	// ErrUnavailable (not reachable, closed, ctx expired).
	Ping(ctx context.Context) error
}

// Counter is a store that can count its records (the store-size metrics).
type Counter interface {
	// CountCerts returns the number of certificate records in each state
	// (states without records may be missing) and the number of
	// tombstones. It may read every record: call it rarely (the metrics
	// cache it). Errors: ErrUnavailable.
	CountCerts(ctx context.Context) (Counts, error)
}

// Counts is what Counter.CountCerts returns.
type Counts struct {
	// Certs is the number of records by state.
	Certs map[State]int64
	// Tombstones is the number of deleted accounts whose tombstone is
	// kept.
	Tombstones int64
}
