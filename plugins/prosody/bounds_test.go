// What one unauthenticated client can make the plugin do is bounded: the
// SASL data it reads, the failed attempts per connection, the lookups per
// address, how often a refusal is asked about again, and the bytes the
// caches hold (issues 10.2, 16.10, 16.5).
package prosody_test

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/pluginproto"
)

const (
	nsDelegation = "urn:xmpp:delegation:2"
	nsForward    = "urn:xmpp:forward:0"
	nsCerts      = "urn:xmpp:saslcert:1"
)

// maxSASLData is the plugin's max_sasl_data: the base64 of the longest
// authzid (3071 bytes: 4096 characters) and 64 bytes of whitespace.
const maxSASLData = 4096 + 64

// TestSASLDataBound: SASL data longer than maxSASLData is refused with
// malformed-request before any pattern runs on it (the old trim was
// quadratic: 'a', 9,800 spaces, 'b' cost ~0.4 s of Prosody's only thread);
// data up to the bound is read as before. Nothing is timed: the bound is
// shown by where the answer changes.
func TestSASLDataBound(t *testing.T) {
	s := startServer(t)
	fc := startComponent(t, s)
	alice := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	fc.set(alice.DER, answer{JID: "alice@example.org", Fingerprint: fingerprint(alice.DER)})

	cases := []struct {
		name, data, want string
		lookups          int
	}{
		{"quadratic-trim attack", "a" + strings.Repeat(" ", 9800) + "b", "failure malformed-request: The SASL data is too long", 0},
		{"one byte over the bound", "=" + strings.Repeat(" ", maxSASLData), "failure malformed-request: The SASL data is too long", 0},
		{"over the bound, no whitespace", strings.Repeat("A", maxSASLData+4), "failure malformed-request: The SASL data is too long", 0},
		{"the bound itself: = in whitespace", strings.Repeat(" ", maxSASLData/2) + "=" + strings.Repeat(" ", maxSASLData/2-1), "success", 1},
		{"inner whitespace is bad encoding", "YW" + strings.Repeat(" ", 100) + "Jj", "failure incorrect-encoding", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.data) > 9800+2 {
				t.Fatalf("case data of %d bytes would exceed Prosody's pre-login stanza limit", len(tc.data))
			}
			c := dialRaw(t, s, alice)
			if got := c.authExternal(tc.data).Outcome(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if l := fc.takeLookups(); len(l) != tc.lookups {
				t.Fatalf("%d lookups, want %d", len(l), tc.lookups)
			}
		})
	}
}

// TestFailureLimit: one connection pipelining ten EXTERNAL attempts gets
// three failures (saslcert_max_failures, default 3) and then the stream is
// closed with policy-violation; the component is asked three times.
func TestFailureLimit(t *testing.T) {
	s := startServer(t)
	fc := startComponent(t, s)
	stranger := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	c := dialRaw(t, s, stranger)
	c.send(strings.Repeat(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`, 10))
	for i := range 3 {
		if got := c.next().Outcome(); got != "failure not-authorized: unknown certificate" {
			t.Fatalf("attempt %d: %s", i+1, got)
		}
	}
	se := c.expectStreamError(rawTimeout)
	if got := se.Outcome(); got != "stream-error policy-violation: Too many failed authentication attempts" {
		t.Fatalf("after three failures: %s", got)
	}
	if l := fc.takeLookups(); len(l) != 3 {
		t.Fatalf("%d lookups, want 3", len(l))
	}
}

// TestLookupRateLimit: lookups are counted per client address; past the
// burst (here 3, refilled very slowly) a login gets temporary-auth-failure
// without the component being asked.
func TestLookupRateLimit(t *testing.T) {
	s := prosodytest.Start(t, prosodytest.Options{Plugin: true, PluginTimeout: time.Second, PluginLookupLimit: -1,
		ExtraHost: "	saslcert_prefetch = false\n	saslcert_lookup_burst = 3\n	saslcert_lookup_rate = 0.001"})
	s.Register(t, "alice", "alicepw")
	fc := startComponent(t, s)
	for i := range 4 {
		cert := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
		want := "failure not-authorized: unknown certificate"
		if i == 3 {
			want = "failure temporary-auth-failure: Too many certificate logins from your address; try again later"
		}
		c := dialRaw(t, s, cert)
		if got := c.authExternal("=").Outcome(); got != want {
			t.Fatalf("login %d: %s, want %s", i+1, got, want)
		}
	}
	if l := fc.takeLookups(); len(l) != 3 {
		t.Fatalf("%d lookups, want 3", len(l))
	}
}

// allowCaching sends the <sessions/> query a component sends after it
// connects, with cache-ttl: the plugin may remember answers from then on.
func allowCaching(t *testing.T, fc *fakeComponent) {
	t.Helper()
	r := fc.sendPayload(t, stanza.GetIQ, "sq", pluginproto.SessionsQuery{Lookup: "full", CacheTTL: 60})
	if typ := r.Attr("type"); typ != "result" {
		t.Fatalf("sessions query: %s", r)
	}
}

// changed sends <changed jid='account'/> as the component does before it
// acknowledges a change.
func changed(t *testing.T, fc *fakeComponent, account string) {
	t.Helper()
	r := fc.sendPayload(t, stanza.SetIQ, "ch", pluginproto.Changed{JID: account})
	if typ := r.Attr("type"); typ != "result" {
		t.Fatalf("changed: %s", r)
	}
}

// TestRefusalCache: a refusal is remembered (the same login asks the
// component no more), but never past a change: any <changed/> empties the
// refusals (it names an account, not a certificate), and a refusal whose
// lookup was overtaken by a change is not remembered at all.
func TestRefusalCache(t *testing.T) {
	s := startServer(t)
	s.Register(t, "bob", "bobpw")
	fc := startComponent(t, s)
	allowCaching(t, fc)
	cert := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	login := func(want string, lookups int) {
		t.Helper()
		c := dialRaw(t, s, cert)
		if got := c.authExternal("=").Outcome(); got != want {
			t.Fatalf("login: %s, want %s", got, want)
		}
		if l := fc.takeLookups(); len(l) != lookups {
			t.Fatalf("%d lookups, want %d", len(l), lookups)
		}
	}
	refused := "failure not-authorized: unknown certificate"

	login(refused, 1)
	login(refused, 0) // remembered
	// Uploaded now (for alice); the change notice names alice.
	fc.set(cert.DER, answer{JID: "alice@example.org", Fingerprint: fingerprint(cert.DER)})
	changed(t, fc, "alice@example.org")
	login("success", 1)

	// A change of another account empties the refusals too.
	fc.set(cert.DER, answer{ErrType: "auth", ErrCond: "not-authorized", SASLCond: "not-authorized", Text: "unknown certificate"})
	changed(t, fc, "alice@example.org")
	login(refused, 1)
	fc.set(cert.DER, answer{JID: "alice@example.org", Fingerprint: fingerprint(cert.DER)})
	changed(t, fc, "bob@example.org")
	login("success", 1)

	// A change while the refusal is on its way: not remembered.
	fc.set(cert.DER, answer{ErrType: "auth", ErrCond: "not-authorized", SASLCond: "not-authorized", Text: "unknown certificate", Hold: true})
	changed(t, fc, "alice@example.org")
	c := dialRaw(t, s, cert)
	c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`)
	held := <-fc.held
	fc.held <- held
	fc.set(cert.DER, answer{JID: "alice@example.org", Fingerprint: fingerprint(cert.DER)})
	changed(t, fc, "alice@example.org")
	fc.release(t)
	if got := c.next().Outcome(); got != refused {
		t.Fatalf("held refusal: %s", got)
	}
	fc.takeLookups()
	login("success", 1)
}

// handleDelegation answers a forwarded XEP-0257 <items/> request with one
// <item/> padded to itemsPad[account] bytes (default 1800) and counts it.
func (fc *fakeComponent) handleDelegation(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var d struct {
		Forwarded struct {
			IQ struct {
				ID    string    `xml:"id,attr"`
				From  string    `xml:"from,attr"`
				Items *struct{} `xml:"urn:xmpp:saslcert:1 items"`
			} `xml:"jabber:client iq"`
		} `xml:"urn:xmpp:forward:0 forwarded"`
	}
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t)).Decode(&d); err != nil {
		return err
	}
	inner := d.Forwarded.IQ
	from, err := jid.Parse(inner.From)
	if err != nil || inner.Items == nil {
		fc.t.Errorf("unexpected forwarded request %+v", inner)
		return nil
	}
	account := from.Bare().String()
	fc.mu.Lock()
	fc.itemsAsked[account]++
	pad, ok := fc.itemsPad[account]
	fc.mu.Unlock()
	if !ok {
		pad = 1800
	}
	reply := fmt.Sprintf(`<iq type='result' id='%s' from='%s' to='%s'><delegation xmlns='%s'><forwarded xmlns='%s'>`+
		`<iq xmlns='jabber:client' type='result' id='%s'><items xmlns='%s'><item><name>%s</name></item></items></iq>`+
		`</forwarded></delegation></iq>`,
		stacktest.Escape(iq.ID), stacktest.Escape(iq.To.String()), stacktest.Escape(iq.From.String()), nsDelegation, nsForward,
		stacktest.Escape(inner.ID), nsCerts, strings.Repeat("x", pad))
	_, err = xmlstream.Copy(t, xml.NewDecoder(strings.NewReader(reply)))
	return err
}

// TestItemsCacheBytes: the <items/> cache holds at most saslcert_cache_bytes
// (here 10,000): adding past it evicts the oldest lists, and a list over a
// quarter of it is never kept (the old cache held 10,000 lists of any size:
// gigabytes).
func TestItemsCacheBytes(t *testing.T) {
	s := startServerWith(t, "	saslcert_prefetch = false\n	saslcert_cache_bytes = 10000")
	users := []string{"alice", "u1", "u2", "u3", "u4", "big"}
	for _, u := range users[1:] {
		s.Register(t, u, u+"pw")
	}
	fc := startComponent(t, s)
	allowCaching(t, fc)
	fc.itemsPad["big@example.org"] = 4000 // over a quarter of the budget

	clients := map[string]*rawClient{}
	for _, u := range users {
		pw := u + "pw"
		if u == "alice" {
			pw = "alicepw"
		}
		c := dialRaw(t, s, nil)
		if err := c.AuthPlain(u, pw); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Bind(""); err != nil {
			t.Fatal(err)
		}
		clients[u] = c
	}
	items := func(u string, wantAsked int) {
		t.Helper()
		n, err := clients[u].IQ("get", "", `<items xmlns='`+nsCerts+`'/>`)
		if err != nil {
			t.Fatal(err)
		}
		if n.Attr("type") != "result" || n.Child(nsCerts, "items") == nil {
			t.Fatalf("%s: <items/>: %s", u, n.Outcome())
		}
		fc.mu.Lock()
		asked := fc.itemsAsked[u+"@example.org"]
		fc.mu.Unlock()
		if asked != wantAsked {
			t.Fatalf("%s: the component was asked %d times, want %d", u, asked, wantAsked)
		}
	}
	// Each list costs about 2,200 bytes: four fit in 10,000.
	items("alice", 1)
	items("alice", 1) // cached
	items("u1", 1)
	items("u2", 1)
	items("u3", 1)
	items("alice", 1) // still cached: four lists
	items("u4", 1)    // the fifth: the oldest (alice) goes
	items("alice", 2)
	items("u4", 1) // the newest stays
	items("big", 1)
	items("big", 2) // never kept
}
