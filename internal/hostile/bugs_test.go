package hostile

// Tests that show bugs found outside this package. They fail until the bug
// is fixed; each names the cause and the fix.

import (
	"context"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/xep0257"
)

// TestIntegrationBugReRegisteredAccountInheritsCertificates shows a bug
// that remains after the fix above: deleting an account leaves its
// certificates active in the component, so when someone else registers the
// same name, the previous owner's certificates log in to the new owner's
// account. The account is deleted inside the server (admin shell
// user:delete, which fires Prosody's "user-deleted" event, as in-band
// unregistration and ad-hoc deletion do). Fix: mod_saslcert.lua hooks
// "user-deleted" and tells the component, which revokes every active
// certificate of the account (a new plugin-protocol notice, e.g.
// <account-deleted jid='…'/>, answered after the revocation is committed).
// prosodyctl deluser runs in its own process and fires the event there, so
// docs/SECURITY.md also tells admins to revoke the certificates
// (saslcert cert revoke) when they delete accounts that way.
func TestIntegrationBugReRegisteredAccountInheritsCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	st := stacktest.Start(t, stacktest.Options{Domain: domain, ExtraModules: []string{"admin_shell"}})
	st.Register(t, "yorick")
	cert := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"yorick@" + domain}})
	c, err := st.LoginPassword(context.Background(), "yorick")
	if err != nil {
		t.Fatal(err)
	}
	if err := xep0257.AppendCert(ctxT(t), c.Session, jid.JID{}, "skull", cert.DER, false); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if out, err := st.S.Prosodyctl("shell", "user:delete('yorick@"+domain+"')"); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("user:delete: %v %s", err, out)
	}
	if r := tryLogin(st, "yorick", cert); r.ok {
		t.Fatalf("the deleted account's certificate logged in as %s", r.bound)
	}
	// Someone else registers the free name.
	st.S.Register(t, "yorick", "another-person")
	if r := tryLogin(st, "yorick", cert); r.ok {
		t.Errorf("BUG: the previous owner's certificate logs in to the re-registered account yorick@%s; "+
			"deleting an account must revoke its certificates (mod_saslcert: hook user-deleted, tell the component)", domain)
	}
}
