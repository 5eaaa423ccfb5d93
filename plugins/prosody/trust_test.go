// Whom the plugin believes (issue 16.2) and what a resumed XEP-0198 session
// carries (issue 10.11).
package prosody_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/pluginproto"
)

// TestForgedLookupAnswer: another component of the server that may send
// from any address (validate_from_addresses = false) answers a lookup in
// the component's name, granting an unknown certificate as alice. The
// plugin believes only the component's own connection: the login gets the
// component's refusal.
func TestForgedLookupAnswer(t *testing.T) {
	const evilJID, evilSecret = "evil.example.org", "evilsecret"
	s := prosodytest.Start(t, prosodytest.Options{Plugin: true, PluginTimeout: 5 * time.Second,
		ExtraHost: "	saslcert_prefetch = false",
		ExtraGlobal: fmt.Sprintf("\nComponent %q\n\tcomponent_secret = %q\n\tvalidate_from_addresses = false",
			evilJID, evilSecret)})
	s.Register(t, "alice", "alicepw")
	fc := startComponent(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	evil, err := (&stacktest.Stack{S: stacktest.ProsodyServer(s)}).DialRawComponent(ctx, evilJID, evilSecret)
	if err != nil {
		t.Fatal(err)
	}
	defer evil.Close()

	stranger := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	fc.set(stranger.DER, answer{ErrType: "auth", ErrCond: "not-authorized", SASLCond: "not-authorized", Text: "unknown certificate", Hold: true})
	c := dialRaw(t, s, stranger)
	c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`)
	held := <-fc.held
	var lookup stacktest.Node
	if err := xml.Unmarshal([]byte(held), &lookup); err != nil {
		t.Fatal(err)
	}
	forged := fmt.Sprintf(`<iq type='result' id='%s' from='%s' to='%s'><lookup xmlns='%s' jid='alice@example.org' fingerprint='%s' no-cert-management='false'/></iq>`,
		stacktest.Escape(lookup.Attr("id")), s.ComponentJID, s.Domain, nsPlugin, fingerprint(stranger.DER))
	if err := evil.Send(forged); err != nil {
		t.Fatal(err)
	}
	// Prosody handles a connection's stanzas in order: once this ping is
	// answered, the forged answer has been processed.
	if n, err := evil.IQ("get", s.Domain, `<ping xmlns='urn:xmpp:ping'/>`); err != nil || n.Attr("type") != "result" {
		t.Fatalf("ping from %s: %v %v", evilJID, n, err)
	}
	fc.held <- held
	fc.release(t)
	if got := c.next().Outcome(); got != "failure not-authorized: unknown certificate" {
		t.Fatalf("login: %s (the forged grant was believed)", got)
	}
	if !strings.Contains(s.Log(), "Ignoring an answer from "+s.ComponentJID) {
		t.Error("the forged answer was not logged")
	}
}

// TestComponentMustBeLocal: saslcert_component must name an external
// Component of this server, wherever it stands in the config; anything
// else (a typo that s2s would route to another server, the VirtualHost, an
// internal component) makes the module refuse to load: EXTERNAL is neither
// offered nor handled, and no lookup ever leaves.
func TestComponentMustBeLocal(t *testing.T) {
	cases := []struct {
		name, component, global string
		loads                   bool
	}{
		{"typo: a remote domain", "certs.exmaple.org", "", false},
		{"the VirtualHost", "example.org", "", false},
		{"an internal component", "rooms.example.org", "\nComponent \"rooms.example.org\" \"muc\"", false},
		{"a Component defined before the VirtualHost", "early.example.org",
			"\nComponent \"early.example.org\"\n\tcomponent_secret = \"early\"", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := prosodytest.Start(t, prosodytest.Options{Plugin: true, PluginNoComponent: true,
				ExtraHost: fmt.Sprintf("	saslcert_component = %q", tc.component), ExtraGlobal: tc.global})
			alice := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
			c := dialRaw(t, s, alice)
			offered := len(c.Mechanisms()) > 0 && c.Mechanisms()[0] == "EXTERNAL"
			refused := strings.Contains(s.Log(), "is not a Component of this server")
			if offered != tc.loads || refused == tc.loads {
				t.Fatalf("EXTERNAL offered %v (%v), refusal logged %v; want loaded %v", offered, c.Mechanisms(), refused, tc.loads)
			}
			if !tc.loads {
				failure(t, c.authExternal("="), "invalid-mechanism")
			}
		})
	}
}

// smacksServer starts Prosody with the plugin and mod_smacks.
func smacksServer(t *testing.T) *prosodytest.Server {
	t.Helper()
	s := prosodytest.Start(t, prosodytest.Options{Plugin: true, PluginTimeout: time.Second,
		ExtraHost: "	saslcert_prefetch = false", ExtraModules: []string{"smacks"}})
	s.Register(t, "alice", "alicepw")
	return s
}

// hibernate logs alice in with her password, binds resource, enables
// resumable stream management and drops the connection; it returns the
// resumption id once the session hibernates.
func hibernate(t *testing.T, s *prosodytest.Server, resource string) string {
	t.Helper()
	p := dialRaw(t, s, nil)
	if err := p.AuthPlain("alice", "alicepw"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Bind(resource); err != nil {
		t.Fatal(err)
	}
	p.send(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`)
	n := p.next()
	id := n.Attr("id")
	if n.XMLName.Local != "enabled" || id == "" {
		t.Fatalf("enable: %s", n)
	}
	before := strings.Count(s.Log(), "Session going into hibernation")
	p.Conn().Close()
	deadline := time.Now().Add(rawTimeout)
	for strings.Count(s.Log(), "Session going into hibernation") == before {
		if time.Now().After(deadline) {
			t.Fatal("the session did not hibernate")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return id
}

// resume sends <resume/> for previd on c (authenticated, stream restarted)
// and returns the answer.
func resume(c *rawClient, previd string) *stacktest.Node {
	c.t.Helper()
	c.send(`<resume xmlns='urn:xmpp:sm:3' h='0' previd='` + stacktest.Escape(previd) + `'/>`)
	return c.next()
}

// TestResumedSessionRevoked: a certificate login that resumes a hibernated
// password session hands its certificate to the resumed session: the
// component hears of it, and revoking the certificate closes the session
// for good with <reset/> (before: the connection was dropped, the session
// hibernated again and the password could resume it).
func TestResumedSessionRevoked(t *testing.T) {
	s := smacksServer(t)
	fc := startComponent(t, s)
	cert := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	fp := fingerprint(cert.DER)
	fc.set(cert.DER, answer{JID: "alice@example.org", Fingerprint: fp})

	previd := hibernate(t, s, "phone")
	c := dialRaw(t, s, cert)
	if got := c.authExternal("=").Outcome(); got != "success" {
		t.Fatalf("EXTERNAL: %s", got)
	}
	c.open()
	if n := resume(c, previd); n.XMLName.Local != "resumed" {
		t.Fatalf("resume: %s", n)
	}
	found := false
	for _, n := range fc.waitNotices(t, 1) {
		found = found || (n.Event == "bound" && n.JID == "alice@example.org/phone" && n.Fingerprint == fp)
	}
	if !found {
		t.Error("no bound notice for the resumed session with the new certificate")
	}

	r := fc.sendPayload(t, stanza.SetIQ, "r1", pluginproto.Revoked{JID: "alice@example.org", Fingerprint: fp})
	if rv := r.Child("", "revoked"); rv == nil || rv.Attr("closed") != "1" {
		t.Fatalf("revoked: %s", r)
	}
	if se := c.expectStreamError(rawTimeout); se.Outcome() != "stream-error reset: "+revokedText {
		t.Fatalf("resumed session: %s", se.Outcome())
	}
	q := dialRaw(t, s, nil)
	if err := q.AuthPlain("alice", "alicepw"); err != nil {
		t.Fatal(err)
	}
	if n := resume(q, previd); n.XMLName.Local != "failed" {
		t.Fatalf("resuming the revoked session with the password: %s", n)
	}
}

// TestResumeOtherResource: a certificate that forces its resource cannot
// take over a session of another resource by resuming it.
func TestResumeOtherResource(t *testing.T) {
	s := smacksServer(t)
	fc := startComponent(t, s)
	tablet := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org/tablet"}})
	fc.set(tablet.DER, answer{JID: "alice@example.org", Resource: "tablet", Fingerprint: fingerprint(tablet.DER)})

	previd := hibernate(t, s, "phone")
	c := dialRaw(t, s, tablet)
	if got := c.authExternal("=").Outcome(); got != "success" {
		t.Fatalf("EXTERNAL: %s", got)
	}
	c.open()
	resume(c, previd)
	se := c.expectStreamError(rawTimeout)
	if got := se.Outcome(); got != "stream-error policy-violation: This client certificate may only use the resource tablet" {
		t.Fatalf("resuming phone with a tablet certificate: %s", got)
	}
}
