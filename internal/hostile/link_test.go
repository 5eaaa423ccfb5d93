package hostile

import (
	"context"
	"fmt"
	"time"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
)

// hangul is U+1100: Prosody's stringprep accepts it in a resource, the
// component's PRECIS parser (mellium) refuses it.
const hangul = "\u1100"

// TestIntegrationPeerCannotDropTheLink (issue 10.1): a logged-in user sends
// the component stanzas that Prosody routes but mellium's mux used to fail
// on, which ended the component's stream: every certificate login then got
// temporary-auth-failure until the component reconnected. Each must get its
// exact answer (IQ get/set) or be dropped (messages, presences, results,
// errors), the component must keep its one connection (Connects unchanged),
// and a certificate login right after must succeed. Then all of them again,
// many times in one write.
func TestIntegrationPeerCannotDropTheLink(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	st := stacktest.Start(t, stacktest.Options{Domain: domain})
	st.Register(t, "hamlet")
	st.Register(t, "mallory")
	w := &world{t: t, st: st}
	hamlet := w.login(t, "hamlet")
	cert := stacktest.NewCert(t, certtest.Options{CommonName: "hamlet laptop", XMPPAddrs: []string{"hamlet@" + domain}})
	mustResult(t, hamlet, "set", "", appendXML("laptop", cert.DER))
	comp := st.ComponentJID

	mallory := w.login(t, "mallory")
	// A session bound to a resource the component cannot parse.
	odd, err := st.DialRaw(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { odd.Close() })
	if err := odd.AuthPlain("mallory", st.Password("mallory")); err != nil {
		t.Fatal(err)
	}
	bound, err := odd.Bind(hangul)
	if err != nil {
		t.Fatalf("bind %q: %v", hangul, err)
	}
	if !strings.HasSuffix(bound, "/"+hangul) {
		t.Fatalf("bound %q, want the resource %q", bound, hangul)
	}

	const (
		malformed = "error modify/jid-malformed: an address of this stanza is not a valid JID"
		badReq    = "error modify/bad-request: the stanza could not be processed"
		dropped   = "dropped"
	)
	ping := "<ping xmlns='urn:xmpp:ping'/>"
	type sendCase struct {
		name string
		c    *stacktest.RawClient
		raw  string // a stanza whose id is "x" if an answer is expected
		want string
	}
	cases := []sendCase{
		{"message to a resource PRECIS refuses", mallory, "<message to='" + comp + "/" + hangul + "'><body>x</body></message>", dropped},
		{"presence to a resource PRECIS refuses", mallory, "<presence to='" + comp + "/" + hangul + "'/>", dropped},
		{"ping to a resource PRECIS refuses", mallory, "<iq type='get' id='x' to='" + comp + "/" + hangul + "'>" + ping + "</iq>", malformed},
		{"text before an IQ's payload", mallory, "<iq type='get' id='x' to='" + comp + "'>x" + ping + "</iq>", badReq},
		{"text before a set's payload", mallory, "<iq type='set' id='x' to='" + comp + "'>x<command xmlns='http://jabber.org/protocol/commands' node='x'/></iq>", badReq},
		{"text in a result", mallory, "<iq type='result' id='r' to='" + comp + "'>x</iq>", dropped},
		{"text before an error's error", mallory, "<iq type='error' id='e' to='" + comp + "'>x<error type='cancel'><undefined-condition xmlns='" + stacktest.NSStanzas + "'/></error></iq>", dropped},
		{"message from a resource PRECIS refuses", odd, "<message to='" + comp + "'><body>x</body></message>", dropped},
		{"presence from a resource PRECIS refuses", odd, "<presence to='" + comp + "'/>", dropped},
		{"ping from a resource PRECIS refuses", odd, "<iq type='get' id='x' to='" + comp + "'>" + ping + "</iq>", malformed},
		{"items from a resource PRECIS refuses", odd, "<iq type='get' id='x' to='" + comp + "'>" + itemsXML() + "</iq>", malformed},
		{"forwarded items from a resource PRECIS refuses", odd, "<iq type='get' id='x'>" + itemsXML() + "</iq>", "error modify/jid-malformed: your address is not a valid JID here"},
	}
	connects := st.Comp().Connects()
	check := func(t *testing.T) {
		t.Helper()
		if got := st.Comp().Connects(); got != connects {
			t.Fatalf("the component connected %d times, want %d: the link was dropped", got, connects)
		}
		c, err := st.RawLoginCert(ctxT(t), cert, "")
		if err != nil {
			t.Fatalf("certificate login after the case: %v", err)
		}
		c.Close()
		if got := st.Comp().Connects(); got != connects {
			t.Fatalf("the component connected %d times, want %d: the link was dropped", got, connects)
		}
	}
	// probe checks that the sender's next IQ to the component is answered:
	// the component read past what came before.
	probe := func(t *testing.T, c *stacktest.RawClient) {
		t.Helper()
		n, err := c.IQ("get", comp, ping)
		if err != nil {
			t.Fatalf("ping after the case: %v", err)
		}
		want := "result"
		if c == odd {
			want = malformed
		}
		if got := n.Outcome(); got != want {
			t.Fatalf("ping after the case: %s, want %s", got, want)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.c.NewID()
			if err := tc.c.Send(strings.Replace(tc.raw, "id='x'", "id='"+id+"'", 1)); err != nil {
				t.Fatal(err)
			}
			got := dropped
			if tc.want != dropped {
				n, err := tc.c.Await(id, stepTimeout)
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				got = n.Outcome()
				if strings.Contains(tc.raw, "to='"+comp+"'") && n.Attr("from") != comp {
					t.Errorf("answer from %q, want %q", n.Attr("from"), comp)
				}
			}
			if got != tc.want {
				t.Errorf("answer:\n got: %s\nwant: %s", got, tc.want)
			}
			probe(t, tc.c)
			check(t)
		})
	}

	t.Run("all of them, 20 times, in one write each", func(t *testing.T) {
		for round := range 20 {
			var b strings.Builder
			for _, tc := range cases {
				if tc.c == mallory {
					b.WriteString(strings.Replace(tc.raw, "id='x'", "id='"+mallory.NewID()+"'", 1))
				}
			}
			if err := mallory.Send(b.String()); err != nil {
				t.Fatal(err)
			}
			b.Reset()
			for _, tc := range cases {
				if tc.c == odd {
					b.WriteString(strings.Replace(tc.raw, "id='x'", "id='"+odd.NewID()+"'", 1))
				}
			}
			if err := odd.Send(b.String()); err != nil {
				t.Fatal(err)
			}
			if round%5 == 4 {
				c, err := st.RawLoginCert(ctxT(t), cert, "")
				if err != nil {
					t.Fatalf("round %d: certificate login during the flood: %v", round, err)
				}
				c.Close()
			}
		}
		probe(t, mallory)
		probe(t, odd)
		check(t)
	})
}

// lateDisables commits state changes only once the request's context has
// ended: a write that lands just at --request-timeout (slow disk, slow CA).
type lateDisables struct{ storage.Store }

func (s lateDisables) SetState(ctx context.Context, account, name string, to storage.State, actor string) (*storage.Cert, error) {
	<-ctx.Done()
	return s.Store.SetState(context.WithoutCancel(ctx), account, name, to, actor)
}

// TestIntegrationLateChangeKeepsTheLink (issue 16, change notices): a disable
// committed just as its request's deadline passes used to make the component
// drop its whole link (the <changed/> notice inherited the expired deadline),
// logging everyone out. Now the notice has its own deadline: the link stays
// (Connects unchanged), the plugin's cache does not keep the disabled
// certificate's grant (its login is refused at once, although it was cached
// moments before), and another certificate still logs in.
func TestIntegrationLateChangeKeepsTheLink(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	st := stacktest.Start(t, stacktest.Options{Domain: domain, RequestTimeout: 2 * time.Second,
		WrapStore: func(s storage.Store) storage.Store { return lateDisables{s} }})
	st.Register(t, "hamlet")
	w := &world{t: t, st: st}
	hamlet := w.login(t, "hamlet")
	laptop := stacktest.NewCert(t, certtest.Options{CommonName: "hamlet laptop", XMPPAddrs: []string{"hamlet@" + domain}})
	phone := stacktest.NewCert(t, certtest.Options{CommonName: "hamlet phone", XMPPAddrs: []string{"hamlet@" + domain}})
	mustResult(t, hamlet, "set", "", appendXML("laptop", laptop.DER))
	mustResult(t, hamlet, "set", "", appendXML("phone", phone.DER))
	// The plugin caches the laptop's grant (max-age: the cache TTL).
	for range 2 {
		c, err := st.RawLoginCert(ctxT(t), laptop, "")
		if err != nil {
			t.Fatalf("laptop login before the disable: %v", err)
		}
		c.Close()
	}
	connects := st.Comp().Connects()

	n, err := hamlet.IQ("set", "", nameOnlyXML("disable", "laptop"))
	if err != nil {
		t.Fatalf("disable: %v", err)
	}
	t.Logf("the late disable was answered: %s", n.Outcome())

	if got := st.Comp().Connects(); got != connects {
		t.Fatalf("the component connected %d times, want %d: a late change dropped the link", got, connects)
	}
	c, err := st.DialRaw(ctxT(t), laptop)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := c.Auth("EXTERNAL", "=")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Outcome(); got != "failure not-authorized: "+textNotRegistered {
		t.Errorf("the disabled laptop's login after the late disable: %s", got)
	}
	p, err := st.RawLoginCert(ctxT(t), phone, "")
	if err != nil {
		t.Fatalf("phone login after the late disable: %v", err)
	}
	p.Close()
	if got := st.Comp().Connects(); got != connects {
		t.Fatalf("the component connected %d times, want %d: a late change dropped the link", got, connects)
	}
}

// TestIntegrationLargeItemsKeepTheLink: with limits whose product exceeds
// what Prosody accepts from a component in one stanza (512 KiB), a user's
// <items/> answer used to make Prosody close the component's stream
// ("stanza too big"), so any user with many large certificates could drop
// the link at will. The component now refuses to send it: the user gets an
// error, the link stays, logins go on.
func TestIntegrationLargeItemsKeepTheLink(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	const certs = 40
	st := stacktest.Start(t, stacktest.Options{Domain: domain,
		Limits: xep0257.Limits{MaxPerAccount: certs, MaxCertSize: 16 << 10, MaxNameLen: 64}})
	st.Register(t, "hamlet")
	w := &world{t: t, st: st}
	hamlet := w.login(t, "hamlet")
	names := make([]string, 320)
	for i := range names {
		names[i] = fmt.Sprintf("padding-host-%04d.%s", i, domain)
	}
	var first *certtest.Cert
	for i := range certs {
		c := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"hamlet@" + domain}, DNSNames: names})
		if first == nil {
			first = c
		}
		mustResult(t, hamlet, "set", "", appendXML(fmt.Sprintf("c%02d", i), c.DER))
	}
	connects := st.Comp().Connects()
	n, err := hamlet.IQ("get", "", itemsXML())
	if err != nil {
		t.Fatalf("items: %v", err)
	}
	if got, want := n.Outcome(), "error wait/internal-server-error"; got != want {
		t.Errorf("items: %s, want %s", got, want)
	}
	c, err := st.RawLoginCert(ctxT(t), first, "")
	if err != nil {
		t.Fatalf("certificate login after the items request: %v", err)
	}
	c.Close()
	if got := st.Comp().Connects(); got != connects {
		t.Fatalf("the component connected %d times, want %d: the items answer dropped the link", got, connects)
	}
}
