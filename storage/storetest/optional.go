package storetest

import (
	"errors"
	"maps"

	"github.com/saslcert/saslcert/storage"
)

// testOptional checks the optional interfaces the store implements
// (storage.Pinger, storage.Counter); a store without them passes.
func testOptional(e *env) {
	if p, ok := e.s.(storage.Pinger); ok {
		if err := p.Ping(e.ctx); err != nil {
			e.t.Fatalf("Ping: %v", err)
		}
	}
	if c, ok := e.s.(storage.Counter); ok {
		got, err := c.CountCerts(e.ctx)
		if err != nil {
			e.t.Fatalf("CountCerts of an empty store: %v", err)
		}
		if total(got.Certs) != 0 || got.Tombstones != 0 {
			e.t.Fatalf("CountCerts of an empty store: %+v", got)
		}
		e.addNew(alice, "a")
		e.addNew(alice, "b")
		e.setState(alice, "b", storage.StateDisabled)
		e.addNew(bob, "a")
		e.setState(bob, "a", storage.StateRevoked)
		const carol = "carol@example.org"
		e.addNew(carol, "a")
		if _, err := e.s.RevokeAccount(e.ctx, carol, storage.RevokeAccountOptions{Actor: "storetest", Deleted: true}); err != nil {
			e.t.Fatalf("RevokeAccount: %v", err)
		}
		got, err = c.CountCerts(e.ctx)
		if err != nil {
			e.t.Fatalf("CountCerts: %v", err)
		}
		want := map[storage.State]int64{storage.StateActive: 1, storage.StateDisabled: 1, storage.StateRevoked: 2}
		for s, n := range got.Certs {
			if n == 0 {
				delete(got.Certs, s)
			}
		}
		if !maps.Equal(got.Certs, want) || got.Tombstones != 1 {
			e.t.Fatalf("CountCerts = %+v, want %v and 1 tombstone", got, want)
		}
	}
	// After Close both answer ErrUnavailable.
	if err := e.s.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	if p, ok := e.s.(storage.Pinger); ok {
		if err := p.Ping(e.ctx); !errors.Is(err, storage.ErrUnavailable) {
			e.t.Fatalf("Ping after Close: %v, want ErrUnavailable", err)
		}
	}
	if c, ok := e.s.(storage.Counter); ok {
		if _, err := c.CountCerts(e.ctx); !errors.Is(err, storage.ErrUnavailable) {
			e.t.Fatalf("CountCerts after Close: %v, want ErrUnavailable", err)
		}
	}
}

func total(m map[storage.State]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
