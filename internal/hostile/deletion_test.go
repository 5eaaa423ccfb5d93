package hostile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/storage"
)

// Account deletion (issues 10.7 and 16.1): a deleted account's certificates
// must never log in to whoever registers the name next, however the account
// was deleted and whatever was in flight.

// registrationOpts is a stack whose Prosody has in-band registration (and
// unregistration), so that user-registered and user-deleted fire inside the
// server, as they do in production.
func registrationOpts() stacktest.Options {
	return stacktest.Options{Domain: domain, ExtraModules: []string{"register"}, ExtraGlobal: "allow_registration = true"}
}

// registerInBand creates user with XEP-0077 on a fresh unauthenticated
// stream.
func registerInBand(t *testing.T, st *stacktest.Stack, user, password string) {
	t.Helper()
	c, err := st.DialRaw(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustResult(t, c, "set", "", "<query xmlns='jabber:iq:register'><username>"+stacktest.Escape(user)+
		"</username><password>"+stacktest.Escape(password)+"</password></query>")
}

// loginPlain logs user in with its password and binds; closed at cleanup.
func loginPlain(t *testing.T, st *stacktest.Stack, user, password string) *stacktest.RawClient {
	t.Helper()
	c, err := st.DialRaw(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.AuthPlain(user, password); err != nil {
		t.Fatalf("password login as %s: %v", user, err)
	}
	if _, err := c.Bind(""); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds, failing after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after a minute", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveRecords are the account's active or disabled records in the store.
func liveRecords(t *testing.T, st *stacktest.Stack, account string) []string {
	t.Helper()
	var out []string
	for _, r := range st.Certs(t) {
		if r.Account == account && r.State != storage.StateRevoked {
			out = append(out, fmt.Sprintf("%q %s", r.Name, r.State))
		}
	}
	return out
}

// stateOf is the stored state of cert ("" if not stored).
func stateOf(t *testing.T, st *stacktest.Stack, cert *certtest.Cert) storage.State {
	t.Helper()
	fp := storage.FingerprintOf(cert.DER)
	for _, r := range st.Certs(t) {
		if r.Fingerprint == fp {
			return r.State
		}
	}
	return ""
}

// appendEventually appends cert as the new owner, retrying while the
// component has not yet learnt that the name was registered again.
func appendEventually(t *testing.T, c *stacktest.RawClient, name string, cert *certtest.Cert) {
	t.Helper()
	var last string
	waitFor(t, "the new owner's append to succeed", func() bool {
		n, err := c.IQ("set", "", appendXML(name, cert.DER))
		if err != nil {
			t.Fatal(err)
		}
		last = n.Outcome()
		return last == "result"
	})
	_ = last
}

// checkOldCertsDead: none of certs logs in to the account user (now owned
// by someone else) and none is active or disabled in the store.
func checkOldCertsDead(t *testing.T, st *stacktest.Stack, user string, certs []*certtest.Cert) {
	t.Helper()
	account := user + "@" + domain
	for i, cert := range certs {
		if r := tryLogin(st, user, cert); r.ok || r.condition != "not-authorized" {
			t.Errorf("the previous owner's certificate #%d at the re-registered %s: %+v, want not-authorized", i, account, r)
		}
		if s := stateOf(t, st, cert); s != "" && s != storage.StateRevoked {
			t.Errorf("the previous owner's certificate #%d is %s in the store, want revoked (or never stored)", i, s)
		}
	}
}

// TestIntegrationDeleteWithWritesInFlight (issue 16.1): one TCP write of 50
// <disable/> of unknown names, 5 <append/> and the in-band <remove/> of the
// account; someone registers the name again. No certificate of the previous
// owner may be active or log in to the new account: appends that commit
// before the deletion are revoked with it (one transaction), later ones are
// refused by the tombstone. The new owner's registration (user-registered
// -> <account-created/>) lifts the tombstone: the new owner may append.
func TestIntegrationDeleteWithWritesInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	st := stacktest.Start(t, registrationOpts())
	for round := range 3 {
		user := fmt.Sprintf("gertrude%d", round)
		account := user + "@" + domain
		registerInBand(t, st, user, "old-owner-"+user)
		c := loginPlain(t, st, user, "old-owner-"+user)
		first := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{account}})
		mustResult(t, c, "set", "", appendXML("first", first.DER))
		certs := []*certtest.Cert{first}

		var b strings.Builder
		for i := range 50 {
			fmt.Fprintf(&b, "<iq type='set' id='dis%d'>%s</iq>", i, nameOnlyXML("disable", fmt.Sprintf("nosuch-%d", i)))
		}
		for i := range 5 {
			cert := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{account}})
			certs = append(certs, cert)
			fmt.Fprintf(&b, "<iq type='set' id='app%d'>%s</iq>", i, appendXML(fmt.Sprintf("late-%d", i), cert.DER))
		}
		b.WriteString("<iq type='set' id='remove'><query xmlns='jabber:iq:register'><remove/></query></iq>")
		if err := c.Send(b.String()); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitClosed(time.Minute); err != nil {
			t.Fatalf("the deleted account's session: %v", err)
		}
		waitFor(t, "the component to process the deletion", func() bool {
			for _, line := range strings.Split(st.Comp().Log(), "\n") {
				if strings.Contains(line, `msg="account deleted: certificates revoked"`) && strings.Contains(line, " account="+account+" ") {
					return true
				}
			}
			return false
		})
		waitFor(t, "the component to finish the requests in flight", func() bool {
			return st.Comp().InProcess().InFlight() == 0
		})
		stored := 0
		for _, cert := range certs[1:] {
			if stateOf(t, st, cert) != "" {
				stored++
			}
		}
		t.Logf("round %d: %d of the 5 pipelined appends were stored, %d refused", round, stored, 5-stored)
		if live := liveRecords(t, st, account); len(live) != 0 {
			t.Errorf("round %d: after the deletion was acknowledged, %s still has %v", round, account, live)
		}

		registerInBand(t, st, user, "new-owner-"+user)
		checkOldCertsDead(t, st, user, certs)

		owner := loginPlain(t, st, user, "new-owner-"+user)
		mine := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{account}})
		appendEventually(t, owner, "mine", mine)
		if r := tryLogin(st, user, mine); !r.ok || r.bound != account {
			t.Errorf("round %d: the new owner's own certificate: %+v", round, r)
		}
	}
}

// TestIntegrationDeletionWhileComponentDown (issue 10.7): the account is
// deleted in-band while the component is stopped, Prosody restarts, the name
// is registered again, and only then does the component come back. The
// plugin kept the deletion (and the registration after it) in its storage
// and sends them in order: the old certificate is revoked and does not log
// in to the new owner, who may add certificates.
func TestIntegrationDeletionWhileComponentDown(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	st := stacktest.Start(t, registrationOpts())
	const user = "laertes"
	account := user + "@" + domain
	registerInBand(t, st, user, "old-owner")
	c := loginPlain(t, st, user, "old-owner")
	cert := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{account}})
	mustResult(t, c, "set", "", appendXML("sword", cert.DER))
	if r := tryLogin(st, user, cert); !r.ok {
		t.Fatalf("login before the deletion: %+v", r)
	}

	if err := st.Comp().Stop(); err != nil {
		t.Fatal(err)
	}
	mustResult(t, c, "set", "", "<query xmlns='jabber:iq:register'><remove/></query>")
	st.S.Restart(t) // the queue must survive it
	registerInBand(t, st, user, "new-owner")
	if s := stateOf(t, st, cert); s != storage.StateActive {
		t.Fatalf("with the component away the certificate is %s; the test needs it still active", s)
	}

	st.StartComponent(t)
	waitFor(t, "the queued deletion to revoke the certificate", func() bool {
		return stateOf(t, st, cert) == storage.StateRevoked
	})
	checkOldCertsDead(t, st, user, []*certtest.Cert{cert})
	owner := loginPlain(t, st, user, "new-owner")
	appendEventually(t, owner, "mine", stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{account}}))
}

// TestIntegrationDeluserReconciledAtReconnect (issue 10.7): prosodyctl
// deluser runs in its own process and fires no event in the server. The
// component's reconciliation after its next connect finds that the account
// no longer exists and revokes its certificates, so the next owner of the
// name does not inherit them.
func TestIntegrationDeluserReconciledAtReconnect(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	st := stacktest.Start(t, stacktest.Options{Domain: domain})
	const user = "cornelius"
	account := user + "@" + domain
	st.Register(t, user)
	c, err := st.RawLogin(ctxT(t), user)
	if err != nil {
		t.Fatal(err)
	}
	cert := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{account}})
	mustResult(t, c, "set", "", appendXML("ring", cert.DER))
	c.Close()
	// Another account's certificate must survive the reconciliation.
	st.Register(t, "voltemand")
	keep := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"voltemand@" + domain}})
	st.AddCert(t, "voltemand", "keep", keep, false)

	if out, err := st.S.DeleteAccount(account); err != nil {
		t.Fatalf("prosodyctl deluser: %v %s", err, out)
	}
	if err := st.Comp().Stop(); err != nil {
		t.Fatal(err)
	}
	st.StartComponent(t)
	waitFor(t, "the reconciliation to revoke the deleted account's certificate", func() bool {
		return stateOf(t, st, cert) == storage.StateRevoked
	})
	if s := stateOf(t, st, keep); s != storage.StateActive {
		t.Errorf("an existing account's certificate is %s after the reconciliation", s)
	}
	if r := tryLogin(st, "voltemand", keep); !r.ok {
		t.Errorf("an existing account's certificate after the reconciliation: %+v", r)
	}
	st.S.Register(t, user, "another-person")
	checkOldCertsDead(t, st, user, []*certtest.Cert{cert})
}
