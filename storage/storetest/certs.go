package storetest

import (
	"fmt"
	"time"

	"github.com/saslcert/saslcert/storage"
)

const (
	alice = "alice@example.org"
	bob   = "bob@example.net"
)

func testAddFind(e *env) {
	c := newCert(alice, "laptop")
	want := *c
	now := e.clk.Now()
	e.add(c, storage.AddOptions{Actor: "alice@example.org/laptop"})
	if c.ID <= 0 {
		e.t.Fatalf("AddCert set ID %d, want > 0", c.ID)
	}
	want.ID, want.State, want.Created, want.Changed = c.ID, storage.StateActive, now, now
	checkCert(e.t, "record after AddCert", c, &want)
	checkCert(e.t, "FindCertByFingerprint", e.find(c.Fingerprint), &want)

	d := e.addNew(alice, "phone")
	if d.ID == c.ID {
		e.t.Fatalf("two records got ID %d", d.ID)
	}
}

// testRoundTrip stores edge values of every field and reads them back.
func testRoundTrip(e *env) {
	for i, c := range []*storage.Cert{
		func() *storage.Cert {
			c := newCert(alice, "edge: ünïcödé name / with spaces")
			c.NoCertManagement = true
			c.Resource = "laptop"
			c.Source = storage.SourceEnrolled
			c.Issuer = "CN=Example CA,O=Example,C=DE"
			c.NotBefore = time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)
			c.NotAfter = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC) // RFC 5280 "no expiry"
			return c
		}(),
		func() *storage.Cert {
			c := newCert("bob@example.net", "x")
			c.DER = make([]byte, 16384) // large, mostly zero bytes
			c.DER[0] = 0x30
			c.Fingerprint = storage.FingerprintOf(c.DER)
			c.Issuer = ""
			c.NotBefore = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
			return c
		}(),
	} {
		want := *c
		e.add(c, storage.AddOptions{})
		want.ID, want.State, want.Created, want.Changed = c.ID, storage.StateActive, c.Created, c.Changed
		checkCert(e.t, fmt.Sprintf("record %d", i), e.find(c.Fingerprint), &want)
	}
}

// testCopies checks that the store keeps its own copy of DER and hands out
// records that do not alias its state.
func testCopies(e *env) {
	c := e.addNew(alice, "laptop")
	der := append([]byte(nil), c.DER...)
	c.DER[10] ^= 0xff
	got := e.find(c.Fingerprint)
	if string(got.DER) != string(der) {
		e.t.Fatal("changing the caller's DER after AddCert changed the stored DER")
	}
	got.DER[10] ^= 0xff
	got.Name = "changed"
	if again := e.find(c.Fingerprint); string(again.DER) != string(der) || again.Name != "laptop" {
		e.t.Fatal("changing a returned record changed the stored one")
	}
}

func testFindNotFound(e *env) {
	e.addNew(alice, "laptop")
	_, err := e.s.FindCertByFingerprint(e.ctx, storage.FingerprintOf([]byte("not stored")))
	wantErr(e.t, "FindCertByFingerprint(unknown)", err, storage.ErrNotFound)
}

func testListCerts(e *env) {
	if got := e.list(alice); len(got) != 0 {
		e.t.Fatalf("ListCerts on an empty store: %d records", len(got))
	}
	var want []*storage.Cert
	for i := range 5 {
		want = append(want, e.addNew(alice, fmt.Sprintf("c%d", i)))
		e.addNew(bob, fmt.Sprintf("c%d", i))
		e.clk.advance()
	}
	got := e.list(alice)
	if len(got) != len(want) {
		e.t.Fatalf("ListCerts: %d records, want %d", len(got), len(want))
	}
	for i := range got {
		checkCert(e.t, fmt.Sprintf("ListCerts[%d] (oldest first)", i), got[i], want[i])
	}
	if got := e.list("carol@example.org"); len(got) != 0 {
		e.t.Fatalf("ListCerts for an account without records: %d records", len(got))
	}
	// Accounts are compared as given.
	if got := e.list("Alice@example.org"); len(got) != 0 {
		e.t.Fatalf("ListCerts(Alice@...) found %d records of alice@...", len(got))
	}
}

func testListCertsStates(e *env) {
	a := e.addNew(alice, "a")
	d := e.addNew(alice, "d")
	r := e.addNew(alice, "r")
	e.setState(alice, "d", storage.StateDisabled)
	e.setState(alice, "r", storage.StateRevoked)
	for _, tc := range []struct {
		states []storage.State
		want   []*storage.Cert
	}{
		{nil, []*storage.Cert{a, d, r}},
		{[]storage.State{storage.StateActive}, []*storage.Cert{a}},
		{[]storage.State{storage.StateDisabled}, []*storage.Cert{d}},
		{[]storage.State{storage.StateRevoked}, []*storage.Cert{r}},
		{[]storage.State{storage.StateActive, storage.StateRevoked}, []*storage.Cert{a, r}},
		{[]storage.State{storage.StateRevoked, storage.StateActive, storage.StateRevoked}, []*storage.Cert{a, r}},
		{[]storage.State{storage.StateActive, storage.StateDisabled, storage.StateRevoked}, []*storage.Cert{a, d, r}},
		{[]storage.State{"bogus"}, nil},
	} {
		got := e.list(alice, tc.states...)
		if len(got) != len(tc.want) {
			e.t.Fatalf("ListCerts(%v): %d records, want %d", tc.states, len(got), len(tc.want))
		}
		for i := range got {
			if got[i].ID != tc.want[i].ID {
				e.t.Fatalf("ListCerts(%v)[%d] = %q, want %q", tc.states, i, got[i].Name, tc.want[i].Name)
			}
		}
	}
}

func testNameTaken(e *env) {
	e.addNew(alice, "laptop")
	before := e.snapshot()
	err := e.s.AddCert(e.ctx, newCert(alice, "laptop"), storage.AddOptions{})
	wantErr(e.t, "AddCert(same account, same name)", err, storage.ErrNameTaken)
	e.unchanged(before, "a refused AddCert")
	// Names are per account, and compared exactly.
	e.addNew(bob, "laptop")
	e.addNew(alice, "Laptop")
}

// testNameFreed checks that disabling or revoking frees the name, and that
// the freed name can be taken and freed again.
func testNameFreed(e *env) {
	for _, to := range []storage.State{storage.StateDisabled, storage.StateRevoked, storage.StateDisabled} {
		old := e.addNew(alice, "laptop")
		e.setState(alice, "laptop", to)
		fresh := e.addNew(alice, "laptop")
		if got := e.find(old.Fingerprint); got.State != to {
			e.t.Fatalf("old record state %s, want %s", got.State, to)
		}
		if got := e.list(alice, storage.StateActive); len(got) != 1 || got[0].ID != fresh.ID {
			e.t.Fatalf("active records after re-adding the name: %v", got)
		}
		e.setState(alice, "laptop", storage.StateRevoked)
	}
	if got := e.list(alice); len(got) != 6 {
		e.t.Fatalf("%d records, want 6 (history is kept)", len(got))
	}
}

func testDuplicate(e *env) {
	for _, state := range []storage.State{storage.StateActive, storage.StateDisabled, storage.StateRevoked} {
		c := e.addNew(alice, "dup-"+string(state))
		if state != storage.StateActive {
			e.setState(alice, c.Name, state)
		}
		for _, tc := range []struct{ account, name string }{
			{alice, c.Name},        // same everything
			{alice, "other-name"},  // same account
			{bob, "dup-elsewhere"}, // another account
		} {
			before := e.snapshot()
			d := newCert(tc.account, tc.name)
			d.DER, d.Fingerprint = append([]byte(nil), c.DER...), c.Fingerprint
			err := e.s.AddCert(e.ctx, d, storage.AddOptions{})
			wantErr(e.t, fmt.Sprintf("AddCert(%s record's fingerprint as %s/%s)", state, tc.account, tc.name), err, storage.ErrDuplicate)
			e.unchanged(before, "a refused AddCert")
		}
	}
}

func testLimit(e *env) {
	opts := storage.AddOptions{MaxActive: 2}
	e.add(newCert(alice, "a"), opts)
	e.add(newCert(alice, "b"), opts)
	before := e.snapshot()
	err := e.s.AddCert(e.ctx, newCert(alice, "c"), opts)
	wantErr(e.t, "third AddCert with MaxActive 2", err, storage.ErrLimit)
	// At the limit, uniqueness errors win.
	err = e.s.AddCert(e.ctx, newCert(alice, "a"), opts)
	wantErr(e.t, "AddCert of a taken name at the limit", err, storage.ErrNameTaken)
	dup := newCert(alice, "c")
	dup.DER, dup.Fingerprint = e.list(alice)[0].DER, e.list(alice)[0].Fingerprint
	err = e.s.AddCert(e.ctx, dup, opts)
	wantErr(e.t, "AddCert of a stored certificate at the limit", err, storage.ErrDuplicate)
	e.unchanged(before, "refused AddCerts")

	// Other accounts have their own count; no limit means no limit.
	e.add(newCert(bob, "a"), opts)
	e.add(newCert(alice, "c"), storage.AddOptions{})
	e.add(newCert(alice, "d"), storage.AddOptions{MaxActive: 0})
	e.add(newCert(alice, "e"), storage.AddOptions{MaxActive: -1})
	err = e.s.AddCert(e.ctx, newCert(alice, "f"), storage.AddOptions{MaxActive: 5})
	wantErr(e.t, "AddCert beyond MaxActive 5", err, storage.ErrLimit)

	// Only active records count.
	for _, n := range []string{"a", "b", "c"} {
		e.setState(alice, n, storage.StateDisabled)
	}
	e.setState(alice, "d", storage.StateRevoked)
	e.add(newCert(alice, "f"), storage.AddOptions{MaxActive: 2})
	err = e.s.AddCert(e.ctx, newCert(alice, "g"), storage.AddOptions{MaxActive: 2})
	wantErr(e.t, "AddCert beyond MaxActive 2 with 2 active", err, storage.ErrLimit)
	e.add(newCert(alice, "g"), storage.AddOptions{MaxActive: 3})
}

func testInvalid(e *env) {
	e.addNew(alice, "existing")
	for _, tc := range []struct {
		name string
		c    func() *storage.Cert
	}{
		{"nil", func() *storage.Cert { return nil }},
		{"empty account", func() *storage.Cert { return newCert("", "laptop") }},
		{"empty name", func() *storage.Cert { return newCert(alice, "") }},
		{"empty DER", func() *storage.Cert {
			c := newCert(alice, "laptop")
			c.DER = nil
			c.Fingerprint = storage.FingerprintOf(nil)
			return c
		}},
		{"fingerprint mismatch", func() *storage.Cert {
			c := newCert(alice, "laptop")
			c.Fingerprint[0] ^= 1
			return c
		}},
		{"zero fingerprint", func() *storage.Cert {
			c := newCert(alice, "laptop")
			c.Fingerprint = storage.Fingerprint{}
			return c
		}},
		{"unknown source", func() *storage.Cert {
			c := newCert(alice, "laptop")
			c.Source = "stolen"
			return c
		}},
		{"empty source", func() *storage.Cert {
			c := newCert(alice, "laptop")
			c.Source = ""
			return c
		}},
	} {
		before := e.snapshot()
		err := e.s.AddCert(e.ctx, tc.c(), storage.AddOptions{})
		wantErr(e.t, "AddCert("+tc.name+")", err, storage.ErrInvalid)
		e.unchanged(before, "AddCert("+tc.name+")")
	}
}
