package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/saslcert/saslcert/storage"
)

func testClose(e *env) {
	c := e.addNew(alice, "laptop")
	if err := e.s.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	for name, err := range calls(e, c) {
		wantErr(e.t, name+" after Close", err, storage.ErrUnavailable)
	}
	e.s.Close() // a second Close must not panic
}

// calls runs every Store method except Close once, against a store holding
// c (active, named as it is), and returns their errors. The calls would all
// succeed or change something on a working store.
func calls(e *env, c *storage.Cert) map[string]error {
	errs := map[string]error{}
	errs["AddCert"] = e.s.AddCert(e.ctx, newCert(alice, "new"), storage.AddOptions{})
	_, errs["FindCertByFingerprint"] = e.s.FindCertByFingerprint(e.ctx, c.Fingerprint)
	_, errs["ListCerts"] = e.s.ListCerts(e.ctx, c.Account)
	_, errs["SetState"] = e.s.SetState(e.ctx, c.Account, c.Name, storage.StateDisabled, "x")
	_, errs["SetStateByFingerprint"] = e.s.SetStateByFingerprint(e.ctx, c.Fingerprint, storage.StateRevoked, "x")
	_, errs["Audit"] = e.s.Audit(e.ctx, "", 0)
	errs["WalkCerts"] = e.s.WalkCerts(e.ctx, func(*storage.Cert) error { return nil })
	_, errs["RevokeAccount"] = e.s.RevokeAccount(e.ctx, c.Account, storage.RevokeAccountOptions{Actor: "x", Deleted: true})
	_, errs["ClearTombstone"] = e.s.ClearTombstone(e.ctx, c.Account)
	_, errs["Tombstones"] = e.s.Tombstones(e.ctx)
	return errs
}

// testCanceled checks that a dead context gives an error wrapping the
// context's error from every method, and changes nothing.
func testCanceled(e *env) {
	c := e.addNew(alice, "laptop")
	before := e.snapshot()
	live := e.ctx

	ctx, cancel := context.WithCancel(live)
	cancel()
	e.ctx = ctx
	for name, err := range calls(e, c) {
		wantErr(e.t, name+" with a cancelled context", err, context.Canceled)
	}
	ctx, cancel = context.WithDeadline(live, time.Now().Add(-time.Second))
	defer cancel()
	e.ctx = ctx
	for name, err := range calls(e, c) {
		wantErr(e.t, name+" past the deadline", err, context.DeadlineExceeded)
	}
	e.ctx = live
	e.unchanged(before, "calls with a dead context")
}

// run starts n goroutines at once and waits for them.
func run(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// testConcurrentAdds adds 8 x 50 records from 8 goroutines while 4 others
// read, then checks that exactly those records are there.
func testConcurrentAdds(e *env) {
	const writers, perWriter, readers = 8, 50, 4
	seed := e.addNew("seed@example.org", "seed")
	errs := make(chan error, writers*perWriter+readers)
	done := make(chan struct{})
	var rwg sync.WaitGroup
	for range readers {
		rwg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := e.s.FindCertByFingerprint(e.ctx, seed.Fingerprint); err != nil {
					errs <- fmt.Errorf("concurrent Find: %w", err)
					return
				}
			}
		})
	}
	added := make([][]*storage.Cert, writers)
	run(writers, func(w int) {
		for i := range perWriter {
			c := newCert(fmt.Sprintf("user%d@example.org", w), fmt.Sprintf("c%d", i))
			if err := e.s.AddCert(e.ctx, c, storage.AddOptions{Actor: "w", MaxActive: perWriter}); err != nil {
				errs <- fmt.Errorf("writer %d add %d: %w", w, i, err)
				return
			}
			added[w] = append(added[w], c)
		}
	})
	close(done)
	rwg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}

	ids := map[int64]bool{seed.ID: true}
	for w := range writers {
		got := e.list(fmt.Sprintf("user%d@example.org", w))
		if len(got) != perWriter {
			e.t.Fatalf("writer %d: %d records, want %d", w, len(got), perWriter)
		}
		for i, c := range got {
			checkCert(e.t, fmt.Sprintf("writer %d record %d", w, i), c, added[w][i])
			if ids[c.ID] {
				e.t.Fatalf("ID %d given twice", c.ID)
			}
			ids[c.ID] = true
		}
	}
	all := e.walk()
	if len(all) != writers*perWriter+1 {
		e.t.Fatalf("WalkCerts visited %d records, want %d", len(all), writers*perWriter+1)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			e.t.Fatalf("WalkCerts: ID %d after %d", all[i].ID, all[i-1].ID)
		}
	}
	if got := e.audit("", 0); len(got) != writers*perWriter+1 {
		e.t.Fatalf("%d audit entries, want %d", len(got), writers*perWriter+1)
	}
}

// concurrently runs n AddCerts of the records mk makes and counts the
// outcomes by sentinel (nil for success).
func concurrently(e *env, n int, opts storage.AddOptions, mk func(i int) *storage.Cert) map[error]int {
	certs := make([]*storage.Cert, n)
	for i := range certs {
		certs[i] = mk(i)
	}
	res := make([]error, n)
	run(n, func(i int) { res[i] = e.s.AddCert(e.ctx, certs[i], opts) })
	counts := map[error]int{}
outer:
	for _, err := range res {
		for _, s := range []error{nil, storage.ErrNameTaken, storage.ErrDuplicate, storage.ErrLimit} {
			if errors.Is(err, s) {
				counts[s]++
				continue outer
			}
		}
		e.t.Fatalf("concurrent AddCert: unexpected error %v", err)
	}
	return counts
}

func testConcurrentSameName(e *env) {
	const n = 16
	got := concurrently(e, n, storage.AddOptions{}, func(int) *storage.Cert { return newCert(alice, "laptop") })
	if got[nil] != 1 || got[storage.ErrNameTaken] != n-1 {
		e.t.Fatalf("%d concurrent adds of one name: %v, want 1 success and %d ErrNameTaken", n, got, n-1)
	}
	if l := e.list(alice); len(l) != 1 {
		e.t.Fatalf("%d records stored, want 1", len(l))
	}
}

func testConcurrentSameFingerprint(e *env) {
	const n = 16
	proto := newCert(alice, "laptop")
	got := concurrently(e, n, storage.AddOptions{}, func(i int) *storage.Cert {
		c := newCert([]string{alice, bob}[i%2], fmt.Sprintf("name%d", i))
		c.DER, c.Fingerprint = append([]byte(nil), proto.DER...), proto.Fingerprint
		return c
	})
	if got[nil] != 1 || got[storage.ErrDuplicate] != n-1 {
		e.t.Fatalf("%d concurrent adds of one certificate: %v, want 1 success and %d ErrDuplicate", n, got, n-1)
	}
	if l := e.walk(); len(l) != 1 {
		e.t.Fatalf("%d records stored, want 1", len(l))
	}
}

func testConcurrentLimit(e *env) {
	const n, limit = 16, 5
	e.addNew(alice, "existing")
	got := concurrently(e, n, storage.AddOptions{MaxActive: limit}, func(i int) *storage.Cert {
		return newCert(alice, fmt.Sprintf("c%d", i))
	})
	if got[nil] != limit-1 || got[storage.ErrLimit] != n-limit+1 {
		e.t.Fatalf("%d concurrent adds with MaxActive %d and 1 stored: %v, want %d successes", n, limit, got, limit-1)
	}
	if l := e.list(alice, storage.StateActive); len(l) != limit {
		e.t.Fatalf("%d active records, want %d", len(l), limit)
	}
}

// testConcurrentSetState races disable and revoke of one record: every call
// succeeds or fails with a sentinel, and the record ends revoked or disabled
// with one audit entry per effective change.
func testConcurrentSetState(e *env) {
	const n = 16
	c := e.addNew(alice, "laptop")
	res := make([]error, n)
	run(n, func(i int) {
		to := []storage.State{storage.StateDisabled, storage.StateRevoked}[i%2]
		if i%4 < 2 {
			_, res[i] = e.s.SetStateByFingerprint(e.ctx, c.Fingerprint, to, "racer")
		} else {
			_, res[i] = e.s.SetState(e.ctx, alice, "laptop", to, "racer")
		}
	})
	for i, err := range res {
		if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrTransition) {
			e.t.Fatalf("racer %d: %v", i, err)
		}
	}
	got := e.find(c.Fingerprint)
	changes := len(e.audit(alice, 0)) - 1
	switch {
	case got.State == storage.StateDisabled && changes == 1,
		got.State == storage.StateRevoked && (changes == 1 || changes == 2):
	default:
		e.t.Fatalf("after racing: state %s with %d audited changes", got.State, changes)
	}
}
