package component

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage"
)

func accountXML(name, account string) string {
	return fmt.Sprintf("<%s xmlns='%s' jid='%s'/>", name, NSPlugin, account)
}

// TestAccountDeletedAndCreated: <account-deleted/> revokes the account's
// certificates and writes its tombstone, so later writes for it are refused
// (not-allowed); <account-created/> lifts it. Malformed notices change
// nothing.
func TestAccountDeletedAndCreated(t *testing.T) {
	e := startEnv(t, nil)
	const alice = "alice@" + domain
	e.appendDirect(t, alice+"/laptop", "laptop", newCert(t, alice).DER, false)

	n := e.fc.roundTrip(t, pluginIQ("d1", "set", domain, accountXML("account-deleted", alice)))
	checkResult(t, n, "d1", domain)
	if got := n.child(NSPlugin, "account-deleted").attr("revoked"); got != "1" {
		t.Errorf("revoked=%q, want 1", got)
	}
	if got := e.activeCerts(t, alice); len(got) != 0 {
		t.Fatalf("%d active certificates after the deletion", len(got))
	}
	late := newCert(t, alice)
	n = e.fc.roundTrip(t, direct("late", "set", alice+"/laptop", appendXML("late", late.DER, false)))
	checkError(t, n, "late", "cancel", "not-allowed")

	for _, tc := range []struct {
		name, payload, typ, cond string
	}{
		{"no jid", "<account-created xmlns='" + NSPlugin + "'/>", "modify", "bad-request"},
		{"full jid", accountXML("account-created", alice+"/r"), "modify", "bad-request"},
		{"domain only", accountXML("account-created", domain), "modify", "bad-request"},
		{"other domain", accountXML("account-created", "alice@elsewhere.example"), "auth", "forbidden"},
		{"get", accountXML("account-created", alice), "modify", "bad-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ := "set"
			if tc.name == "get" {
				typ = "get"
			}
			n := e.fc.roundTrip(t, pluginIQ("x", typ, domain, tc.payload))
			checkError(t, n, "x", tc.typ, tc.cond)
		})
	}
	if ts, err := e.db.Tombstones(context.Background()); err != nil || !slices.Equal(ts, []string{alice}) {
		t.Fatalf("tombstones after the malformed notices: %v %v", ts, err)
	}

	n = e.fc.roundTrip(t, pluginIQ("c1", "set", domain, accountXML("account-created", alice)))
	checkResult(t, n, "c1", domain)
	if got := n.child(NSPlugin, "account-created").attr("cleared"); got != "true" {
		t.Errorf("cleared=%q, want true", got)
	}
	e.appendDirect(t, alice+"/laptop", "new", late.DER, false)
}

// TestReconcileAccounts: the reconciliation revokes (and tombstones) only an
// account the plugin says does not exist, leaves those it says exist or
// cannot tell about, and lifts the tombstone of an account that exists
// again.
func TestReconcileAccounts(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.ReconcileInterval = 20 * time.Millisecond })
	acct := func(u string) string { return u + "@" + domain }
	e.srv.mu.Lock()
	e.srv.accounts = map[string]string{acct("bob"): "false", acct("carol"): "unknown", acct("dave"): "true", acct("erin"): "false"}
	e.srv.mu.Unlock()
	ctx := context.Background()
	for _, u := range []string{"alice", "bob", "carol"} {
		c := newCert(t, acct(u))
		rec := &storage.Cert{Account: acct(u), Name: "main", DER: c.DER, Fingerprint: storage.FingerprintOf(c.DER),
			NotBefore: c.Cert.NotBefore, NotAfter: c.Cert.NotAfter, Source: storage.SourceUpload}
		if err := e.db.AddCert(ctx, rec, storage.AddOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.db.RevokeAccount(ctx, acct("dave"), storage.RevokeAccountOptions{Deleted: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ts, err := e.db.Tombstones(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(ts, []string{acct("bob")}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tombstones %v, want only bob's", ts)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for u, want := range map[string]int{"alice": 1, "bob": 0, "carol": 1} {
		if got := len(e.activeCerts(t, acct(u))); got != want {
			t.Errorf("%s has %d active certificates, want %d", u, got, want)
		}
	}
}

// TestInflightWaitBefore: waitBefore(mark) waits for the requests numbered
// below mark, and only for them.
func TestInflightWaitBefore(t *testing.T) {
	var f inflight
	a, b := f.enter(), f.enter()
	mark := f.mark()
	later := f.enter()
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.waitBefore(dead, mark); err == nil {
		t.Fatal("waitBefore returned while earlier requests run")
	}
	f.leave(a)
	if err := f.waitBefore(dead, mark); err == nil {
		t.Fatal("waitBefore returned while an earlier request runs")
	}
	done := make(chan error, 1)
	go func() { done <- f.waitBefore(context.Background(), mark) }()
	f.leave(b)
	if err := <-done; err != nil {
		t.Fatalf("waitBefore: %v", err)
	}
	// The request that started after the mark does not hold it up.
	if err := f.waitBefore(dead, mark); err != nil {
		t.Fatalf("waitBefore with only a later request running: %v", err)
	}
	f.leave(later)
}
