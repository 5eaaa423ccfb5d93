// Package storetest is the contract suite every storage.Store backend must
// pass. A backend's test calls Run with a function that opens a fresh, empty
// store:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) storage.Store {
//			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "certs.db"), sqlite.Options{Now: now})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
//
// Durability (a nil error means the change survives a kill -9 of the writer)
// is checked by Kill9, which runs a writer in a child process (Writer); a
// backend wires it with a Durability value (kill.go).
//
// The suite drives the store's clock through now. Its readings are whole
// microseconds in UTC, so a backend that keeps at least microsecond precision
// must return Created, Changed and audit times equal (time.Equal) to them.
// Certificates are random bytes, or bytes shaped like a certificate for a
// key (newKeyCert): a store parses DER no further than storage.KeyHashOf. Close may be
// called twice (by a subtest and by the cleanup open registered); the second
// call must not panic.
//
// Beyond the letter of storage.Store, the suite pins down three points the
// interface leaves open, so that backends agree:
//   - a record that both repeats a stored fingerprint and takes an active
//     name gets ErrDuplicate (the fingerprint is checked first), and an add
//     that breaks uniqueness gets ErrDuplicate or ErrNameTaken rather than
//     ErrLimit;
//   - every method called with a cancelled or expired context returns an
//     error wrapping context.Canceled or context.DeadlineExceeded and changes
//     nothing;
//   - a failed call returns a nil record, and the store keeps its own copies:
//     changing a record passed to AddCert, or one returned, changes nothing
//     stored.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// Run runs the contract suite against the stores open returns, one fresh
// store per subtest.
func Run(t *testing.T, open func(t *testing.T, now func() time.Time) storage.Store) {
	tests := []struct {
		name string
		fn   func(e *env)
	}{
		{"AddFind", testAddFind},
		{"RoundTrip", testRoundTrip},
		{"Copies", testCopies},
		{"FindNotFound", testFindNotFound},
		{"ListCerts", testListCerts},
		{"ListCertsStates", testListCertsStates},
		{"NameTaken", testNameTaken},
		{"NameFreed", testNameFreed},
		{"Duplicate", testDuplicate},
		{"Limit", testLimit},
		{"Invalid", testInvalid},
		{"SetState", testSetState},
		{"SetStateErrors", testSetStateErrors},
		{"SetStateByFingerprint", testSetStateByFingerprint},
		{"SetStateByFingerprintErrors", testSetStateByFingerprintErrors},
		{"History", testHistory},
		{"Times", testTimes},
		{"Audit", testAudit},
		{"AuditLimitAndAccount", testAuditLimitAndAccount},
		{"AuditSince", testAuditSince},
		{"RevokeAccount", testRevokeAccount},
		{"RevokeAccountNoTombstone", testRevokeAccountNoTombstone},
		{"Tombstone", testTombstone},
		{"Accounts", testAccounts},
		{"TombstoneErrorOrder", testTombstoneErrorOrder},
		{"ConcurrentRevokeAccount", testConcurrentRevokeAccount},
		{"PassedOn", testPassedOn},
		{"HistoryLimit", testHistoryLimit},
		{"Prune", testPrune},
		{"WalkCerts", testWalkCerts},
		{"WalkCertsStop", testWalkCertsStop},
		{"Close", testClose},
		{"Canceled", testCanceled},
		{"ConcurrentAdds", testConcurrentAdds},
		{"ConcurrentSameName", testConcurrentSameName},
		{"ConcurrentSameFingerprint", testConcurrentSameFingerprint},
		{"ConcurrentLimit", testConcurrentLimit},
		{"ConcurrentSetState", testConcurrentSetState},
		{"RevokeKey", testRevokeKey},
		{"RevokeKeyBySetState", testRevokeKeyBySetState},
		{"Renews", testRenews},
		{"ConcurrentRevokeRenew", testConcurrentRevokeRenew},
		{"SearchCerts", testSearchCerts},
		{"SearchAudit", testSearchAudit},
		{"Idempotency", testIdempotency},
		{"IdempotencyConcurrent", testIdempotencyConcurrent},
		{"Optional", testOptional},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: start}
			tc.fn(&env{t: t, ctx: t.Context(), clk: clk, s: open(t, clk.Now)})
		})
	}
}

// start is the suite clock's first reading.
var start = time.Date(2026, 11, 22, 12, 0, 0, 123456000, time.UTC)

// clock is a settable clock with microsecond readings.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// advance moves the clock on by a second and a microsecond and returns the
// new reading.
func (c *clock) advance() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second + time.Microsecond)
	return c.t
}

// env is one subtest's store and clock.
type env struct {
	t   *testing.T
	ctx context.Context
	clk *clock
	s   storage.Store
}

// newCert returns a valid record (not yet stored) with random DER.
func newCert(account, name string) *storage.Cert {
	der := make([]byte, 300)
	rand.Read(der)
	der[0], der[1], der[2], der[3] = 0x30, 0x82, 0x01, 0x28 // looks like a SEQUENCE; nobody parses it
	return &storage.Cert{
		Account:     account,
		Name:        name,
		DER:         der,
		Fingerprint: storage.FingerprintOf(der),
		NotBefore:   time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:    time.Date(2027, 11, 1, 0, 0, 0, 0, time.UTC),
		Issuer:      "CN=" + account,
		Source:      storage.SourceUpload,
	}
}

// add stores c or fails the test.
func (e *env) add(c *storage.Cert, opts storage.AddOptions) *storage.Cert {
	e.t.Helper()
	if opts.Actor == "" {
		opts.Actor = "storetest"
	}
	if err := e.s.AddCert(e.ctx, c, opts); err != nil {
		e.t.Fatalf("AddCert(%s, %q): %v", c.Account, c.Name, err)
	}
	return c
}

// addNew stores a fresh record for account and name.
func (e *env) addNew(account, name string) *storage.Cert {
	e.t.Helper()
	return e.add(newCert(account, name), storage.AddOptions{})
}

func (e *env) find(fp storage.Fingerprint) *storage.Cert {
	e.t.Helper()
	c, err := e.s.FindCertByFingerprint(e.ctx, fp)
	if err != nil {
		e.t.Fatalf("FindCertByFingerprint(%s): %v", fp, err)
	}
	return c
}

func (e *env) list(account string, states ...storage.State) []*storage.Cert {
	e.t.Helper()
	cs, err := e.s.ListCerts(e.ctx, account, states...)
	if err != nil {
		e.t.Fatalf("ListCerts(%s, %v): %v", account, states, err)
	}
	return cs
}

func (e *env) audit(account string, limit int) []storage.AuditEntry {
	e.t.Helper()
	es, err := e.s.Audit(e.ctx, account, limit)
	if err != nil {
		e.t.Fatalf("Audit(%q, %d): %v", account, limit, err)
	}
	return es
}

func (e *env) walk() []*storage.Cert {
	e.t.Helper()
	var all []*storage.Cert
	if err := e.s.WalkCerts(e.ctx, func(c *storage.Cert) error {
		all = append(all, c)
		return nil
	}); err != nil {
		e.t.Fatalf("WalkCerts: %v", err)
	}
	return all
}

func (e *env) setState(account, name string, to storage.State) *storage.Cert {
	e.t.Helper()
	c, err := e.s.SetState(e.ctx, account, name, to, "storetest")
	if err != nil {
		e.t.Fatalf("SetState(%s, %q, %s): %v", account, name, to, err)
	}
	return c
}

// snapshot is everything a store holds, to show that a failed call changed
// nothing.
type snapshot struct {
	certs      []*storage.Cert
	audit      []storage.AuditEntry
	tombstones []string
}

func (e *env) snapshot() snapshot {
	e.t.Helper()
	return snapshot{certs: e.walk(), audit: e.audit("", 0), tombstones: e.tombstones()}
}

func (e *env) tombstones() []string {
	e.t.Helper()
	ts, err := e.s.Tombstones(e.ctx)
	if err != nil {
		e.t.Fatalf("Tombstones: %v", err)
	}
	return ts
}

func (e *env) unchanged(before snapshot, what string) {
	e.t.Helper()
	after := e.snapshot()
	if len(after.certs) != len(before.certs) || len(after.audit) != len(before.audit) {
		e.t.Fatalf("%s changed the store: %d records, %d audit entries before; %d, %d after",
			what, len(before.certs), len(before.audit), len(after.certs), len(after.audit))
	}
	if strings.Join(after.tombstones, "\n") != strings.Join(before.tombstones, "\n") {
		e.t.Fatalf("%s changed the tombstones: %q before, %q after", what, before.tombstones, after.tombstones)
	}
	for i := range before.certs {
		if d := diffCert(after.certs[i], before.certs[i]); d != "" {
			e.t.Fatalf("%s changed record %d: %s", what, before.certs[i].ID, d)
		}
	}
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// checkCert fails unless got and want agree in every field.
func checkCert(t *testing.T, what string, got, want *storage.Cert) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil record", what)
	}
	if d := diffCert(got, want); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

func diffCert(got, want *storage.Cert) string {
	var d []string
	f := func(name string, g, w any) { d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w)) }
	if got.ID != want.ID {
		f("ID", got.ID, want.ID)
	}
	if got.Account != want.Account {
		f("Account", got.Account, want.Account)
	}
	if got.Name != want.Name {
		f("Name", got.Name, want.Name)
	}
	if !bytes.Equal(got.DER, want.DER) {
		f("DER", fmt.Sprintf("%d bytes %.8x...", len(got.DER), got.DER), fmt.Sprintf("%d bytes %.8x...", len(want.DER), want.DER))
	}
	if got.Fingerprint != want.Fingerprint {
		f("Fingerprint", got.Fingerprint, want.Fingerprint)
	}
	if got.State != want.State {
		f("State", got.State, want.State)
	}
	if got.NoCertManagement != want.NoCertManagement {
		f("NoCertManagement", got.NoCertManagement, want.NoCertManagement)
	}
	if got.Resource != want.Resource {
		f("Resource", got.Resource, want.Resource)
	}
	for _, tt := range []struct {
		name      string
		got, want time.Time
	}{
		{"NotBefore", got.NotBefore, want.NotBefore},
		{"NotAfter", got.NotAfter, want.NotAfter},
		{"Created", got.Created, want.Created},
		{"Changed", got.Changed, want.Changed},
	} {
		if !tt.got.Equal(tt.want) {
			f(tt.name, tt.got, tt.want)
		}
	}
	if got.Issuer != want.Issuer {
		f("Issuer", got.Issuer, want.Issuer)
	}
	if got.Source != want.Source {
		f("Source", got.Source, want.Source)
	}
	return strings.Join(d, "; ")
}

// checkAudit fails unless got matches want in every field but ID, and IDs
// decrease (newest first).
func checkAudit(t *testing.T, got, want []storage.AuditEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("audit: %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Actor != w.Actor || g.Action != w.Action || g.Account != w.Account || g.Name != w.Name ||
			g.Fingerprint != w.Fingerprint || !g.Time.Equal(w.Time) {
			t.Fatalf("audit[%d] = %+v, want %+v", i, g, w)
		}
		if i > 0 && g.ID >= got[i-1].ID {
			t.Fatalf("audit[%d].ID = %d after %d: not newest first", i, g.ID, got[i-1].ID)
		}
	}
}

// entry is the audit entry expected for action on c by actor at tm.
func entry(tm time.Time, actor string, action storage.Action, c *storage.Cert) storage.AuditEntry {
	return storage.AuditEntry{Time: tm, Actor: actor, Action: action, Account: c.Account, Name: c.Name, Fingerprint: c.Fingerprint}
}
