package hostile

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/ejabberdtest"
	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/pluginproto"
)

func TestMain(m *testing.M) { stacktest.Main(m) }

// Namespaces the cases write by hand.
const (
	nsCerts      = "urn:xmpp:saslcert:1"
	nsPlugin     = pluginproto.NS
	nsDelegation = "urn:xmpp:delegation:2"
	nsForward    = "urn:xmpp:forward:0"
)

// domain is the test server's domain: the openssl fixtures in testdata name
// hamlet@shakespeare.lit.
const domain = "shakespeare.lit"

// tableEnv names a file to which TestIntegrationHostileInputs writes its
// case table (Markdown).
const tableEnv = "SASLCERT_HOSTILE_TABLE"

// stepTimeout bounds one client step; generous for a loaded 2-core machine.
const stepTimeout = 30 * time.Second

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// fixture reads testdata/name.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(prosodytest.RepoRoot(), "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureDERs returns the DER of every CERTIFICATE block of a PEM fixture.
func fixtureDERs(t testing.TB, name string) [][]byte {
	t.Helper()
	rest := fixture(t, name)
	var out [][]byte
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			out = append(out, b.Bytes)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no certificate", name)
	}
	return out
}

func fixtureDER(t testing.TB, name string) []byte {
	t.Helper()
	if strings.HasSuffix(name, ".der") {
		return fixture(t, name)
	}
	return fixtureDERs(t, name)[0]
}

func b64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

// appendXML is an XEP-0257 <append/> of der under name.
func appendXML(name string, der []byte) string {
	return "<append xmlns='" + nsCerts + "'><name>" + stacktest.Escape(name) + "</name><x509cert>" + b64(der) + "</x509cert></append>"
}

// protoXML is a well-formed message of the plugin protocol as the
// component or the plugin would write it (pluginproto); hostile variants
// are written by hand where they are used.
func protoXML(m xmlstream.Marshaler) string {
	var b strings.Builder
	e := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(e, m.TokenReader()); err != nil {
		panic(err)
	}
	if err := e.Flush(); err != nil {
		panic(err)
	}
	return b.String()
}

func itemsXML() string { return "<items xmlns='" + nsCerts + "'/>" }

func nameOnlyXML(op, name string) string {
	return "<" + op + " xmlns='" + nsCerts + "'><name>" + stacktest.Escape(name) + "</name></" + op + ">"
}

// innerOutcome describes a forge reply: the IQ inside a delegation result
// ("inner ..."), or the reply itself.
func innerOutcome(n *stacktest.Node) string {
	if n == nil {
		return "no reply"
	}
	if n.Attr("type") == "result" {
		if d := n.Child(nsDelegation, "delegation"); d != nil {
			if f := d.Child(nsForward, "forwarded"); f != nil {
				if iq := f.Child("", "iq"); iq != nil {
					return "inner " + iq.Outcome()
				}
			}
		}
	}
	return n.Outcome()
}

// ---------------------------------------------------------------------------

// world is the hostile suite's stack and the state set up before the cases.
type world struct {
	t  *testing.T
	st *stacktest.Stack
	// ca issues the certificates that log in on ejabberd (c2s_cafile); nil
	// on Prosody.
	ca *certtest.Cert

	hamletCert  *certtest.Cert // hamlet's active "laptop" certificate
	disabled    *certtest.Cert // hamlet's, disabled
	revoked     *certtest.Cert // hamlet's, revoked
	expired     *certtest.Cert // hamlet's, stored while valid, expired since
	horatioCert *certtest.Cert // horatio's active "phone"
	horatioLive *stacktest.RawClient
	hamletItems int // active certificates of hamlet
	sharedDER   []byte

	probeMu sync.Mutex
	probe   *stacktest.RawClient // hamlet's password session for probes
}

// newCert is stacktest.NewCert, issued by w.ca on ejabberd (which lets a
// client certificate reach SASL EXTERNAL only if it chains to c2s_cafile).
func (w *world) newCert(t testing.TB, o certtest.Options) *certtest.Cert {
	t.Helper()
	if w.ca != nil {
		o.Parent = w.ca
	}
	return stacktest.NewCert(t, o)
}

// server is an XMPP server a suite runs on.
type server struct {
	name  string
	start stacktest.StartServerFunc
}

// servers are Prosody (stacktest's default) and ejabberd 23.01.
func servers() []server {
	return []server{{"prosody", stacktest.StartProsody}, {"ejabberd", stacktest.StartEjabberd}}
}

// options returns o for srv. On ejabberd (skipped when it is not installed,
// unless SASLCERT_REQUIRE_EJABBERD is set) it also returns a fresh test CA,
// written to c2s_cafile: ejabberd refuses a client certificate that does
// not chain to it before mod_saslcert is asked. On Prosody the CA is nil.
func (srv server) options(t testing.TB, o stacktest.Options) (stacktest.Options, *certtest.Cert) {
	t.Helper()
	o.StartServer = srv.start
	if srv.name != "ejabberd" {
		return o, nil
	}
	ejabberdtest.Skip(t)
	ca := certtest.NewCA(t, "hostile test CA")
	o.ClientCAFile = filepath.Join(t.TempDir(), "c2s_cafile.pem")
	if err := os.WriteFile(o.ClientCAFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return o, ca
}

// login opens a fresh raw password session for user; closed at cleanup.
func (w *world) login(t testing.TB, user string) *stacktest.RawClient {
	t.Helper()
	c, err := w.st.RawLogin(ctxT(t), user)
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// mustResult sends an IQ and fails unless it gets a result.
func mustResult(t testing.TB, c *stacktest.RawClient, typ, to, payload string) *stacktest.Node {
	t.Helper()
	n, err := c.IQ(typ, to, payload)
	if err != nil {
		t.Fatalf("%s: %v", payload[:min(len(payload), 80)], err)
	}
	if n.Outcome() != "result" {
		t.Fatalf("%s: %s", payload[:min(len(payload), 80)], n.Outcome())
	}
	return n
}

// checkAlive proves that the component still answers: hamlet's items (a
// delegated request and a store read) and an EXTERNAL login (a plugin lookup
// and an authorizer decision).
func (w *world) checkAlive(t testing.TB) {
	t.Helper()
	w.probeMu.Lock()
	defer w.probeMu.Unlock()
	n, err := w.probe.IQ("get", "", itemsXML())
	if err != nil {
		t.Fatalf("the component does not answer items any more: %v", err)
	}
	if got := len(n.Child(nsCerts, "items").Children); n.Outcome() != "result" || got != w.hamletItems {
		t.Fatalf("items after the case: %s with %d items, want a result with %d", n.Outcome(), got, w.hamletItems)
	}
	c, err := w.st.RawLoginCert(ctxT(t), w.hamletCert, "")
	if err != nil {
		t.Fatalf("the component no longer lets hamlet log in: %v", err)
	}
	if !strings.HasPrefix(c.Bound, "hamlet@"+domain+"/") {
		t.Fatalf("hamlet's certificate logged in as %s", c.Bound)
	}
	c.Close()
}
