package component

import (
	"context"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/xep0257"
)

func TestNewConfig(t *testing.T) {
	good := func() Config {
		return Config{Addr: "127.0.0.1:5347", JID: jid.MustParse(compJID), Secret: []byte("x"), ServerDomains: []string{domain}}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; "" for success
	}{
		{"ok", func(*Config) {}, ""},
		{"error/no addr", func(c *Config) { c.Addr = "" }, "Config.Addr is empty"},
		{"error/addr without port", func(c *Config) { c.Addr = "localhost" }, "is not host:port"},
		{"error/no jid", func(c *Config) { c.JID = jid.JID{} }, "Config.JID is empty"},
		{"error/jid with localpart", func(c *Config) { c.JID = jid.MustParse("a@certs.example.org") }, "must be a bare domain"},
		{"error/no secret", func(c *Config) { c.Secret = nil }, "Config.Secret is empty"},
		{"error/no domains", func(c *Config) { c.ServerDomains = nil }, "Config.ServerDomains is empty"},
		{"error/bad domain", func(c *Config) { c.ServerDomains = []string{"exa mple.org"} }, "not a valid domain"},
		{"error/domain with localpart", func(c *Config) { c.ServerDomains = []string{"alice@example.org"} }, "must be a bare domain"},
		{"error/domain with two forms", func(c *Config) { c.ServerDomains = []string{"straße.example"} }, `"strasse.example" for the XMPP server`},
		{"error/duplicate domain", func(c *Config) { c.ServerDomains = []string{"example.org", "EXAMPLE.org"} }, "listed twice"},
		{"error/domain is the component", func(c *Config) { c.ServerDomains = []string{compJID} }, "component's own JID"},
		{"error/negative timeout", func(c *Config) { c.RequestTimeout = -1 }, "Config.RequestTimeout is negative"},
		{"error/negative ping", func(c *Config) { c.PingInterval = -time.Second }, "Config.PingInterval is negative"},
		{"error/min above max", func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Minute, time.Second }, "larger than Config.MaxBackoff"},
		{"error/negative in flight", func(c *Config) { c.MaxInFlight = -1 }, "Config.MaxInFlight is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.mutate(&cfg)
			c, err := New(cfg, &xep0257.Handler{}, &sasl.Authorizer{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("New succeeded, want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			case tc.want == "":
				if c.cfg.RequestTimeout != DefaultRequestTimeout || c.cfg.MaxInFlight != DefaultMaxInFlight ||
					c.cfg.PingInterval != DefaultPingInterval || c.cfg.MinBackoff != DefaultMinBackoff ||
					c.cfg.MaxBackoff != DefaultMaxBackoff || c.cfg.Logger == nil || c.cfg.Now == nil {
					t.Errorf("defaults not applied: %+v", c.cfg)
				}
			}
		})
	}
	if _, err := New(good(), nil, &sasl.Authorizer{}); err == nil {
		t.Error("New with a nil handler succeeded")
	}
	if _, err := New(good(), &xep0257.Handler{}, nil); err == nil {
		t.Error("New with a nil authorizer succeeded")
	}
}

// New leaves the caller's handler alone (package server wires it).
func TestNewWiresHandler(t *testing.T) {
	cfg := Config{Addr: "127.0.0.1:5347", JID: jid.MustParse(compJID), Secret: []byte("x"), ServerDomains: []string{domain}}
	h := &xep0257.Handler{}
	c, err := New(cfg, h, &sasl.Authorizer{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Sessions != nil || h.Revoked != nil {
		t.Error("New changed the caller's handler")
	}
	if c.Sessions() == nil {
		t.Error("no registry")
	}
	// Fields already set are kept.
	mine := NewRegistry()
	h2 := &xep0257.Handler{Sessions: mine}
	if _, err := New(cfg, h2, &sasl.Authorizer{}); err != nil {
		t.Fatal(err)
	}
	if h2.Sessions != xep0257.Sessions(mine) {
		t.Error("New replaced a Sessions that was already set")
	}
}

func TestBackoff(t *testing.T) {
	minD, maxD := 500*time.Millisecond, 30*time.Second
	for attempt, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		lo := backoff(minD, maxD, attempt, func() float64 { return 0 })
		hi := backoff(minD, maxD, attempt, func() float64 { return 0.999999 })
		if lo != want/2 || hi < want-time.Millisecond || hi > want {
			t.Errorf("attempt %d: range [%v, %v], want [%v, %v]", attempt, lo, hi, want/2, want)
		}
	}
	if d := backoff(minD, maxD, 1000, func() float64 { return 1 }); d > maxD {
		t.Errorf("attempt 1000: %v, above the cap", d)
	}
}

func TestRunTwice(t *testing.T) {
	e := startEnv(t, nil)
	if err := e.comp.Run(context.Background()); err == nil {
		t.Fatal("a second Run succeeded")
	}
}

func TestDisco(t *testing.T) {
	e := startEnv(t, nil)
	const user = "alice@example.org/res"

	n := e.fc.roundTrip(t, "<iq type='get' id='d1' from='"+user+"' to='"+compJID+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	checkResult(t, n, "d1", user)
	q := n.child(nsDiscoInfo, "query")
	if q == nil || q.hasAttr("node") {
		t.Fatalf("want <query/> without node, got %s", n)
	}
	id := q.child(nsDiscoInfo, "identity")
	if id.attr("category") != "auth" || id.attr("type") != "cert" || id.attr("name") != "saslcert" {
		t.Errorf("identity: %s", id)
	}
	var features []string
	for _, f := range q.elements() {
		if f.XMLName.Local == "feature" {
			features = append(features, f.attr("var"))
		}
	}
	for _, want := range []string{xep0257.NS, NSPlugin, nsDiscoInfo, "urn:xmpp:ping"} {
		if !strings.Contains(strings.Join(features, " "), want) {
			t.Errorf("feature %s missing from %v", want, features)
		}
	}

	// The nodes mod_delegation asks for, from the server.
	n = e.fc.roundTrip(t, "<iq type='get' id='d2' from='example.org' to='"+compJID+"'><query xmlns='http://jabber.org/protocol/disco#info' node='urn:xmpp:delegation:2::urn:xmpp:saslcert:1'/></iq>")
	checkResult(t, n, "d2", domain)
	q = n.child(nsDiscoInfo, "query")
	if q.attr("node") != "urn:xmpp:delegation:2::urn:xmpp:saslcert:1" || len(q.elements()) != 1 ||
		q.elements()[0].XMLName.Local != "feature" || q.elements()[0].attr("var") != xep0257.NS {
		t.Errorf("delegation node: %s", n)
	}
	n = e.fc.roundTrip(t, "<iq type='get' id='d3' from='example.org' to='"+compJID+"'><query xmlns='http://jabber.org/protocol/disco#info' node='urn:xmpp:delegation:2:bare:urn:xmpp:saslcert:1'/></iq>")
	checkResult(t, n, "d3", domain)
	q = n.child(nsDiscoInfo, "query")
	if q.attr("node") != "urn:xmpp:delegation:2:bare:urn:xmpp:saslcert:1" || len(q.elements()) != 0 {
		t.Errorf("bare delegation node: %s", n)
	}

	n = e.fc.roundTrip(t, "<iq type='get' id='d4' from='"+user+"' to='"+compJID+"'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>")
	checkError(t, n, "d4", "cancel", "item-not-found")

	n = e.fc.roundTrip(t, "<iq type='get' id='d5' from='"+user+"' to='"+compJID+"'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	checkResult(t, n, "d5", user)
	if q := n.child(nsDiscoItems, "query"); q == nil || len(q.elements()) != 0 {
		t.Errorf("disco#items: %s", n)
	}

	// Pings are answered; unknown IQs get service-unavailable and the stream
	// lives on.
	n = e.fc.roundTrip(t, "<iq type='get' id='p1' from='example.org' to='"+compJID+"'><ping xmlns='urn:xmpp:ping'/></iq>")
	checkResult(t, n, "p1", domain)
	n = e.fc.roundTrip(t, "<iq type='get' id='u1' from='"+user+"' to='"+compJID+"'><unknown xmlns='urn:example'/></iq>")
	checkError(t, n, "u1", "cancel", "service-unavailable")
	n = e.fc.roundTrip(t, "<iq type='get' id='p2' from='example.org' to='"+compJID+"'><ping xmlns='urn:xmpp:ping'/></iq>")
	checkResult(t, n, "p2", domain)
}

func TestDirect(t *testing.T) {
	e := startEnv(t, nil)
	const alice = "alice@example.org/laptop"
	cert := newCert(t, "alice@example.org")
	e.appendDirect(t, alice, "laptop", cert.DER, false)
	if got := len(e.activeCerts(t, "alice@example.org")); got != 1 {
		t.Fatalf("%d active certificates, want 1", got)
	}

	n := e.fc.roundTrip(t, direct("i1", "get", alice, itemsXML))
	checkResult(t, n, "i1", alice)
	items := n.child(xep0257.NS, "items")
	if items == nil || len(items.elements()) != 1 || items.path("item", "name").Text != "laptop" || items.path("item", "x509cert").Text != b64(cert.DER) {
		t.Fatalf("items: %s", n)
	}

	tests := []struct {
		name, iq, id, typ, cond string
	}{
		{"error/unserved domain", direct("x1", "set", "mallory@evil.org/x", appendXML("evil", newCert(t, "mallory@evil.org").DER, false)), "x1", "auth", "forbidden"},
		{"error/from the server domain", direct("x2", "get", "example.org", itemsXML), "x2", "auth", "forbidden"},
		{"error/to a localpart of the component", strings.Replace(direct("x3", "get", alice, itemsXML), "to='"+compJID+"'", "to='bob@"+compJID+"'", 1), "x3", "cancel", "service-unavailable"},
		{"error/wrong type", direct("x4", "get", alice, appendXML("x", cert.DER, false)), "x4", "modify", "bad-request"},
		{"error/unknown payload", direct("x5", "get", alice, "<frob xmlns='urn:xmpp:saslcert:1'/>"), "x5", "cancel", "feature-not-implemented"},
		{"error/duplicate", direct("x6", "set", alice, appendXML("again", cert.DER, false)), "x6", "cancel", "conflict"},
		{"error/another account's cert", direct("x7", "set", alice, appendXML("bob", newCert(t, "bob@example.org").DER, false)), "x7", "modify", "not-acceptable"},
		{"error/unknown name", direct("x8", "set", alice, revokeXML("nope")), "x8", "cancel", "item-not-found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := e.fc.roundTrip(t, tc.iq)
			checkError(t, n, tc.id, tc.typ, tc.cond)
		})
	}
	if got := len(e.activeCerts(t, "alice@example.org")); got != 1 {
		t.Errorf("%d active certificates after refused requests, want 1", got)
	}
	if got := len(e.activeCerts(t, "mallory@evil.org")); got != 0 {
		t.Errorf("mallory has %d certificates", got)
	}
}
