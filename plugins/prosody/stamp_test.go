package prosody_test

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"testing"

	"mellium.im/xmlstream"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/pluginproto"
)

// stampMAC is the MAC docs/PLUGIN-PROTOCOL.md ("auth stamp") specifies
// (pluginproto.StampMAC, whose byte format pluginproto's tests pin).
func stampMAC(secret, jidStr, id, method, fingerprint, manage string) string {
	return pluginproto.StampMAC([]byte(secret), jidStr, id, method, fingerprint, manage)
}

// stamps returns the auth stamps among p's top-level children.
func stamps(p probe) []map[string]string {
	var out []map[string]string
	for _, c := range p.Children {
		if c.Name.Space == nsPlugin && c.Name.Local == "auth" {
			out = append(out, c.Attr)
		}
	}
	return out
}

// TestAuthStamp: every IQ set a bound client session sends to the
// component (also one pipelined behind bind) reaches it with exactly one
// stamp after its payload, saying how the session logged in, under a MAC
// keyed by the component secret; gets carry none; a stamp a client put in a
// stanza never reaches the component.
func TestAuthStamp(t *testing.T) {
	s := startServer(t)
	fc := startComponent(t, s)
	comp := s.ComponentJID
	probeIQ := func(typ, id string) string {
		return fmt.Sprintf(`<iq type='%s' id='%s' to='%s'><probe xmlns='%s'/></iq>`, typ, id, comp, nsProbe)
	}
	check := func(t *testing.T, p probe, bound, id, method, fingerprint, manage string) {
		t.Helper()
		st := stamps(p)
		if len(st) != 1 || p.Children[len(p.Children)-1].Name.Local != "auth" {
			t.Fatalf("%s: %d stamps (children %+v); want one, after the payload", id, len(st), p.Children)
		}
		a := st[0]
		if a["jid"] != bound || a["id"] != id || a["method"] != method || a["fingerprint"] != fingerprint || a["manage"] != manage {
			t.Fatalf("%s: stamp %v; want jid %s, id %s, method %s, fingerprint %q, manage %s", id, a, bound, id, method, fingerprint, manage)
		}
		if want := stampMAC(s.ComponentSecret, bound, id, method, fingerprint, manage); a["mac"] != want {
			t.Fatalf("%s: mac %s; want %s", id, a["mac"], want)
		}
		// The component's strict decoding accepts it, and its MAC verifies.
		start := xml.StartElement{Name: xml.Name{Space: nsPlugin, Local: "auth"}}
		for k, v := range a {
			if k != "xmlns" {
				start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: k}, Value: v})
			}
		}
		var ps pluginproto.Stamp
		if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(start), xmlstream.Token(start.End()))).Decode(&ps); err != nil {
			t.Fatalf("%s: the stamp does not decode: %v", id, err)
		}
		if !ps.Verify([]byte(s.ComponentSecret)) {
			t.Fatalf("%s: pluginproto.Stamp.Verify refuses the stamp %v", id, a)
		}
	}

	t.Run("password", func(t *testing.T) {
		c := dialRaw(t, s, nil)
		if err := c.AuthPlain("alice", "alicepw"); err != nil {
			t.Fatal(err)
		}
		bound, err := c.BindThen("pw", probeIQ("set", "p1"))
		if err != nil {
			t.Fatal(err)
		}
		check(t, fc.waitProbe(t), bound, "p1", "other", "", "true")
		c.send(probeIQ("get", "p2"))
		if p := fc.waitProbe(t); len(stamps(p)) != 0 {
			t.Fatalf("a get carries a stamp: %+v", p)
		}
		// A message with a stamp the client made up arrives without it.
		c.send(fmt.Sprintf(`<message to='%s'><probe xmlns='%s'/><auth xmlns='%s' jid='%s' id='m' method='other' manage='true' mac='00'/></message>`,
			comp, nsProbe, nsPlugin, bound))
		if p := fc.waitProbe(t); len(stamps(p)) != 0 || len(p.Children) != 1 {
			t.Fatalf("the client's stamp reached the component: %+v", p)
		}
	})

	for _, ncm := range []bool{false, true} {
		t.Run(fmt.Sprintf("certificate/no-cert-management=%v", ncm), func(t *testing.T) {
			cert := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
			fc.set(cert.DER, answer{JID: "alice@example.org", Fingerprint: fingerprint(cert.DER), NoCertManagement: ncm})
			c := dialRaw(t, s, cert)
			if n := c.authExternal("="); n.Outcome() != "success" {
				t.Fatalf("EXTERNAL: %s", n)
			}
			c.open()
			bound, err := c.BindThen("", probeIQ("set", "c1"))
			if err != nil {
				t.Fatal(err)
			}
			check(t, fc.waitProbe(t), bound, "c1", "certificate", fingerprint(cert.DER), strconv.FormatBool(!ncm))
		})
	}
}
