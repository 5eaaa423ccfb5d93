package storage

import "context"

// ChangeFeed is implemented by stores that several processes share (each
// attached to its own XMPP server): it tells a process soon after another
// one changed the store, so that the process's audit watch
// (lifecycle.Manager.Watch) reads the log at once instead of at its next
// poll. The audit log stays the source of truth: a wake-up carries no
// data, and a missed one costs only the poll interval.
type ChangeFeed interface {
	// Changes returns a channel that receives a value (wake-ups that
	// come while one is pending are merged) after audit entries were
	// committed by any process, and after the feed reconnected (changes
	// may have been missed while it was down). The channel is closed when
	// ctx ends or the store is closed.
	Changes(ctx context.Context) <-chan struct{}
}

// Exclusive is implemented by stores that several processes share: it runs
// a job (renewal, pruning) in at most one of them at a time.
type Exclusive interface {
	// Exclusive runs fn if no other holder of the lock called name holds
	// it, and reports whether it ran. If the store loses the lock while fn
	// runs (its connection to the database broke), fn's ctx is cancelled.
	// Errors: ErrUnavailable (the lock could not be asked for), or fn's.
	Exclusive(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error)
}
