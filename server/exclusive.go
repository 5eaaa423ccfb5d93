package server

import (
	"context"

	"github.com/saslcert/saslcert/component"
	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/storage"
)

// renewalLock names the lock under which one process of several sharing a
// store runs the renewal sweep (storage.Exclusive).
const renewalLock = "saslcert-renewal"

// exclusiveSweep is the enrolment as the component sees it, whose renewal
// sweep runs in at most one process at a time when the store is shared by
// several (storage.Exclusive); the others skip the round. With a store of
// one process it is the enrolment itself.
type exclusiveSweep struct {
	component.Enrollment
	store storage.Store
}

// Sweep implements component.Enrollment.
func (e exclusiveSweep) Sweep(ctx context.Context) ([]enroll.Notice, error) {
	ex, ok := e.store.(storage.Exclusive)
	if !ok {
		return e.Enrollment.Sweep(ctx)
	}
	var notices []enroll.Notice
	_, err := ex.Exclusive(ctx, renewalLock, func(ctx context.Context) error {
		var err error
		notices, err = e.Enrollment.Sweep(ctx)
		return err
	})
	return notices, err
}
