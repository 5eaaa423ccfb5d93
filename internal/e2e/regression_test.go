package e2e

import (
	"encoding/base64"
	"fmt"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/xep0257"
)

// Regression tests for defects this suite found in other packages.

// Regression (fixed in the Prosody plugin, pre-stanza hook, now in
// plugins/prosody/saslcert_stamp.lib.lua):
// <no-cert-management/> was not enforced for a session's first requests.
//
// The plugin announces a bound certificate session with module:send_iq from
// the resource-bind hook. Prosody 0.12 runs a promise's executor on the next
// timer tick (util/startup.lua: promise.set_nexttick -> timer.add_task(0, f)),
// so the notice leaves after the bind result, and a request the client sends
// right after binding is delegated to the component (module:send, at once)
// before it. xep0257.Handler.mayManage treats a session the registry does not
// know as "logged in otherwise" and lets it manage: a session that logged in
// with a no-cert-management certificate can append (or disable, or revoke) if
// it does so immediately.
func TestIntegrationNoCertManagementFirstRequest(t *testing.T) {
	// Prosody only: the window comes from Prosody's promise timer tick;
	// mod_saslcert for ejabberd stamps each request with how its session
	// logged in, so it has no such window.
	st := newStack(t)
	alice := st.passwordLogin(t, "alice")
	account := st.Register(t, "alice").String()
	kiosk := liveCert(t, account)
	st.mustAppend(t, alice, jid.JID{}, "kiosk", kiosk, true)
	// A client that sends its first request right behind the bind request
	// (in the same TCP write) gets it processed before Prosody's next timer
	// tick, hence before the notice. An ordinary client that waits for the
	// bind result hits the same window less reliably.
	const tries = 10 // stop at the first one accepted
	accepted := 0
	for i := 0; i < tries && accepted == 0; i++ {
		name := fmt.Sprintf("sneaked-in-%d", i)
		raw := st.dialRaw(t, kiosk)
		rawExternal(t, raw, "=")
		bound := rawBind(t, raw, "", `<iq type='set' id='sneak'><append xmlns='`+xep0257.NS+`'><name>`+name+
			`</name><x509cert>`+base64.StdEncoding.EncodeToString(liveCert(t, account).DER)+`</x509cert></append></iq>`)
		reply, err := raw.Await("sneak", stacktest.RawTimeout)
		if err != nil {
			t.Fatalf("try %d: waiting for the reply to <append/>: %v", i+1, err)
		}
		switch reply.Attr("type") {
		case "result":
			accepted++
			t.Errorf("try %d: <append/> from %s, which logged in with a no-cert-management certificate, was accepted", i+1, bound)
		case "error":
			if e := reply.Child("", "error"); e == nil || e.Child(stacktest.NSStanzas, "forbidden") == nil {
				t.Fatalf("try %d: got %s, want forbidden", i+1, reply)
			}
		default:
			t.Fatalf("try %d: got %s", i+1, reply)
		}
	}
	if accepted > 0 {
		t.Logf("alice's certificates now: %v", stacktest.ItemNames(stacktest.Items(t, alice)))
	}
}
