package enrolle2e

import (
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/storage"
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
