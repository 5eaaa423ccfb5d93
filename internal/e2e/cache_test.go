package e2e

import (
	"slices"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// 13. The plugin's caches (Config.CacheTTL, docs/PLUGIN-PROTOCOL.md): a
// repeated login and a repeated <items/> are answered by Prosody without
// asking the component, and no change is ever served stale: changes made
// through the plugin, made by requests addressed to the component itself
// (which the plugin never sees), and changes made while the component was
// down (behind its back) are all seen by the very next request.
func TestIntegrationPluginCache(t *testing.T) {
	onServers(t, func(t *testing.T, st *stack) {
		alice := st.passwordLogin(t, "alice")
		account := st.Register(t, "alice").String()
		comp := jid.MustParse(st.S.ComponentJID())
		laptop, phone, tablet := st.liveCert(t, account), st.liveCert(t, account), st.liveCert(t, account)
		st.mustAppend(t, alice, jid.JID{}, "laptop", laptop, false)
		lookups := func() int { return strings.Count(st.Comp().Log(), `msg="login allowed"`) }
		requests := func() int { return strings.Count(st.Comp().Log(), `msg="xep0257: done"`) }

		// A second login with the same certificate is decided from the cache.
		before := lookups()
		wantBound(t, st.mustCertLogin(t, account, laptop, ""), account)
		wantBound(t, st.mustCertLogin(t, account, laptop, ""), account)
		if n := lookups() - before; n != 1 {
			t.Fatalf("two logins with one certificate asked the component %d times, want 1", n)
		}
		// A different authzid is a different question for Prosody's plugin.
		// ejabberd resolves the authzid itself and asks mod_saslcert about
		// the account it picked, the same account here: the same question,
		// answered from the cache.
		wantLookups := 2
		if st.onEjabberd() {
			wantLookups = 1
		}
		wantBound(t, st.mustCertLogin(t, account, laptop, account), account)
		if n := lookups() - before; n != wantLookups {
			t.Fatalf("a login with an authzid asked the component %d times in all, want %d", n, wantLookups)
		}

		// <items/> twice: the second answer comes from the cache.
		before = requests()
		if got := stacktest.ItemNames(stacktest.Items(t, alice)); !slices.Equal(got, []string{"laptop"}) {
			t.Fatalf("items: %v", got)
		}
		if got := stacktest.ItemNames(stacktest.Items(t, alice)); !slices.Equal(got, []string{"laptop"}) {
			t.Fatalf("items again: %v", got)
		}
		// mod_saslcert for ejabberd caches login answers only: there every
		// <items/> reaches the component.
		if n := requests() - before; n != 1 && !st.onEjabberd() {
			t.Fatalf("two <items/> reached the component %d times, want 1", n)
		}

		// An append addressed to the component itself never passes the plugin's
		// forwarding; <changed/> still reaches the plugin before it is
		// acknowledged, so the next <items/> lists it.
		st.mustAppend(t, alice, comp, "phone", phone, false)
		if got := stacktest.ItemNames(stacktest.Items(t, alice)); !slices.Equal(got, []string{"laptop", "phone"}) {
			t.Fatalf("items after an append to the component: %v", got)
		}
		// Same for a disable: the cached login of laptop is forgotten.
		if err := xep0257.DisableCert(stepCtx(t), alice.Session, comp, "laptop"); err != nil {
			t.Fatalf("disable at the component: %v", err)
		}
		c, err := st.certLogin(t, account, laptop, "")
		wantAuthFailure(t, c, err, "not-authorized")
		c, err = st.certLogin(t, account, laptop, account)
		wantAuthFailure(t, c, err, "not-authorized")
		if got := stacktest.ItemNames(stacktest.Items(t, alice)); !slices.Equal(got, []string{"phone"}) {
			t.Fatalf("items after a disable at the component: %v", got)
		}

		// Cache phone's login and the list, then change the store while the
		// component is down: the plugin forgot everything when the component's
		// connection ended, so nothing stale is served after it is back.
		st.mustAppend(t, alice, jid.JID{}, "tablet", tablet, false)
		wantBound(t, st.mustCertLogin(t, account, phone, ""), account)
		wantBound(t, st.mustCertLogin(t, account, phone, ""), account)
		if got := stacktest.ItemNames(stacktest.Items(t, alice)); !slices.Equal(got, []string{"phone", "tablet"}) {
			t.Fatalf("items: %v", got)
		}
		if err := st.Comp().Stop(); err != nil {
			t.Fatalf("stopping the component: %v", err)
		}
		// Nothing is decided from the cache while the component is away.
		c, err = st.certLogin(t, account, phone, "")
		wantAuthFailure(t, c, err, "temporary-auth-failure")
		ctx := stepCtx(t)
		db, err := st.OpenStore(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SetState(ctx, account, "phone", storage.StateRevoked, "test (behind the component's back)"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		st.StartComponent(t)
		c, err = st.certLogin(t, account, phone, "")
		wantAuthFailure(t, c, err, "not-authorized")
		if got := stacktest.ItemNames(stacktest.Items(t, alice)); !slices.Equal(got, []string{"tablet"}) {
			t.Fatalf("items after a change while the component was down: %v", got)
		}
	})
}
