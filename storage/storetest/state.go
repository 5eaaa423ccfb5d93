package storetest

import (
	"fmt"

	"github.com/saslcert/saslcert/storage"
)

func testSetState(e *env) {
	for _, to := range []storage.State{storage.StateDisabled, storage.StateRevoked} {
		c := e.addNew(alice, "laptop")
		want := *c
		now := e.clk.advance()
		got, err := e.s.SetState(e.ctx, alice, "laptop", to, "alice@example.org/phone")
		if err != nil {
			e.t.Fatalf("SetState(%s): %v", to, err)
		}
		want.State, want.Changed = to, now
		checkCert(e.t, "SetState result", got, &want)
		checkCert(e.t, "record after SetState", e.find(c.Fingerprint), &want)
		e.clk.advance()
	}
}

func testSetStateErrors(e *env) {
	e.addNew(alice, "laptop")
	e.addNew(alice, "gone")
	e.setState(alice, "gone", storage.StateRevoked)
	e.addNew(alice, "off")
	e.setState(alice, "off", storage.StateDisabled)
	for _, tc := range []struct {
		account, name string
		to            storage.State
		want          error
	}{
		{alice, "nosuch", storage.StateDisabled, storage.ErrNotFound},
		{bob, "laptop", storage.StateDisabled, storage.ErrNotFound},                // another account's name
		{alice, "gone", storage.StateDisabled, storage.ErrNotFound},                // no active record of that name
		{alice, "off", storage.StateRevoked, storage.ErrNotFound},                  // disabled: SetState acts on active records only
		{alice, "", storage.StateRevoked, storage.ErrNotFound},                     // empty name
		{alice, "laptop", storage.StateActive, storage.ErrInvalid},                 // not a target state
		{alice, "laptop", "", storage.ErrInvalid},                                  // no state
		{alice, "laptop", "deleted", storage.ErrInvalid},                           // unknown state
		{alice, "nosuch", storage.StateActive, storage.ErrInvalid},                 // ErrInvalid whatever the record
		{"ALICE@example.org", "laptop", storage.StateRevoked, storage.ErrNotFound}, // accounts compared as given
	} {
		before := e.snapshot()
		got, err := e.s.SetState(e.ctx, tc.account, tc.name, tc.to, "storetest")
		what := fmt.Sprintf("SetState(%q, %q, %q)", tc.account, tc.name, tc.to)
		wantErr(e.t, what, err, tc.want)
		if got != nil {
			e.t.Fatalf("%s returned a record with its error", what)
		}
		e.unchanged(before, what)
	}
}

func testSetStateByFingerprint(e *env) {
	for _, tc := range []struct {
		from []storage.State // states to pass through first, after active
		to   storage.State
		want error // nil: changed; errNoop: returned unchanged
	}{
		{nil, storage.StateDisabled, nil},
		{nil, storage.StateRevoked, nil},
		{[]storage.State{storage.StateDisabled}, storage.StateRevoked, nil},
		{[]storage.State{storage.StateRevoked}, storage.StateDisabled, storage.ErrTransition},
		{[]storage.State{storage.StateDisabled, storage.StateRevoked}, storage.StateDisabled, storage.ErrTransition},
		{[]storage.State{storage.StateDisabled}, storage.StateDisabled, errNoop},
		{[]storage.State{storage.StateRevoked}, storage.StateRevoked, errNoop},
		{nil, storage.StateActive, storage.ErrInvalid},
		{[]storage.State{storage.StateDisabled}, storage.StateActive, storage.ErrInvalid}, // never back
		{[]storage.State{storage.StateRevoked}, storage.StateActive, storage.ErrInvalid},
		{nil, "bogus", storage.ErrInvalid},
	} {
		c := e.addNew(alice, "laptop")
		for _, s := range tc.from {
			e.clk.advance()
			if _, err := e.s.SetStateByFingerprint(e.ctx, c.Fingerprint, s, "storetest"); err != nil {
				e.t.Fatalf("SetStateByFingerprint(-> %s): %v", s, err)
			}
		}
		what := fmt.Sprintf("SetStateByFingerprint(active -> %v -> %s)", tc.from, tc.to)
		before := e.snapshot()
		cur := e.find(c.Fingerprint)
		now := e.clk.advance()
		got, err := e.s.SetStateByFingerprint(e.ctx, c.Fingerprint, tc.to, "admin")
		switch tc.want {
		case nil:
			if err != nil {
				e.t.Fatalf("%s: %v", what, err)
			}
			want := *cur
			want.State, want.Changed = tc.to, now
			checkCert(e.t, what, got, &want)
			checkCert(e.t, what+" then Find", e.find(c.Fingerprint), &want)
			action := storage.ActionDisable
			if tc.to == storage.StateRevoked {
				action = storage.ActionRevoke
			}
			checkAudit(e.t, e.audit(alice, 1), []storage.AuditEntry{entry(now, "admin", action, c)})
		case errNoop:
			if err != nil {
				e.t.Fatalf("%s: %v, want a no-op", what, err)
			}
			checkCert(e.t, what+" (no-op)", got, cur)
			e.unchanged(before, what+" (no-op)")
		default:
			wantErr(e.t, what, err, tc.want)
			if got != nil {
				e.t.Fatalf("%s returned a record with its error", what)
			}
			e.unchanged(before, what)
		}
		if got := e.find(c.Fingerprint); got.State == storage.StateActive {
			e.setState(alice, "laptop", storage.StateRevoked)
		}
	}
}

// errNoop marks table rows where setting the state is a no-op.
var errNoop = fmt.Errorf("no-op")

func testSetStateByFingerprintErrors(e *env) {
	e.addNew(alice, "laptop")
	before := e.snapshot()
	_, err := e.s.SetStateByFingerprint(e.ctx, storage.FingerprintOf([]byte("unknown")), storage.StateRevoked, "admin")
	wantErr(e.t, "SetStateByFingerprint(unknown)", err, storage.ErrNotFound)
	_, err = e.s.SetStateByFingerprint(e.ctx, storage.Fingerprint{}, storage.StateDisabled, "admin")
	wantErr(e.t, "SetStateByFingerprint(zero)", err, storage.ErrNotFound)
	e.unchanged(before, "SetStateByFingerprint(unknown)")
}

// testHistory checks that disabled and revoked records stay: found by
// fingerprint, listed with their states, walked.
func testHistory(e *env) {
	v1 := e.addNew(alice, "laptop")
	e.clk.advance()
	e.setState(alice, "laptop", storage.StateDisabled)
	v2 := e.addNew(alice, "laptop")
	e.clk.advance()
	e.setState(alice, "laptop", storage.StateRevoked)
	v3 := e.addNew(alice, "laptop")
	e.clk.advance()
	if _, err := e.s.SetStateByFingerprint(e.ctx, v1.Fingerprint, storage.StateRevoked, "admin"); err != nil {
		e.t.Fatal(err)
	}
	wantStates := []storage.State{storage.StateRevoked, storage.StateRevoked, storage.StateActive}
	for i, c := range []*storage.Cert{v1, v2, v3} {
		if got := e.find(c.Fingerprint); got.State != wantStates[i] || got.ID != c.ID {
			e.t.Fatalf("version %d: state %s, want %s", i+1, got.State, wantStates[i])
		}
	}
	got := e.list(alice)
	if len(got) != 3 {
		e.t.Fatalf("ListCerts: %d records, want 3", len(got))
	}
	for i := range got {
		if got[i].ID != []*storage.Cert{v1, v2, v3}[i].ID || got[i].State != wantStates[i] {
			e.t.Fatalf("ListCerts[%d] = ID %d %s, want ID %d %s", i, got[i].ID, got[i].State, []*storage.Cert{v1, v2, v3}[i].ID, wantStates[i])
		}
	}
	if n := len(e.walk()); n != 3 {
		e.t.Fatalf("WalkCerts visited %d records, want 3", n)
	}
}

// testTimes checks Created and Changed against the injected clock.
func testTimes(e *env) {
	t0 := e.clk.Now()
	c := e.addNew(alice, "laptop")
	if !c.Created.Equal(t0) || !c.Changed.Equal(t0) {
		e.t.Fatalf("after AddCert: Created %v, Changed %v, want both %v", c.Created, c.Changed, t0)
	}
	t1 := e.clk.advance()
	got := e.setState(alice, "laptop", storage.StateDisabled)
	if !got.Created.Equal(t0) || !got.Changed.Equal(t1) {
		e.t.Fatalf("after SetState: Created %v, Changed %v, want %v, %v", got.Created, got.Changed, t0, t1)
	}
	e.clk.advance()
	// A no-op does not touch Changed.
	got, err := e.s.SetStateByFingerprint(e.ctx, c.Fingerprint, storage.StateDisabled, "admin")
	if err != nil || !got.Changed.Equal(t1) {
		e.t.Fatalf("no-op SetStateByFingerprint: Changed %v, err %v; want %v", got.Changed, err, t1)
	}
	t3 := e.clk.advance()
	got, err = e.s.SetStateByFingerprint(e.ctx, c.Fingerprint, storage.StateRevoked, "admin")
	if err != nil || !got.Created.Equal(t0) || !got.Changed.Equal(t3) {
		e.t.Fatalf("SetStateByFingerprint: %v; Created %v, Changed %v, want %v, %v", err, got.Created, got.Changed, t0, t3)
	}
	if f := e.find(c.Fingerprint); !f.Created.Equal(t0) || !f.Changed.Equal(t3) {
		e.t.Fatalf("Find: Created %v, Changed %v, want %v, %v", f.Created, f.Changed, t0, t3)
	}
}
