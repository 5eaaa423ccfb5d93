package component

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/pluginproto"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
	"github.com/saslcert/saslcert/xep0257"
)

// live is a real Prosody with the component attached.
type live struct {
	s    *prosodytest.Server
	comp *Component
	stop func() error
	log  *syncBuffer
}

// startLive starts Prosody, then the component (real SQLite store, real
// handler and authorizer, real clock), and waits until it is connected.
// Cleanups stop the component first, then Prosody.
func startLive(t *testing.T, o prosodytest.Options) *live {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (-short)")
	}
	s := prosodytest.Start(t, o)
	log, buf := testLogger(t)
	db := sqlitetest.Open(t, sqlite.Options{})
	certs := &xep0257.Handler{Store: db, Logger: log}
	auth := &sasl.Authorizer{Store: db}
	comp, err := New(Config{
		Addr:           s.ComponentAddr,
		JID:            jid.MustParse(s.ComponentJID),
		Secret:         []byte(s.ComponentSecret),
		ServerDomains:  []string{s.Domain},
		RequestTimeout: 5 * time.Second,
		MinBackoff:     50 * time.Millisecond,
		MaxBackoff:     500 * time.Millisecond,
		Logger:         log,
	}, certs, auth)
	if err != nil {
		t.Fatal(err)
	}
	wire(comp, certs)
	l := &live{s: s, comp: comp, stop: run(t, comp), log: buf}
	waitConnected(t, comp)
	return l
}

// login logs user in with a password (registering the account first).
func (l *live) login(t *testing.T, user, resource string) *xmppclient.Client {
	t.Helper()
	l.s.Register(t, user, "pw-"+user)
	return l.dial(t, xmppclient.Config{JID: jid.MustParse(user + "@" + l.s.Domain + "/" + resource), Password: "pw-" + user})
}

func (l *live) dial(t *testing.T, cfg xmppclient.Config) *xmppclient.Client {
	t.Helper()
	cfg.Addr, cfg.RootCAs = l.s.C2SAddr, l.s.RootCAs
	c, err := xmppclient.Dial(t.Context(), cfg)
	if err != nil {
		t.Fatalf("login as %s: %v", cfg.JID, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// liveCert is a certificate for account, valid now.
func liveCert(t *testing.T, account string) *certtest.Cert {
	t.Helper()
	return certtest.New(t, certtest.Options{
		XMPPAddrs: []string{account},
		NotBefore: time.Now().Add(-time.Hour),
		NotAfter:  time.Now().Add(24 * time.Hour),
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func features(i disco.Info) []string {
	var f []string
	for _, x := range i.Features {
		f = append(f, x.Var)
	}
	return f
}

func wantStanzaError(t *testing.T, err error, cond stanza.Condition) {
	t.Helper()
	var se stanza.Error
	if !errors.As(err, &se) || se.Condition != cond {
		t.Fatalf("got %v, want a stanza error %s", err, cond)
	}
}

func TestIntegrationDirect(t *testing.T) {
	l := startLive(t, prosodytest.Options{Plugin: true})
	alice := l.login(t, "alice", "laptop")
	comp := jid.MustParse(l.s.ComponentJID)

	info, err := disco.GetInfo(ctxT(t), "", comp, alice.Session)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{xep0257.NS, NSPlugin} {
		if !slices.Contains(features(info), want) {
			t.Errorf("disco#info of the component lacks %s: %v", want, features(info))
		}
	}
	if len(info.Identity) != 1 || info.Identity[0].Category != "auth" || info.Identity[0].Type != "cert" {
		t.Errorf("identity: %+v", info.Identity)
	}

	cert := liveCert(t, "alice@"+l.s.Domain)
	if err := xep0257.AppendCert(ctxT(t), alice.Session, comp, "laptop", cert.DER, false); err != nil {
		t.Fatalf("append: %v", err)
	}
	items, err := xep0257.Fetch(ctxT(t), alice.Session, comp)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Name != "laptop" || !slices.Equal(items[0].Cert, cert.DER) {
		t.Fatalf("items: %+v", items)
	}
	// A certificate for someone else is refused.
	err = xep0257.AppendCert(ctxT(t), alice.Session, comp, "bob", liveCert(t, "bob@"+l.s.Domain).DER, false)
	wantStanzaError(t, err, stanza.NotAcceptable)
}

func TestIntegrationDelegation(t *testing.T) {
	l := startLive(t, prosodytest.Options{Delegation: true, Plugin: true})
	alice := l.login(t, "alice", "phone")
	bob := l.login(t, "bob", "desk")
	server := jid.MustParse(l.s.Domain)

	// The server advertises the delegated namespace as its own.
	info, err := disco.GetInfo(ctxT(t), "", server, alice.Session)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(features(info), xep0257.NS) {
		t.Errorf("the server does not advertise %s: %v", xep0257.NS, features(info))
	}

	// Unmodified clients send no 'to'.
	cert := liveCert(t, "alice@"+l.s.Domain)
	if err := xep0257.AppendCert(ctxT(t), alice.Session, jid.JID{}, "phone", cert.DER, false); err != nil {
		t.Fatalf("delegated append: %v", err)
	}
	items, err := xep0257.Fetch(ctxT(t), alice.Session, jid.JID{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Name != "phone" {
		t.Fatalf("items: %+v", items)
	}
	// Addressed to the own bare JID works too.
	if items, err := xep0257.Fetch(ctxT(t), alice.Session, jid.MustParse("alice@"+l.s.Domain)); err != nil || len(items) != 1 {
		t.Fatalf("items to the bare JID: %v, %v", items, err)
	}

	// Prosody forwards requests addressed to other accounts too; they are
	// refused and change nothing.
	bobJID := jid.MustParse("bob@" + l.s.Domain)
	err = xep0257.AppendCert(ctxT(t), alice.Session, bobJID, "evil", liveCert(t, "bob@"+l.s.Domain).DER, false)
	wantStanzaError(t, err, stanza.Forbidden)
	_, err = xep0257.Fetch(ctxT(t), alice.Session, bobJID)
	wantStanzaError(t, err, stanza.Forbidden)
	if items, err := xep0257.Fetch(ctxT(t), bob.Session, jid.JID{}); err != nil || len(items) != 0 {
		t.Fatalf("bob's items: %v, %v", items, err)
	}

	// Errors travel back to the client with their condition.
	err = xep0257.RevokeCert(ctxT(t), alice.Session, jid.JID{}, "nope")
	wantStanzaError(t, err, stanza.ItemNotFound)
}

// TestIntegrationWithoutPlugin: on a host that does not run mod_saslcert
// nothing stamps requests, so no session may manage certificates, neither
// addressing the component nor through mod_delegation, not even with a stamp
// it made up (the MAC needs the component secret); listing works. (The
// plugin is required on every served host: docs/PLUGIN-PROTOCOL.md.)
func TestIntegrationWithoutPlugin(t *testing.T) {
	for _, o := range []prosodytest.Options{{}, {Delegation: true}} {
		t.Run(fmt.Sprintf("delegation=%v", o.Delegation), func(t *testing.T) {
			l := startLive(t, o)
			alice := l.login(t, "alice", "r")
			to := jid.MustParse(l.s.ComponentJID)
			if o.Delegation {
				to = jid.JID{}
			}
			cert := liveCert(t, "alice@"+l.s.Domain)
			err := xep0257.AppendCert(ctxT(t), alice.Session, to, "r", cert.DER, false)
			wantStanzaError(t, err, stanza.Forbidden)
			// A stamp the client made up, for its own full JID and request.
			forged := fmt.Sprintf("<auth xmlns='%s' jid='%s' id='forged' method='other' manage='true' mac='%s'/>",
				NSPlugin, alice.LocalAddr(), pluginproto.StampMAC([]byte("a guess"), alice.LocalAddr().String(), "forged", string(pluginproto.MethodOther), "", "true"))
			iq := stanza.IQ{ID: "forged", Type: stanza.SetIQ, To: to}
			payload := xep0257.Append{Name: "forged", Cert: cert.DER}
			resp, err := alice.Session.SendIQ(ctxT(t), iq.Wrap(xmlstream.MultiReader(payload.TokenReader(), xml.NewDecoder(strings.NewReader(forged)))))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := resp.Token()
			start, ok := tok.(xml.StartElement)
			_ = resp.Close() // the session reads nothing more until it is closed
			if err != nil || !ok {
				t.Fatalf("reading the reply: %v, %v", tok, err)
			}
			if reply, err := stanza.NewIQ(start); err != nil || reply.Type != stanza.ErrorIQ {
				t.Fatalf("the request with a made-up stamp got %+v, %v; want an error", reply, err)
			}
			if items, err := xep0257.Fetch(ctxT(t), alice.Session, to); err != nil || len(items) != 0 {
				t.Fatalf("items: %+v, %v; want none", items, err)
			}
		})
	}
}

func TestIntegrationRestart(t *testing.T) {
	l := startLive(t, prosodytest.Options{Delegation: true, Plugin: true})
	l.s.Register(t, "alice", "pw-alice")
	n := l.comp.Connects()
	l.s.Restart(t)
	waitFor(t, "the reconnect", func() bool { return l.comp.Connects() > n })
	waitConnected(t, l.comp)

	alice := l.dial(t, xmppclient.Config{JID: jid.MustParse("alice@" + l.s.Domain + "/r"), Password: "pw-alice"})
	cert := liveCert(t, "alice@"+l.s.Domain)
	// Right after the reconnect the server may still be querying the
	// component's delegation nodes; retry briefly.
	var err error
	for range 50 {
		if err = xep0257.AppendCert(ctxT(t), alice.Session, jid.JID{}, "r", cert.DER, false); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("append after restart: %v", err)
	}
	if items, err := xep0257.Fetch(ctxT(t), alice.Session, jid.JID{}); err != nil || len(items) != 1 {
		t.Fatalf("items after restart: %v, %v", items, err)
	}
}

func TestIntegrationShutdown(t *testing.T) {
	l := startLive(t, prosodytest.Options{Delegation: true})
	alice := l.login(t, "alice", "r")
	if _, err := xep0257.Fetch(ctxT(t), alice.Session, jid.JID{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := l.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	// The server saw the component go: requests now fail at once.
	_, err := xep0257.Fetch(ctxT(t), alice.Session, jid.JID{})
	var se stanza.Error
	if !errors.As(err, &se) {
		t.Fatalf("items with the component gone: %v, want a stanza error", err)
	}
	if !strings.Contains(l.log.String(), "component stopped") {
		t.Error("no shutdown log line")
	}
	// Prosody logs the component's </stream:stream> (not a dropped
	// connection).
	waitFor(t, "Prosody to log the closed stream", func() bool {
		for line := range strings.Lines(l.s.Log()) {
			if strings.Contains(line, " jcp") && strings.Contains(line, "Received </stream:stream>") {
				return true
			}
		}
		return false
	})
}

func TestIntegrationExternalLogin(t *testing.T) {
	l := startLive(t, prosodytest.Options{Delegation: true, Plugin: true})
	alice := l.login(t, "alice", "admin")
	account := "alice@" + l.s.Domain
	cert := liveCert(t, account)
	if err := xep0257.AppendCert(ctxT(t), alice.Session, jid.JID{}, "tablet", cert.DER, false); err != nil {
		t.Fatalf("append: %v", err)
	}

	tlsCert := &tls.Certificate{Certificate: [][]byte{cert.DER}, PrivateKey: cert.Key}
	ext := l.dial(t, xmppclient.Config{JID: jid.MustParse(account + "/tablet"), Cert: tlsCert})
	if got := ext.LocalAddr().Bare().String(); got != account {
		t.Fatalf("EXTERNAL login bound as %s", ext.LocalAddr())
	}
	res := ext.LocalAddr().Resourcepart()

	// The plugin's session notice reaches the registry: <items/> lists the
	// session's resource.
	waitFor(t, "the session notice", func() bool {
		items, err := xep0257.Fetch(ctxT(t), alice.Session, jid.JID{})
		return err == nil && len(items) == 1 && slices.Equal(items[0].Users, []string{res})
	})

	// An unknown certificate is refused.
	other := liveCert(t, account)
	_, err := xmppclient.Dial(t.Context(), xmppclient.Config{Addr: l.s.C2SAddr, RootCAs: l.s.RootCAs,
		JID: jid.MustParse(account + "/x"), Cert: &tls.Certificate{Certificate: [][]byte{other.DER}, PrivateKey: other.Key}})
	if err == nil {
		t.Fatal("login with an unknown certificate succeeded")
	}

	// Revoking closes the live session, and the certificate no longer logs in.
	if err := xep0257.RevokeCert(ctxT(t), alice.Session, jid.JID{}, "tablet"); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	select {
	case <-ext.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the session of the revoked certificate is still open")
	}
	_, err = xmppclient.Dial(t.Context(), xmppclient.Config{Addr: l.s.C2SAddr, RootCAs: l.s.RootCAs,
		JID: jid.MustParse(account + "/again"), Cert: tlsCert})
	if err == nil {
		t.Fatal("login with a revoked certificate succeeded")
	}
}
