package storetest

import (
	"errors"
	"fmt"

	"github.com/saslcert/saslcert/storage"
)

func testAudit(e *env) {
	if got := e.audit("", 0); len(got) != 0 {
		e.t.Fatalf("audit of an empty store: %d entries", len(got))
	}
	var want []storage.AuditEntry // oldest first; reversed below
	t0 := e.clk.Now()
	a := e.add(newCert(alice, "laptop"), storage.AddOptions{Actor: "alice@example.org/laptop"})
	want = append(want, entry(t0, "alice@example.org/laptop", storage.ActionAdd, a))
	t1 := e.clk.advance()
	b := e.add(newCert(bob, "phone"), storage.AddOptions{Actor: "cli"})
	want = append(want, entry(t1, "cli", storage.ActionAdd, b))
	t2 := e.clk.advance()
	if _, err := e.s.SetState(e.ctx, alice, "laptop", storage.StateDisabled, "alice@example.org/phone"); err != nil {
		e.t.Fatal(err)
	}
	want = append(want, entry(t2, "alice@example.org/phone", storage.ActionDisable, a))
	t3 := e.clk.advance()
	if _, err := e.s.SetStateByFingerprint(e.ctx, a.Fingerprint, storage.StateRevoked, "api:admin"); err != nil {
		e.t.Fatal(err)
	}
	want = append(want, entry(t3, "api:admin", storage.ActionRevoke, a))
	t4 := e.clk.advance()
	if _, err := e.s.SetState(e.ctx, bob, "phone", storage.StateRevoked, "enroll"); err != nil {
		e.t.Fatal(err)
	}
	want = append(want, entry(t4, "enroll", storage.ActionRevoke, b))

	// Failed and no-op calls write nothing.
	e.clk.advance()
	e.s.AddCert(e.ctx, newCert(bob, ""), storage.AddOptions{Actor: "x"})
	e.s.SetState(e.ctx, alice, "nosuch", storage.StateRevoked, "x")
	e.s.SetStateByFingerprint(e.ctx, a.Fingerprint, storage.StateDisabled, "x")
	e.s.SetStateByFingerprint(e.ctx, a.Fingerprint, storage.StateRevoked, "x")

	reverse(want)
	checkAudit(e.t, e.audit("", 0), want)
}

func reverse(es []storage.AuditEntry) {
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
}

func testAuditLimitAndAccount(e *env) {
	for i := range 6 {
		e.addNew(alice, fmt.Sprintf("a%d", i))
		e.clk.advance()
		e.addNew(bob, fmt.Sprintf("b%d", i))
		e.clk.advance()
	}
	all := e.audit("", 0)
	if len(all) != 12 {
		e.t.Fatalf("Audit(all): %d entries, want 12", len(all))
	}
	for _, tc := range []struct {
		account string
		limit   int
		want    []string // names, newest first
	}{
		{"", 3, []string{"b5", "a5", "b4"}},
		{"", -1, nil}, // all 12
		{"", 100, nil},
		{alice, 0, []string{"a5", "a4", "a3", "a2", "a1", "a0"}},
		{alice, 2, []string{"a5", "a4"}},
		{bob, 1, []string{"b5"}},
		{"carol@example.org", 0, []string{}},
		{"Alice@example.org", 0, []string{}},
	} {
		got := e.audit(tc.account, tc.limit)
		want := tc.want
		if want == nil {
			want = make([]string, len(all))
			for i, a := range all {
				want[i] = a.Name
			}
		}
		if len(got) != len(want) {
			e.t.Fatalf("Audit(%q, %d): %d entries, want %d", tc.account, tc.limit, len(got), len(want))
		}
		for i := range got {
			if got[i].Name != want[i] || (tc.account != "" && got[i].Account != tc.account) {
				e.t.Fatalf("Audit(%q, %d)[%d] = %s/%s, want %s", tc.account, tc.limit, i, got[i].Account, got[i].Name, want[i])
			}
			if i > 0 && !got[i].Time.Before(got[i-1].Time) {
				e.t.Fatalf("Audit(%q, %d): not newest first at %d", tc.account, tc.limit, i)
			}
		}
	}
}

func testWalkCerts(e *env) {
	if got := e.walk(); len(got) != 0 {
		e.t.Fatalf("WalkCerts on an empty store visited %d records", len(got))
	}
	var want []*storage.Cert
	for i := range 7 {
		want = append(want, e.addNew([]string{alice, bob, "carol@example.org"}[i%3], fmt.Sprintf("c%d", i)))
	}
	e.setState(alice, "c0", storage.StateDisabled)
	e.setState(bob, "c1", storage.StateRevoked)
	want[0] = e.find(want[0].Fingerprint)
	want[1] = e.find(want[1].Fingerprint)
	got := e.walk()
	if len(got) != len(want) {
		e.t.Fatalf("WalkCerts visited %d records, want %d", len(got), len(want))
	}
	for i := range got {
		checkCert(e.t, fmt.Sprintf("WalkCerts[%d]", i), got[i], want[i])
		if i > 0 && got[i].ID <= got[i-1].ID {
			e.t.Fatalf("WalkCerts: ID %d after %d, want ID order", got[i].ID, got[i-1].ID)
		}
	}
}

func testWalkCertsStop(e *env) {
	for i := range 10 {
		e.addNew(alice, fmt.Sprintf("c%d", i))
	}
	stop := errors.New("stop here")
	var n int
	err := e.s.WalkCerts(e.ctx, func(*storage.Cert) error {
		n++
		if n == 4 {
			return fmt.Errorf("wrapped: %w", stop)
		}
		return nil
	})
	if !errors.Is(err, stop) {
		e.t.Fatalf("WalkCerts returned %v, want fn's error", err)
	}
	if n != 4 {
		e.t.Fatalf("WalkCerts called fn %d times after it failed on the 4th", n)
	}

	// fn may use the store while walking.
	n = 0
	err = e.s.WalkCerts(e.ctx, func(c *storage.Cert) error {
		n++
		if _, err := e.s.FindCertByFingerprint(e.ctx, c.Fingerprint); err != nil {
			return err
		}
		_, err := e.s.SetStateByFingerprint(e.ctx, c.Fingerprint, storage.StateDisabled, "walker")
		return err
	})
	if err != nil || n != 10 {
		e.t.Fatalf("WalkCerts using the store from fn: %d calls, %v", n, err)
	}
	if got := e.list(alice, storage.StateDisabled); len(got) != 10 {
		e.t.Fatalf("%d records disabled from fn, want 10", len(got))
	}
}

// testAuditSince follows the log by ID: oldest first, after a given ID, at
// most limit entries, and every entry exactly once when read in pages.
func testAuditSince(e *env) {
	if got, err := e.s.AuditSince(e.ctx, 0, 0); err != nil || len(got) != 0 {
		e.t.Fatalf("AuditSince on an empty store: %v, %v", got, err)
	}
	for i := range 5 {
		e.addNew(alice, fmt.Sprintf("s%d", i))
		e.clk.advance()
	}
	all, err := e.s.AuditSince(e.ctx, 0, 0)
	if err != nil || len(all) != 5 {
		e.t.Fatalf("AuditSince(0): %d entries, %v; want 5", len(all), err)
	}
	for i, a := range all {
		if a.Name != fmt.Sprintf("s%d", i) || (i > 0 && a.ID <= all[i-1].ID) {
			e.t.Fatalf("AuditSince(0)[%d] = %+v: want s%d, IDs growing", i, a, i)
		}
	}
	newest := e.audit("", 1)
	if len(newest) != 1 || newest[0].ID != all[4].ID {
		e.t.Fatalf("Audit(\"\", 1) = %+v, want the entry with ID %d", newest, all[4].ID)
	}
	for _, tc := range []struct {
		after int64
		limit int
		want  []string
	}{
		{all[1].ID, 0, []string{"s2", "s3", "s4"}},
		{all[1].ID, 2, []string{"s2", "s3"}},
		{all[4].ID, 0, nil},
		{all[4].ID + 1000, 0, nil},
		{-1, 1, []string{"s0"}},
	} {
		got, err := e.s.AuditSince(e.ctx, tc.after, tc.limit)
		if err != nil {
			e.t.Fatal(err)
		}
		var names []string
		for _, g := range got {
			names = append(names, g.Name)
		}
		if fmt.Sprint(names) != fmt.Sprint(tc.want) {
			e.t.Errorf("AuditSince(%d, %d) = %v, want %v", tc.after, tc.limit, names, tc.want)
		}
	}
	// Paging by the last ID seen reads every entry once.
	var seen []string
	for last := int64(0); ; {
		page, err := e.s.AuditSince(e.ctx, last, 2)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			seen = append(seen, p.Name)
		}
		last = page[len(page)-1].ID
	}
	if fmt.Sprint(seen) != "[s0 s1 s2 s3 s4]" {
		e.t.Errorf("paging read %v", seen)
	}
}
