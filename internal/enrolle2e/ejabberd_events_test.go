package enrolle2e

import (
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/ejabberdtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// TestEjabberdAccountEventsSurviveRestart: an account deleted and
// registered again (a new owner of the name) while the component is away,
// then an ejabberd restart before the component is back. mod_saslcert must
// still deliver <account-deleted/> and then <account-created/>, in that
// order, from its queue in Mnesia: the reconciliation cannot repair a lost
// deletion (the name exists again), so with the queue in memory only, the
// previous owner's certificate would log in to the new owner's account.
func TestEjabberdAccountEventsSurviveRestart(t *testing.T) {
	st := newEjabberdStack(t)
	carol := st.Register(t, "carol")
	c := st.issueOther(t, certtest.Options{XMPPAddrs: []string{carol.String()}})
	st.AddCert(t, carol.String(), "carol's", c, false)
	s, err := st.certLogin(t, carol, tlsCert(chainOf(c, st.other.Cert), c.Key))
	if err != nil {
		t.Fatalf("login of the first owner: %v", err)
	}
	s.Close()

	if err := st.Comp().Stop(); err != nil {
		t.Fatal(err)
	}
	if out, err := st.S.DeleteAccount(carol.String()); err != nil {
		t.Fatalf("ejabberdctl unregister: %v\n%s", err, out)
	}
	if out, err := st.S.AddAccount("carol", "another owner's password"); err != nil { // someone else takes the name
		t.Fatalf("ejabberdctl register: %v\n%s", err, out)
	}
	t.Log("with the component stopped: carol@ deleted and registered again (two queued account events)")
	st.S.Restart(t)
	t.Log("ejabberd restarted before the component came back")
	st.startServe(t, st.config)

	for deadline := time.Now().Add(eventTimeout); st.storedRecord(t, c.DER).State != storage.StateRevoked; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first owner's certificate is still %s %v after the component came back; want revoked by the queued <account-deleted/>",
				st.storedRecord(t, c.DER).State, eventTimeout)
		}
	}
	ae := st.mustRefuse(t, carol, tlsCert(chainOf(c, st.other.Cert), c.Key), "not-authorized")
	t.Logf("the queued <account-deleted/> survived the restart: the first owner's certificate is revoked and refused <%s/> %q", ae.Condition, ae.Text)

	// The queued <account-created/> lifted the tombstone the deletion left:
	// the new owner can add a certificate of their own and log in with it.
	n := st.issueOther(t, certtest.Options{XMPPAddrs: []string{carol.String()}})
	for deadline := time.Now().Add(eventTimeout); ; time.Sleep(100 * time.Millisecond) {
		_, err := st.TryAddCerts([]stacktest.Seed{{Account: carol.String(), Name: "new carol's", DER: n.DER}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new owner cannot add a certificate %v after the component came back: %v", eventTimeout, err)
		}
	}
	s, err = st.certLogin(t, carol, tlsCert(chainOf(n, st.other.Cert), n.Key))
	if err != nil {
		t.Fatalf("login of the new owner with a certificate of their own: %v", err)
	}
	s.Close()
	t.Log("then <account-created/>: the new owner adds a certificate and logs in with it")
}

// TestEjabberdDisableKeepsSessionBoundBeforeIt: a certificate session bound
// just before its certificate is disabled stays (XEP-0257: a disable keeps
// live sessions). The component closes a session whose bound notice it
// reads after the plugin acknowledged the disable's <changed/> (it logged
// in on an answer from before the change: component/boundorder.go), so the
// module must send its queued session notices before that acknowledgement.
// With notice_delay 3 s the bound notice is still queued when the disable
// comes: before the fix the component closed the session.
func TestEjabberdDisableKeepsSessionBoundBeforeIt(t *testing.T) {
	st := newEjabberdStackWith(t, func(o *ejabberdtest.Options) { o.NoticeDelay = 3 * time.Second })
	alice := st.Register(t, "alice")
	pw := st.passwordLogin(t, "alice")
	c := st.issueOther(t, certtest.Options{XMPPAddrs: []string{alice.String()}})
	st.AddCert(t, alice.String(), "kiosk", c, false)
	live, err := st.certLogin(t, alice, tlsCert(chainOf(c, st.other.Cert), c.Key))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	ctx, cancel := deadline()
	defer cancel()
	if err := xep0257.DisableCert(ctx, pw.Session, jid.JID{}, "kiosk"); err != nil {
		t.Fatalf("XEP-0257 disable: %v", err)
	}
	t.Log("disabled the certificate while the bound notice of its session waited for its batch (notice_delay 3 s)")
	select {
	case err := <-live.Done():
		t.Fatalf("the session bound before the disable was closed: %v", err)
	case <-time.After(5 * time.Second):
	}
	if got := stacktest.Items(t, live); len(got) != 0 {
		t.Fatalf("items from the kept session: %v, want none active", stacktest.ItemNames(got))
	}
	ae := st.mustRefuse(t, alice, tlsCert(chainOf(c, st.other.Cert), c.Key), "not-authorized")
	t.Logf("5 s later the session is still open and answers; a new login is refused <%s/> %q", ae.Condition, ae.Text)
}
