package storetest

import (
	"errors"
	"fmt"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// testPassedOn: marks are kept per watcher, never go back, and carry the
// store's clock.
func testPassedOn(e *env) {
	if got, err := e.s.PassedOn(e.ctx); err != nil || len(got) != 0 {
		e.t.Fatalf("PassedOn on an empty store: %v, %v", got, err)
	}
	if err := e.s.MarkPassedOn(e.ctx, "", 1); !errors.Is(err, storage.ErrInvalid) {
		e.t.Fatalf("MarkPassedOn with an empty watcher: %v, want ErrInvalid", err)
	}
	t1 := e.clk.advance()
	if err := e.s.MarkPassedOn(e.ctx, "certs.b.example", 7); err != nil {
		e.t.Fatal(err)
	}
	if err := e.s.MarkPassedOn(e.ctx, "certs.a.example", 3); err != nil {
		e.t.Fatal(err)
	}
	t2 := e.clk.advance()
	// Going back keeps the ID but refreshes Seen.
	if err := e.s.MarkPassedOn(e.ctx, "certs.b.example", 5); err != nil {
		e.t.Fatal(err)
	}
	got, err := e.s.PassedOn(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	want := []storage.PassedOnMark{{Watcher: "certs.a.example", AuditID: 3, Seen: t1}, {Watcher: "certs.b.example", AuditID: 7, Seen: t2}}
	if len(got) != len(want) {
		e.t.Fatalf("PassedOn = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Watcher != want[i].Watcher || got[i].AuditID != want[i].AuditID || !got[i].Seen.Equal(want[i].Seen) {
			e.t.Errorf("PassedOn[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	e.clk.advance()
	if err := e.s.MarkPassedOn(e.ctx, "certs.a.example", 9); err != nil {
		e.t.Fatal(err)
	}
	got, err = e.s.PassedOn(e.ctx)
	if err != nil || len(got) != 2 || got[0].AuditID != 9 {
		e.t.Fatalf("after moving on: %s, %v", fmt.Sprint(got), err)
	}
}

// testHistoryLimit: MaxHistory bounds the disabled and revoked records an
// account keeps; expired ones are deleted to make room, unexpired ones
// never, and a revoked fingerprint stays taken while it has not expired.
func testHistoryLimit(e *env) {
	expired := func(name string) *storage.Cert {
		c := newCert(alice, name)
		c.NotAfter = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // before the suite's clock
		return c
	}
	now := e.clk.Now()
	opts := storage.AddOptions{MaxHistory: 2, ExpiredBefore: now}
	e.add(newCert(alice, "a"), opts)
	e.add(newCert(alice, "b"), opts)
	old := e.add(expired("old"), opts)
	e.setState(alice, "a", storage.StateDisabled)
	revoked := e.setState(alice, "b", storage.StateRevoked)
	e.setState(alice, "old", storage.StateRevoked)
	// Three in history; the expired one goes, two remain: allowed.
	e.add(newCert(alice, "c"), opts)
	if _, err := e.s.FindCertByFingerprint(e.ctx, old.Fingerprint); !errors.Is(err, storage.ErrNotFound) {
		e.t.Fatalf("the expired revoked record after an add with ExpiredBefore: %v, want ErrNotFound", err)
	}
	e.setState(alice, "c", storage.StateDisabled)
	before := e.snapshot()
	err := e.s.AddCert(e.ctx, newCert(alice, "d"), opts)
	wantErr(e.t, "AddCert with 3 unexpired records in history, MaxHistory 2", err, storage.ErrHistoryFull)
	e.unchanged(before, "an AddCert refused with ErrHistoryFull")
	// A revoked fingerprint that has not expired stays taken.
	again := newCert(alice, "b2")
	again.DER, again.Fingerprint = revoked.DER, revoked.Fingerprint
	wantErr(e.t, "AddCert of a revoked certificate", e.s.AddCert(e.ctx, again, storage.AddOptions{}), storage.ErrDuplicate)
	// Other accounts and no limit are not affected.
	e.add(newCert(bob, "a"), opts)
	e.add(newCert(alice, "d"), storage.AddOptions{})
}

// testPrune: Prune deletes expired history and old audit entries, never an
// active record.
func testPrune(e *env) {
	exp := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	for _, n := range []string{"active-expired", "disabled-expired", "revoked-expired", "revoked-valid"} {
		c := newCert(alice, n)
		if n != "revoked-valid" {
			c.NotAfter = exp
		}
		e.add(c, storage.AddOptions{})
	}
	e.setState(alice, "disabled-expired", storage.StateDisabled)
	e.setState(alice, "revoked-expired", storage.StateRevoked)
	e.setState(alice, "revoked-valid", storage.StateRevoked)
	cut := e.clk.advance()
	e.add(newCert(bob, "late"), storage.AddOptions{})
	if r, err := e.s.Prune(e.ctx, storage.PruneOptions{}); err != nil || r != (storage.PruneResult{}) {
		e.t.Fatalf("Prune with nothing to do: %+v, %v", r, err)
	}
	r, err := e.s.Prune(e.ctx, storage.PruneOptions{ExpiredBefore: cut, AuditBefore: cut})
	if err != nil {
		e.t.Fatal(err)
	}
	if r.Certs != 2 || r.Audit != 7 {
		e.t.Errorf("Prune: %+v, want 2 records and 7 audit entries", r)
	}
	var names []string
	for _, c := range e.list(alice) {
		names = append(names, c.Name)
	}
	if fmt.Sprint(names) != "[active-expired revoked-valid]" {
		e.t.Errorf("records after Prune: %v", names)
	}
	if a := e.audit("", 0); len(a) != 1 || a[0].Name != "late" {
		e.t.Errorf("audit after Prune: %+v, want only bob's late add", a)
	}
}
