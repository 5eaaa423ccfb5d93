package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/xep0257"
)

// 1. Upload through delegation (no 'to', as unmodified clients send it) and
// directly to the component JID; an <append/> addressed to another account
// is refused with forbidden and stores nothing.
func TestIntegrationUpload(t *testing.T) {
	onServers(t, func(t *testing.T, st *stack) {
		alice := st.passwordLogin(t, "alice")
		bob := st.passwordLogin(t, "bob")
		aliceJID, bobJID := st.Register(t, "alice"), st.Register(t, "bob")
		comp := jid.MustParse(st.S.ComponentJID())

		viaDelegation := st.liveCert(t, aliceJID.String())
		st.mustAppend(t, alice, jid.JID{}, "delegated", viaDelegation, false)
		direct := st.liveCert(t, aliceJID.String())
		st.mustAppend(t, alice, comp, "direct", direct, false)

		// Both are listed, whichever way one asks.
		for _, to := range []jid.JID{{}, comp, aliceJID} {
			got, err := xep0257.Fetch(stepCtx(t), alice.Session, to)
			if err != nil {
				t.Fatalf("items to %q: %v", to, err)
			}
			byName := map[string][]byte{}
			for _, it := range got {
				byName[it.Name] = it.Cert
			}
			if len(got) != 2 || !slices.Equal(byName["delegated"], viaDelegation.DER) || !slices.Equal(byName["direct"], direct.DER) {
				t.Fatalf("items to %q: %v, want exactly delegated and direct with their DER", to, stacktest.ItemNames(got))
			}
		}

		// Prosody delegates IQs addressed to any account; alice may not append
		// to bob's, not even a certificate naming bob.
		evil := st.liveCert(t, bobJID.String())
		err := xep0257.AppendCert(stepCtx(t), alice.Session, bobJID, "evil", evil.DER, false)
		wantStanzaError(t, err, stanza.Auth, stanza.Forbidden, "your own certificates")
		// Nor list bob's.
		_, err = xep0257.Fetch(stepCtx(t), alice.Session, bobJID)
		wantStanzaError(t, err, stanza.Auth, stanza.Forbidden)

		// Nothing was stored: bob has no certificate, alice still has two, and
		// the certificate does not log in.
		if got := stacktest.Items(t, bob); len(got) != 0 {
			t.Fatalf("bob's items after the refused append: %v", stacktest.ItemNames(got))
		}
		if got := stacktest.Items(t, alice); len(got) != 2 {
			t.Fatalf("alice's items after the refused append: %v", stacktest.ItemNames(got))
		}
		c, err := st.certLogin(t, bobJID.String(), evil, "")
		wantAuthFailure(t, c, err, "not-authorized")
	})
}

// 2. <items/> lists <users><resource/></users>: the resources of the live
// sessions that logged in with each certificate.
func TestIntegrationItemsListUsers(t *testing.T) {
	onServers(t, func(t *testing.T, st *stack) {
		alice := st.passwordLogin(t, "alice")
		account := st.Register(t, "alice").String()
		laptop, phone := st.liveCert(t, account), st.liveCert(t, account)
		for name, c := range map[string]*certtest.Cert{"laptop": laptop, "phone": phone} {
			st.mustAppend(t, alice, jid.JID{}, name, c, false)
		}
		if got := stacktest.Items(t, alice); len(got) != 2 || len(got[0].Users) != 0 || len(got[1].Users) != 0 {
			t.Fatalf("before any certificate login: %+v", got)
		}

		one := st.mustCertLogin(t, account, laptop, "")
		two := st.mustCertLogin(t, account, laptop, "")
		wantBound(t, one, account)
		wantBound(t, two, account)
		resOne, resTwo := one.LocalAddr().Resourcepart(), two.LocalAddr().Resourcepart()

		// The plugin announces a session when it binds, with a notice that
		// Prosody sends on its next timer tick (module:send_iq), so wait for it.
		want := []string{resOne, resTwo}
		slices.Sort(want)
		byName := map[string][]string{}
		waitFor(t, "both sessions in <users/>", func() bool {
			clear(byName)
			for _, it := range stacktest.Items(t, alice) {
				byName[it.Name] = it.Users
			}
			return slices.Equal(byName["laptop"], want)
		})
		if len(byName["phone"]) != 0 {
			t.Fatalf("users of phone: %q, want none", byName["phone"])
		}
		t.Logf("<items/>: laptop used by %q, phone by none", byName["laptop"])
		// The certificate session can list too.
		if got := stacktest.Items(t, one); len(got) != 2 {
			t.Fatalf("items from the EXTERNAL session: %+v", got)
		}

		// A closed session disappears from the list (its notice is sent when
		// Prosody destroys the session, so wait for it).
		if err := two.Close(); err != nil {
			t.Logf("closing: %v", err)
		}
		waitFor(t, "the closed session to leave <users/>", func() bool {
			for _, it := range stacktest.Items(t, alice) {
				if it.Name == "laptop" {
					return slices.Equal(it.Users, []string{resOne})
				}
			}
			return false
		})
	})
}

// 3. EXTERNAL with no authzid ('=') and with the bare JID as authzid binds
// the account.
func TestIntegrationExternalAuthzid(t *testing.T) {
	onServers(t, func(t *testing.T, st *stack) {
		alice := st.passwordLogin(t, "alice")
		account := st.Register(t, "alice").String()
		cert := st.liveCert(t, account)
		st.mustAppend(t, alice, jid.JID{}, "laptop", cert, false)

		for _, authzid := range []string{"", account} {
			c := st.mustCertLogin(t, account, cert, authzid)
			wantBound(t, c, account)
		}

		// The same on the wire: EXTERNAL is offered first, and both initial
		// responses get <success/>.
		for _, initial := range []string{"=", base64.StdEncoding.EncodeToString([]byte(account))} {
			raw := st.dialRaw(t, cert)
			if m := raw.Mechanisms(); len(m) == 0 || m[0] != "EXTERNAL" {
				t.Fatalf("mechanisms %q, want EXTERNAL first", m)
			}
			rawExternal(t, raw, initial)
			if got := rawBind(t, raw, "desk", ""); got != account+"/desk" {
				t.Fatalf("bound as %s, want %s/desk", got, account)
			}
			t.Logf("<auth mechanism='EXTERNAL'>%s</auth>: <success/>, bound as %s/desk", initial, account)
		}
	})
}

// 4. A certificate whose xmppAddr is a full JID forces that resource, whatever
// the client asks for.
func TestIntegrationForcedResource(t *testing.T) {
	onServers(t, func(t *testing.T, st *stack) {
		alice := st.passwordLogin(t, "alice")
		account := st.Register(t, "alice").String()
		cert := st.liveCert(t, account+"/tablet")
		st.mustAppend(t, alice, jid.JID{}, "tablet", cert, false)
		// A client that asks for another resource gets tablet.
		raw := st.dialRaw(t, cert)
		rawExternal(t, raw, "=")
		if got := rawBind(t, raw, "phone", ""); got != account+"/tablet" {
			t.Fatalf("asked for resource phone, bound as %s, want %s/tablet", got, account)
		}
		t.Logf("asked for resource phone, bound as %s/tablet", account)
		waitFor(t, "resource tablet in <users/>", func() bool {
			got := stacktest.Items(t, alice)
			return len(got) == 1 && slices.Equal(got[0].Users, []string{"tablet"})
		})
		// So does a client that asks for none (xmppclient lets the server pick).
		wantBound(t, st.mustCertLogin(t, account, cert, ""), account+"/tablet")
	})
}

// 5. Disable stops new logins and leaves live sessions; revoke also closes
// the live sessions with the stream error <reset/>.
func TestIntegrationDisableRevoke(t *testing.T) {
	onServers(t, func(t *testing.T, st *stack) {
		alice := st.passwordLogin(t, "alice")
		account := st.Register(t, "alice").String()
		toDisable, toRevoke := st.liveCert(t, account), st.liveCert(t, account)
		for name, c := range map[string]*certtest.Cert{"disable-me": toDisable, "revoke-me": toRevoke} {
			st.mustAppend(t, alice, jid.JID{}, name, c, false)
		}
		liveD := st.mustCertLogin(t, account, toDisable, "")
		liveR := st.mustCertLogin(t, account, toRevoke, "")

		// Disable.
		if err := xep0257.DisableCert(stepCtx(t), alice.Session, jid.JID{}, "disable-me"); err != nil {
			t.Fatalf("disable: %v", err)
		}
		c, err := st.certLogin(t, account, toDisable, "")
		wantAuthFailure(t, c, err, "not-authorized")
		// The live session stays and works.
		if got := stacktest.Items(t, liveD); !slices.Equal(stacktest.ItemNames(got), []string{"revoke-me"}) {
			t.Fatalf("items after disable (from the disabled certificate's session): %v", stacktest.ItemNames(got))
		}
		select {
		case err := <-liveD.Done():
			t.Fatalf("the session of the disabled certificate was closed: %v", err)
		default:
		}

		// Revoke: the revocation notice is answered by the plugin before the
		// revoke is acknowledged, so the session is closed (or closing) now.
		if err := xep0257.RevokeCert(stepCtx(t), alice.Session, jid.JID{}, "revoke-me"); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		wantStreamError(t, streamClosed(t, liveR), "reset", "This client certificate has been revoked.")
		c, err = st.certLogin(t, account, toRevoke, "")
		wantAuthFailure(t, c, err, "not-authorized")

		// Only the revoked certificate's sessions were closed.
		if got := stacktest.Items(t, liveD); len(got) != 0 {
			t.Fatalf("items after revoke: %v, want none active", stacktest.ItemNames(got))
		}
		if got := stacktest.Items(t, alice); len(got) != 0 {
			t.Fatalf("items after revoke: %v, want none active", stacktest.ItemNames(got))
		}
	})
}

// 6. A session that logged in with a <no-cert-management/> certificate may
// list but not append, disable or revoke (forbidden), and changes nothing.
func TestIntegrationNoCertManagement(t *testing.T) {
	onServers(t, func(t *testing.T, st *stack) {
		alice := st.passwordLogin(t, "alice")
		account := st.Register(t, "alice").String()
		kiosk := st.liveCert(t, account)
		st.mustAppend(t, alice, jid.JID{}, "kiosk", kiosk, true)
		k := st.mustCertLogin(t, account, kiosk, "")

		// The session can list. Wait until the component has the plugin's
		// notice for it (it lists the session under <users/>): enforcement
		// depends on it, see TestIntegrationNoCertManagementFirstRequest for
		// what happens before.
		waitFor(t, "the kiosk session in <users/>", func() bool {
			got := stacktest.Items(t, k)
			if len(got) != 1 || got[0].Name != "kiosk" || !got[0].NoCertManagement {
				t.Fatalf("items from the kiosk session: %+v", got)
			}
			return slices.Equal(got[0].Users, []string{k.LocalAddr().Resourcepart()})
		})

		other := st.liveCert(t, account)
		err := xep0257.AppendCert(stepCtx(t), k.Session, jid.JID{}, "other", other.DER, false)
		wantStanzaError(t, err, stanza.Auth, stanza.Forbidden, "may not manage certificates")
		err = xep0257.DisableCert(stepCtx(t), k.Session, jid.JID{}, "kiosk")
		wantStanzaError(t, err, stanza.Auth, stanza.Forbidden, "may not manage certificates")
		err = xep0257.RevokeCert(stepCtx(t), k.Session, jid.JID{}, "kiosk")
		wantStanzaError(t, err, stanza.Auth, stanza.Forbidden, "may not manage certificates")

		// Nothing changed: still only kiosk, active, and it still logs in.
		if got := stacktest.Items(t, alice); !slices.Equal(stacktest.ItemNames(got), []string{"kiosk"}) {
			t.Fatalf("items after the refused requests: %v", stacktest.ItemNames(got))
		}
		wantBound(t, st.mustCertLogin(t, account, kiosk, ""), account)
		select {
		case err := <-k.Done():
			t.Fatalf("the kiosk session was closed: %v", err)
		default:
		}

		// The password session may manage.
		st.mustAppend(t, alice, jid.JID{}, "other", other, false)
	})
}

// 7. Certificates that cannot be stored for the account are refused at
// append with not-acceptable and a text that says why; nothing is stored.
func TestIntegrationUploadRefused(t *testing.T) {
	onServers(t, func(t *testing.T, st *stack) {
		alice := st.passwordLogin(t, "alice")
		account := st.Register(t, "alice").String()
		now := time.Now()
		garbage := make([]byte, 700)
		if _, err := rand.Read(garbage); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			der  []byte
			text []string
		}{
			{"expired", certtest.New(t, certtest.Options{
				XMPPAddrs: []string{account}, NotBefore: now.Add(-72 * time.Hour), NotAfter: now.Add(-24 * time.Hour),
			}).DER, []string{"the certificate expired on"}},
			{"foreign-account", st.liveCert(t, "bob@"+st.S.Domain()).DER,
				[]string{"the certificate names bob@" + st.S.Domain() + " but you are " + account}},
			{"no-xmppaddr", certtest.New(t, certtest.Options{
				CommonName: account, DNSNames: []string{"alice.example.net"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			}).DER, []string{"no id-on-xmppAddr", "1.3.6.1.5.5.7.8.5;UTF8:" + account}},
			{"garbage", garbage, []string{"not a valid X.509 certificate"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := xep0257.AppendCert(stepCtx(t), alice.Session, jid.JID{}, tc.name, tc.der, false)
				wantStanzaError(t, err, stanza.Modify, stanza.NotAcceptable, tc.text...)
			})
		}
		if got := stacktest.Items(t, alice); len(got) != 0 {
			t.Fatalf("items after the refused uploads: %v", stacktest.ItemNames(got))
		}
	})
}

// 8. An authzid that is not the certificate's account is refused with
// invalid-authzid: another domain, another account of this domain, a full
// JID. On ejabberd, xmpp_stream_pkix compares the authzid with the
// certificate's xmppAddr itself, before mod_saslcert is asked: another
// account or domain is refused there with not-authorized ("Certificate JID
// mismatch"), still a refusal; a full JID of the certificate's own account
// logs in to that account (ejabberd takes the bare JID), so that case is
// Prosody-only.
func TestIntegrationAuthzidRefused(t *testing.T) {
	onServers(t, func(t *testing.T, st *stack) {
		alice := st.passwordLogin(t, "alice")
		st.Register(t, "bob")
		account := st.Register(t, "alice").String()
		cert := st.liveCert(t, account)
		st.mustAppend(t, alice, jid.JID{}, "laptop", cert, false)
		for _, authzid := range []string{"alice@elsewhere.example", "bob@" + st.S.Domain(), account + "/laptop"} {
			t.Run(authzid, func(t *testing.T) {
				want := "invalid-authzid"
				if st.onEjabberd() {
					if authzid == account+"/laptop" {
						t.Skip("Prosody only: ejabberd binds a full-JID authzid of the certificate's own account to that account")
					}
					want = "not-authorized" // ejabberd's own "Certificate JID mismatch"
				}
				c, err := st.certLogin(t, account, cert, authzid)
				wantAuthFailure(t, c, err, want)
			})
		}
		// The certificate itself is fine.
		wantBound(t, st.mustCertLogin(t, account, cert, ""), account)
	})
}

// 9. EXTERNAL without a client certificate gets a prompt <failure/>, not a
// hang (the peer's defect b6).
func TestIntegrationExternalWithoutCert(t *testing.T) {
	// Prosody only: on ejabberd, EXTERNAL without a certificate is refused by
	// ejabberd itself (xmpp_stream_pkix) before mod_saslcert is asked.
	st := newStack(t)
	// The initial response: "=" sends <auth mechanism='EXTERNAL'>=</auth>,
	// "" the empty <auth mechanism='EXTERNAL'/>.
	for _, tc := range []struct{ name, initial string }{
		{"initial-response", "="},
		{"no-initial-response", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := st.dialRaw(t, nil)
			if m := raw.Mechanisms(); slices.Contains(m, "EXTERNAL") {
				t.Errorf("EXTERNAL offered without a client certificate: %q", m)
			}
			text := wantSASLFailure(t, rawAuth(t, raw, "EXTERNAL", tc.initial), "not-authorized")
			if text != "no client certificate was presented" {
				t.Errorf("failure text %q", text)
			}
		})
	}
}

// 10. With the component stopped, EXTERNAL logins fail with
// temporary-auth-failure (never success); a new component on the same
// database serves them again.
func TestIntegrationComponentDown(t *testing.T) {
	onServers(t, func(t *testing.T, st *stack) {
		alice := st.passwordLogin(t, "alice")
		account := st.Register(t, "alice").String()
		cert := st.liveCert(t, account)
		st.mustAppend(t, alice, jid.JID{}, "laptop", cert, false)
		wantBound(t, st.mustCertLogin(t, account, cert, ""), account)

		if err := st.Comp().Stop(); err != nil {
			t.Fatalf("stopping the component: %v", err)
		}
		for _, authzid := range []string{"", account} {
			c, err := st.certLogin(t, account, cert, authzid)
			wantAuthFailure(t, c, err, "temporary-auth-failure")
		}
		// XEP-0257 requests fail at once too (they must not hang), with an
		// error that says to try again later: wait/service-unavailable on
		// both servers (on ejabberd the router bounces the forwarded request
		// with cancel; mod_saslcert answers wait instead).
		_, err := xep0257.Fetch(stepCtx(t), alice.Session, jid.JID{})
		wantStanzaError(t, err, stanza.Wait, stanza.ServiceUnavailable)

		st.StartComponent(t)
		wantBound(t, st.mustCertLogin(t, account, cert, ""), account)
		if got := stacktest.Items(t, alice); !slices.Equal(stacktest.ItemNames(got), []string{"laptop"}) {
			t.Fatalf("items after the component restart: %v", stacktest.ItemNames(got))
		}
	})
}

// 11. When Prosody restarts, the component reconnects by itself and serves:
// append and EXTERNAL logins work again.
func TestIntegrationProsodyRestart(t *testing.T) {
	// Prosody only: TestEjabberd (internal/enrolle2e) restarts ejabberd and
	// checks the reconnect; a second ejabberd restart here would add ~25 s.
	st := newStack(t)
	account := st.Register(t, "alice").String()
	before := liveCert(t, account)
	{
		alice := st.passwordLogin(t, "alice")
		st.mustAppend(t, alice, jid.JID{}, "before", before, false)
	}
	if err := st.RestartProsody(t); err != nil {
		t.Fatalf("after the Prosody restart: %v", err)
	}

	alice := st.passwordLogin(t, "alice")
	after := liveCert(t, account)
	st.mustAppend(t, alice, jid.JID{}, "after", after, false)
	names := stacktest.ItemNames(stacktest.Items(t, alice))
	slices.Sort(names)
	if !slices.Equal(names, []string{"after", "before"}) {
		t.Fatalf("items after the restart: %v", names)
	}
	wantBound(t, st.mustCertLogin(t, account, before, ""), account)
	wantBound(t, st.mustCertLogin(t, account, after, account), account)
}
