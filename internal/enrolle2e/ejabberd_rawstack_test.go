package enrolle2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/pluginproto"
)

// Raw clients and a stand-in saslcert component for the ejabberd module's
// tests that steer each step: a client that presents any certificate and
// pauses before <auth/>, and a component whose answers (content and moment)
// are the test's.

// dialPresenting connects to s's c2s port, presents cert in STARTTLS
// whatever CAs the server names in its certificate request, as an
// attacker's client does (Go's TLS client leaves out a certificate that
// chains to none of them: ejabberd would then see none), and opens the
// stream after TLS.
func dialPresenting(t *testing.T, s stacktest.Server, cert *tls.Certificate) *stacktest.RawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), stepTimeout)
	defer cancel()
	conn, err := s.DialC2S(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := stacktest.OpenRaw(conn, s.Domain())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cfg := s.TLSConfig()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	if err := c.StartTLS(ctx, cfg); err != nil {
		t.Fatalf("STARTTLS presenting a certificate: %v", err)
	}
	return c
}

// authExternal sends <auth mechanism='EXTERNAL'>=</auth> on c and returns a
// channel that gets the server's answer (Node.Outcome, or the error).
func authExternal(c *stacktest.RawClient) <-chan string {
	out := make(chan string, 1)
	go func() {
		n, err := c.Auth("EXTERNAL", "=")
		if err != nil {
			out <- "error: " + err.Error()
			return
		}
		out <- n.Outcome()
	}()
	return out
}

// outcomeIs reports whether the Outcome o is want, with or without a text.
func outcomeIs(o, want string) bool { return o == want || strings.HasPrefix(o, want+": ") }

// fakeComponent is the saslcert component's JID on a raw XEP-0114
// connection: the module's lookups arrive on lookups, answers to the
// fake's own IQs on replies; everything else is dropped.
type fakeComponent struct {
	c                *stacktest.RawClient
	jid, domain      string
	lookups, replies chan *stacktest.Node
}

func dialFakeComponent(t *testing.T, st *stacktest.Stack) *fakeComponent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), stepTimeout)
	defer cancel()
	c, err := st.DialRawComponent(ctx, st.ComponentJID, st.S.ComponentSecret())
	if err != nil {
		t.Fatalf("the stand-in component: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	f := &fakeComponent{c: c, jid: st.ComponentJID, domain: st.Domain,
		lookups: make(chan *stacktest.Node, 64), replies: make(chan *stacktest.Node, 64)}
	// mod_delegation's disco#info query says ejabberd has registered the
	// route (which the handshake's answer may precede).
	for {
		n, err := c.Next(eventTimeout)
		if err != nil {
			t.Fatalf("waiting for mod_delegation's query: %v", err)
		}
		if n.Child("http://jabber.org/protocol/disco#info", "query") != nil {
			break
		}
	}
	go func() {
		for {
			n, err := c.Next(time.Hour)
			if err != nil {
				return // closed at the end of the test
			}
			var to chan *stacktest.Node
			switch {
			case n.XMLName.Local == "iq" && n.Attr("type") == "get" && n.Child(pluginproto.NS, "lookup") != nil:
				to = f.lookups
			case n.XMLName.Local == "iq" && (n.Attr("type") == "result" || n.Attr("type") == "error"):
				to = f.replies
			default:
				continue
			}
			select {
			case to <- n:
			case <-t.Context().Done():
				return
			}
		}
	}()
	return f
}

// lookup is one <lookup/> the module sent: the IQ, its authzid and the
// certificate it names.
type lookup struct {
	iq      *stacktest.Node
	authzid string
	der     []byte
}

func parseLookup(t *testing.T, n *stacktest.Node) lookup {
	t.Helper()
	l := n.Child(pluginproto.NS, "lookup")
	x := l.Child("", "x509cert")
	if x == nil {
		t.Fatalf("a lookup without <x509cert/> (the fake never offers lookups by fingerprint): %s", n)
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(x.Text))
	if err != nil {
		t.Fatalf("the lookup's certificate: %v", err)
	}
	return lookup{iq: n, authzid: l.Attr("authzid"), der: der}
}

// next returns the next lookup the module sent (failing t after
// eventTimeout).
func (f *fakeComponent) next(t *testing.T) lookup {
	t.Helper()
	select {
	case n := <-f.lookups:
		return parseLookup(t, n)
	case <-time.After(eventTimeout):
		t.Fatalf("no lookup reached the component within %v", eventTimeout)
	}
	return lookup{}
}

// nextFor returns the next lookup for the certificate der, skipping those
// left over from earlier steps.
func (f *fakeComponent) nextFor(t *testing.T, der []byte) lookup {
	t.Helper()
	for {
		if l := f.next(t); bytes.Equal(l.der, der) {
			return l
		}
	}
}

// grant answers l with a result naming account.
func (f *fakeComponent) grant(t *testing.T, l lookup, account string) {
	t.Helper()
	f.send(t, "<iq type='result' id='"+stacktest.Escape(l.iq.Attr("id"))+"' from='"+f.jid+"' to='"+f.domain+"'>"+
		"<lookup xmlns='"+pluginproto.NS+"' jid='"+stacktest.Escape(account)+"' no-cert-management='false'/></iq>")
}

// refuse answers l with the component's refusal (auth/not-authorized).
func (f *fakeComponent) refuse(t *testing.T, l lookup) {
	t.Helper()
	f.send(t, "<iq type='error' id='"+stacktest.Escape(l.iq.Attr("id"))+"' from='"+f.jid+"' to='"+f.domain+"'>"+
		"<error type='auth'><not-authorized xmlns='"+stacktest.NSStanzas+"'/><not-authorized xmlns='"+stacktest.NSSASL+"'/></error></iq>")
}

// tell sends the plugin request payload (an IQ set to the server) and
// waits for its result: the module has acted on it then.
func (f *fakeComponent) tell(t *testing.T, payload string) {
	t.Helper()
	id := f.c.NewID()
	f.send(t, "<iq type='set' id='"+id+"' from='"+f.jid+"' to='"+f.domain+"'>"+payload+"</iq>")
	for deadline := time.After(eventTimeout); ; {
		select {
		case n := <-f.replies:
			if n.Attr("id") != id {
				continue
			}
			if n.Attr("type") != "result" {
				t.Fatalf("the module answered %s with %s", payload, n.Outcome())
			}
			return
		case <-deadline:
			t.Fatalf("no answer to %s within %v", payload, eventTimeout)
		}
	}
}

func (f *fakeComponent) send(t *testing.T, s string) {
	t.Helper()
	if err := f.c.Send(s); err != nil {
		t.Fatal(err)
	}
}
