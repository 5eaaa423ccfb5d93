package enrolle2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/ejabberdtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/pluginproto"
)

// TestEjabberdForgedAnswers attacks mod_saslcert from another component on
// the same ejabberd (rogue.example.org). ejabberd routes any component's IQ
// result to the request whose id it carries, so the module believes an
// answer only from the configured component: a grant the rogue sends for a
// pending lookup never logs anyone in (the real component refuses that
// login; the test plays it with a raw XEP-0114 connection). The rogue may
// not send the plugin's requests either: <revoked/>, <sessions/> (which
// would announce a cache) and <changed/> get forbidden.
func TestEjabberdForgedAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack integration test (-short)")
	}
	ejabberdtest.Skip(t)
	ca := certtest.NewCA(t, "hostile test CA")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	st := stacktest.Start(t, stacktest.Options{
		PluginTimeout: 5 * time.Second,
		NoComponent:   true,
		Rogue:         true,
		StartServer:   stacktest.StartEjabberd,
		ClientCAFile:  caFile,
	})
	alice := st.Register(t, "alice")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	fake, err := st.DialRawComponent(ctx, st.ComponentJID, st.S.ComponentSecret())
	if err != nil {
		t.Fatalf("the stand-in component: %v", err)
	}
	defer fake.Close()
	rogue, err := st.DialRawComponent(ctx, st.RogueJID, st.RogueSecret)
	if err != nil {
		t.Fatalf("the rogue component: %v", err)
	}
	defer rogue.Close()

	// mod_delegation's disco#info query says ejabberd has registered the
	// stand-in's route (which the handshake's answer may precede).
	for {
		n, err := fake.Next(60 * time.Second)
		if err != nil {
			t.Fatalf("waiting for mod_delegation's query: %v", err)
		}
		if q := n.Child("http://jabber.org/protocol/disco#info", "query"); q != nil {
			break
		}
	}
	cert := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{alice.String()}, Parent: ca})
	login := make(chan error, 1)
	go func() {
		c, err := st.Dial(ctx, xmppclient.Config{JID: alice, Cert: stacktest.TLSCert(cert)})
		if err == nil {
			c.Close()
		}
		login <- err
	}()
	var lookupID string
	for lookupID == "" {
		n, err := fake.Next(60 * time.Second)
		if err != nil {
			select {
			case lerr := <-login:
				t.Fatalf("waiting for the module's lookup: %v (the login ended: %v)", err, lerr)
			default:
				t.Fatalf("waiting for the module's lookup: %v", err)
			}
		}
		if n.XMLName.Local == "iq" && n.Child(pluginproto.NS, "lookup") != nil {
			lookupID = n.Attr("id")
		}
	}
	forged := "<iq type='result' id='" + stacktest.Escape(lookupID) + "' from='" + st.RogueJID + "' to='" + st.Domain + "'>" +
		"<lookup xmlns='" + pluginproto.NS + "' jid='" + alice.String() + "' no-cert-management='false'/></iq>"
	if err := rogue.Send(forged); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let the forged answer arrive first; nothing asserts on the timing
	refusal := "<iq type='error' id='" + stacktest.Escape(lookupID) + "' to='" + st.Domain + "'><error type='auth'>" +
		"<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></error></iq>"
	if err := fake.Send(refusal); err != nil {
		t.Fatal(err)
	}
	err = <-login
	var ae *xmppclient.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("login with a grant forged by another component: %v; want a SASL failure", err)
	}
	t.Logf("a grant forged by %s for the pending lookup: the login failed <%s/> %q", st.RogueJID, ae.Condition, ae.Text)
	if e, _ := stacktest.Ejabberd(st.S); !strings.Contains(e.Log(), "ignored an answer to a request for "+st.ComponentJID+" from "+st.RogueJID) {
		t.Errorf("ejabberd's log does not show the forged answer being ignored")
	}

	for _, payload := range []string{
		"<revoked xmlns='" + pluginproto.NS + "' jid='" + alice.String() + "' fingerprint='" + "sha256:" + strings.Repeat("0", 64) + "'/>",
		"<changed xmlns='" + pluginproto.NS + "' jid='" + alice.String() + "'/>",
	} {
		n, err := rogueIQ(rogue, st.RogueJID, "set", st.Domain, payload)
		if err != nil {
			t.Fatal(err)
		}
		if !forbidden(n) {
			t.Fatalf("rogue %s: %s; want forbidden", payload, n)
		}
	}
	n, err := rogueIQ(rogue, st.RogueJID, "get", st.Domain, "<sessions xmlns='"+pluginproto.NS+"' cache-ttl='3600'/>")
	if err != nil {
		t.Fatal(err)
	}
	if !forbidden(n) {
		t.Fatalf("rogue <sessions/>: %s; want forbidden", n)
	}
	t.Log("the rogue's <revoked/>, <changed/> and <sessions/> were refused with forbidden")
}

// rogueIQ sends an IQ from the component c (ejabberd wants the from) and
// returns the answer.
func rogueIQ(c *stacktest.RawClient, from, typ, to, payload string) (*stacktest.Node, error) {
	id := c.NewID()
	if err := c.Send("<iq type='" + typ + "' id='" + id + "' from='" + from + "' to='" + to + "'>" + payload + "</iq>"); err != nil {
		return nil, err
	}
	return c.Await(id, 30*time.Second)
}

// forbidden reports whether n is an IQ error with <forbidden/>.
func forbidden(n *stacktest.Node) bool {
	e := n.Child("", "error")
	return n.Attr("type") == "error" && e != nil && e.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "forbidden") != nil
}
