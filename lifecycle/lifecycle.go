// Package lifecycle owns the life-cycle of a certificate record: every change
// of this process (append, disable, revoke with its same-key cascade, revoke
// all of an account, account deleted, account created, enrolled, renewed)
// goes through a Manager, which commits it in the store and then runs the
// registered side effects in one documented order. Changes made by other
// writers of the same store (the admin commands "cli", an HTTP API "api:*",
// another component instance) are followed through the audit log (Watch)
// and get the same side effects.
//
// Protocol handlers translate requests into Manager calls and Manager
// errors into replies (the shape of smallstep's api/revoke.go: the handler
// translates, the authority decides). The package imports only storage.
package lifecycle

import (
	"context"
	"log/slog"
	"sync"

	"github.com/saslcert/saslcert/storage"
)

// Effects are the side effects of a committed change. Any field may be nil.
// After a change the Manager runs, in this order:
//
//  1. Changed, once per account the change touched: the server plugin forgets
//     what it cached about the account (<changed/>);
//  2. for every record the change revoked, oldest first: Revoked (the live
//     sessions that logged in with it are closed, <revoked/>), then
//     RevokeAtCA (the issuing CA is told);
//  3. Notice, once per change: anything that reports the change (messages,
//     metrics).
//
// A revocation that writes an account's tombstone (the server deleted the
// account) runs only 1 and 3: the server ended the account's sessions with
// the account, and the CA is not told (as before the Manager existed).
// Effects run on the caller's goroutine with the caller's context before the
// change is acknowledged; each must be bounded (by ctx or its own deadline)
// and must not fail the change (it is committed): failures are logged by the
// effect itself. Effects registered by several Register calls run stage by
// stage in registration order.
type Effects struct {
	Changed    func(ctx context.Context, account string)
	Revoked    func(ctx context.Context, c *storage.Cert)
	RevokeAtCA func(ctx context.Context, c *storage.Cert)
	Notice     func(ctx context.Context, ch Change)
}

// Kind says what a change did.
type Kind string

// The kinds of change.
const (
	KindAdded          Kind = "added"           // AddCert: append, enrolment, renewal, import
	KindDisabled       Kind = "disabled"        // a record disabled
	KindRevoked        Kind = "revoked"         // a key revoked (with its same-key cascade)
	KindAccountRevoked Kind = "account-revoked" // every record of an account revoked
	KindAccountDeleted Kind = "account-deleted" // account revoked and tombstoned
	KindAccountCreated Kind = "account-created" // tombstone lifted
	KindForeign        Kind = "foreign"         // another writer's change, read from the audit log
)

// Change describes one committed change, as passed to Effects.Notice.
type Change struct {
	Kind    Kind
	Account string
	Actor   string
	// Revoked are the records the change revoked, oldest first.
	Revoked []*storage.Cert
}

// Manager commits certificate changes and runs their side effects. It is a
// storage.Store: give it (never the bare store) to every writer of this
// process — the XEP-0257 handler, the enrolment service, the component's
// account notices — so that no change escapes it. Its read methods are the
// store's. It is safe for concurrent use; Register before the first change.
type Manager struct {
	storage.Store
	log *slog.Logger

	mu      sync.Mutex
	effects []Effects

	// own remembers the audit entries this process wrote while a Watch is
	// following the log, so that Watch passes on only other writers'
	// changes. writing is held (read-locked) by a write from its start
	// until its entries are remembered; Watch write-locks it around each
	// read of the log, so that it never reads an entry of this process
	// that is not remembered yet.
	writing   sync.RWMutex
	ownMu     sync.Mutex
	recording bool
	own       map[ownKey]int
}

// ownKey names an audit entry: a record has at most one entry per action
// (add once, disable once, revoke once), and a fingerprint names one record.
type ownKey struct {
	fp     storage.Fingerprint
	action storage.Action
}

// New returns a Manager over store. log may be nil (no logging).
func New(store storage.Store, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{Store: store, log: log, own: make(map[ownKey]int)}
}

// Register adds side effects, run after those registered before (see
// Effects for the order).
func (m *Manager) Register(e Effects) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.effects = append(m.effects, e)
}

func (m *Manager) registered() []Effects {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.effects
}

// run runs the side effects of ch (see Effects).
func (m *Manager) run(ctx context.Context, ch Change, accounts ...string) {
	effects := m.registered()
	for _, a := range accounts {
		for _, e := range effects {
			if e.Changed != nil {
				e.Changed(ctx, a)
			}
		}
	}
	if ch.Kind != KindAccountDeleted {
		for _, c := range ch.Revoked {
			for _, e := range effects {
				if e.Revoked != nil {
					e.Revoked(ctx, c)
				}
			}
			for _, e := range effects {
				if e.RevokeAtCA != nil {
					e.RevokeAtCA(ctx, c)
				}
			}
		}
	}
	for _, e := range effects {
		if e.Notice != nil {
			e.Notice(ctx, ch)
		}
	}
}
