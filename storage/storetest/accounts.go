package storetest

import (
	"errors"
	"fmt"
	"slices"

	"github.com/saslcert/saslcert/storage"
)

// deletedBy is the actor the account tests revoke with.
const deletedBy = "server:example.org (account deleted)"

// testRevokeAccount: RevokeAccount with Deleted revokes the account's active
// and disabled records (not its revoked ones, not other accounts'), audits
// each revoke, returns them oldest first, and writes the tombstone.
func testRevokeAccount(e *env) {
	a := e.addNew(alice, "a")
	b := e.addNew(alice, "b")
	e.setState(alice, "b", storage.StateDisabled)
	old := e.addNew(alice, "old")
	e.setState(alice, "old", storage.StateRevoked)
	c := e.addNew(alice, "c")
	other := e.addNew(bob, "a")
	tm := e.clk.advance()

	got, err := e.s.RevokeAccount(e.ctx, alice, storage.RevokeAccountOptions{Actor: deletedBy, Deleted: true})
	if err != nil {
		e.t.Fatalf("RevokeAccount: %v", err)
	}
	if len(got) != 3 || got[0].ID != a.ID || got[1].ID != b.ID || got[2].ID != c.ID {
		e.t.Fatalf("RevokeAccount returned %d records %v, want a, b, c", len(got), names(got))
	}
	for _, r := range got {
		if r.State != storage.StateRevoked || !r.Changed.Equal(tm) {
			e.t.Fatalf("returned record %q: state %s changed %v, want revoked at %v", r.Name, r.State, r.Changed, tm)
		}
	}
	if n := len(e.list(alice, storage.StateActive, storage.StateDisabled)); n != 0 {
		e.t.Fatalf("%d active or disabled records left", n)
	}
	if r := e.find(old.Fingerprint); !r.Changed.Before(tm) {
		e.t.Fatalf("the already revoked record was changed again at %v", r.Changed)
	}
	if r := e.find(other.Fingerprint); r.State != storage.StateActive {
		e.t.Fatalf("bob's record is %s", r.State)
	}
	au := e.audit(alice, 3)
	checkAudit(e.t, au, []storage.AuditEntry{
		entry(tm, deletedBy, storage.ActionRevoke, c),
		entry(tm, deletedBy, storage.ActionRevoke, b),
		entry(tm, deletedBy, storage.ActionRevoke, a),
	})
	if ts := e.tombstones(); !slices.Equal(ts, []string{alice}) {
		e.t.Fatalf("Tombstones = %q, want [%s]", ts, alice)
	}

	// Again: nothing left to revoke, the tombstone stays, nothing audited.
	before := e.snapshot()
	got, err = e.s.RevokeAccount(e.ctx, alice, storage.RevokeAccountOptions{Actor: deletedBy, Deleted: true})
	if err != nil || got == nil || len(got) != 0 {
		e.t.Fatalf("second RevokeAccount: %v %v, want an empty slice", names(got), err)
	}
	e.unchanged(before, "a second RevokeAccount")

	// An account without records gets its tombstone all the same.
	if _, err := e.s.RevokeAccount(e.ctx, "nobody@example.org", storage.RevokeAccountOptions{Deleted: true}); err != nil {
		e.t.Fatal(err)
	}
	if ts := e.tombstones(); !slices.Equal(ts, []string{alice, "nobody@example.org"}) {
		e.t.Fatalf("Tombstones = %q", ts)
	}

	before = e.snapshot()
	_, err = e.s.RevokeAccount(e.ctx, "", storage.RevokeAccountOptions{Deleted: true})
	wantErr(e.t, "RevokeAccount of an empty account", err, storage.ErrInvalid)
	_, err = e.s.ClearTombstone(e.ctx, "")
	wantErr(e.t, "ClearTombstone of an empty account", err, storage.ErrInvalid)
	e.unchanged(before, "refused calls")
}

// testRevokeAccountNoTombstone: without Deleted (an administrator's revoke
// --all), the records are revoked but the account may add again.
func testRevokeAccountNoTombstone(e *env) {
	e.addNew(alice, "a")
	got, err := e.s.RevokeAccount(e.ctx, alice, storage.RevokeAccountOptions{Actor: "cli"})
	if err != nil || len(got) != 1 {
		e.t.Fatalf("RevokeAccount: %v %v", names(got), err)
	}
	if ts := e.tombstones(); len(ts) != 0 {
		e.t.Fatalf("Tombstones = %q, want none", ts)
	}
	e.addNew(alice, "a")
}

// testTombstone: a tombstoned account's AddCert fails with ErrAccountDeleted
// and changes nothing, whatever the options; other accounts are not
// affected; ClearTombstone lifts it once.
func testTombstone(e *env) {
	if _, err := e.s.RevokeAccount(e.ctx, alice, storage.RevokeAccountOptions{Actor: deletedBy, Deleted: true}); err != nil {
		e.t.Fatal(err)
	}
	before := e.snapshot()
	for _, opts := range []storage.AddOptions{{}, {MaxActive: 5, Actor: "alice@example.org/phone"}} {
		err := e.s.AddCert(e.ctx, newCert(alice, "late"), opts)
		wantErr(e.t, fmt.Sprintf("AddCert for a deleted account (%+v)", opts), err, storage.ErrAccountDeleted)
	}
	e.unchanged(before, "AddCert for a deleted account")
	e.addNew(bob, "late")

	cleared, err := e.s.ClearTombstone(e.ctx, alice)
	if err != nil || !cleared {
		e.t.Fatalf("ClearTombstone: %v %v, want true", cleared, err)
	}
	cleared, err = e.s.ClearTombstone(e.ctx, alice)
	if err != nil || cleared {
		e.t.Fatalf("second ClearTombstone: %v %v, want false", cleared, err)
	}
	if ts := e.tombstones(); len(ts) != 0 {
		e.t.Fatalf("Tombstones = %q after clearing", ts)
	}
	e.addNew(alice, "late")
}

// testTombstoneErrorOrder: ErrInvalid comes before ErrAccountDeleted, which
// comes before ErrDuplicate and ErrNameTaken.
func testTombstoneErrorOrder(e *env) {
	a := e.addNew(alice, "a")
	// Revoked and tombstoned: the fingerprint stays taken.
	if _, err := e.s.RevokeAccount(e.ctx, alice, storage.RevokeAccountOptions{Deleted: true}); err != nil {
		e.t.Fatal(err)
	}
	bad := newCert(alice, "")
	wantErr(e.t, "invalid record for a deleted account", e.s.AddCert(e.ctx, bad, storage.AddOptions{}), storage.ErrInvalid)
	dup := newCert(alice, "b")
	dup.DER, dup.Fingerprint = a.DER, a.Fingerprint
	wantErr(e.t, "duplicate for a deleted account", e.s.AddCert(e.ctx, dup, storage.AddOptions{}), storage.ErrAccountDeleted)
}

// testConcurrentRevokeAccount races 8 writers adding records for alice
// against one RevokeAccount with Deleted: afterwards no record of alice is
// active, every add either succeeded (and was revoked) or got
// ErrAccountDeleted, and the returned records are exactly those added before.
func testConcurrentRevokeAccount(e *env) {
	const writers, perWriter = 8, 10
	errs := make(chan error, writers*perWriter+1)
	var revoked []*storage.Cert
	run(writers+1, func(w int) {
		if w == writers {
			var err error
			revoked, err = e.s.RevokeAccount(e.ctx, alice, storage.RevokeAccountOptions{Actor: deletedBy, Deleted: true})
			if err != nil {
				errs <- fmt.Errorf("RevokeAccount: %w", err)
			}
			return
		}
		for i := range perWriter {
			err := e.s.AddCert(e.ctx, newCert(alice, fmt.Sprintf("w%d-%d", w, i)), storage.AddOptions{})
			if err != nil && !errors.Is(err, storage.ErrAccountDeleted) {
				errs <- fmt.Errorf("AddCert: %w", err)
			}
		}
	})
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
	all := e.list(alice)
	if n := len(e.list(alice, storage.StateActive, storage.StateDisabled)); n != 0 {
		e.t.Fatalf("%d of %d records of the deleted account are not revoked", n, len(all))
	}
	if len(revoked) != len(all) {
		e.t.Fatalf("RevokeAccount returned %d records, %d are stored", len(revoked), len(all))
	}
	e.t.Logf("%d adds committed before the deletion, %d refused", len(all), writers*perWriter-len(all))
}

func names(cs []*storage.Cert) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// testAccounts: Accounts pages through the accounts with active or
// disabled records, in ascending order, after the given one; accounts with
// only revoked records are left out; a limit <= 0 is ErrInvalid.
func testAccounts(e *env) {
	carol, dave := "carol@example.org", "dave@example.org"
	e.addNew(bob, "b1")
	e.addNew(bob, "b2")
	e.addNew(alice, "a1")
	e.addNew(dave, "d1")
	e.setState(dave, "d1", storage.StateDisabled)
	e.addNew(carol, "c1")
	e.setState(carol, "c1", storage.StateRevoked)
	tests := []struct {
		name  string
		after string
		limit int
		want  []string
	}{
		{"all", "", 10, []string{alice, bob, dave}},
		{"first page", "", 2, []string{alice, bob}},
		{"next page", bob, 2, []string{dave}},
		{"past the end", dave, 2, []string{}},
		{"between names", "b", 1, []string{bob}},
	}
	for _, tt := range tests {
		got, err := e.s.Accounts(e.ctx, tt.after, tt.limit)
		if err != nil {
			e.t.Fatalf("%s: Accounts(%q, %d): %v", tt.name, tt.after, tt.limit, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) || got == nil {
			e.t.Errorf("%s: Accounts(%q, %d) = %q, want %q", tt.name, tt.after, tt.limit, got, tt.want)
		}
	}
	_, err := e.s.Accounts(e.ctx, "", 0)
	wantErr(e.t, "Accounts with limit 0", err, storage.ErrInvalid)
}
