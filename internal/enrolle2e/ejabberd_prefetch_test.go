package enrolle2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/ejabberdtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/pluginproto"
	"github.com/saslcert/saslcert/storage"
)

// The prefetch of mod_saslcert (plugins/ejabberd/README.md, "Prefetch"): at
// the stream opened after STARTTLS the module asks the component about the
// client's certificate before <auth/>. These tests play the component with
// a raw XEP-0114 connection (fakeComponent), so that each answer's content
// and moment are the test's choice, and a raw client that pauses between
// opening its stream and sending <auth/>.

// prefetchTimeout is mod_saslcert's timeout in these tests.
const prefetchTimeout = 3 * time.Second

// prefetchStack is a real ejabberd with mod_saslcert (options as tweak
// sets them; nil: the defaults) whose component is a fakeComponent, a test
// CA in c2s_cafile and the account alice.
type prefetchStack struct {
	*stacktest.Stack
	ca   *certtest.Cert
	comp *fakeComponent
}

func newPrefetchStack(t *testing.T, tweak func(*ejabberdtest.Options)) *prefetchStack {
	t.Helper()
	if testing.Short() {
		t.Skip("full-stack integration test (-short)")
	}
	ejabberdtest.Skip(t)
	ca := certtest.NewCA(t, "prefetch test CA")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	st := stacktest.Start(t, stacktest.Options{
		PluginTimeout: prefetchTimeout,
		NoComponent:   true,
		StartServer: func(tb testing.TB, o stacktest.ServerOptions) stacktest.Server {
			eo := ejabberdtest.Options{Domain: o.Domain, CAFile: caFile, Timeout: o.PluginTimeout}
			if tweak != nil {
				tweak(&eo)
			}
			return stacktest.EjabberdServer(ejabberdtest.Start(tb, eo))
		},
	})
	st.Register(t, "alice")
	return &prefetchStack{Stack: st, ca: ca, comp: dialFakeComponent(t, st)}
}

// cert is a certificate of the test CA naming account.
func (st *prefetchStack) cert(t *testing.T, account string) *certtest.Cert {
	t.Helper()
	return stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{account}, Parent: st.ca})
}

// open connects presenting cert and opens the stream after STARTTLS; the
// client then waits for the caller to send <auth/>.
func (st *prefetchStack) open(t *testing.T, cert *certtest.Cert) *stacktest.RawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), stepTimeout)
	defer cancel()
	c, err := st.DialRaw(ctx, cert)
	if err != nil {
		t.Fatalf("opening a stream: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestEjabberdPrefetch checks what the module makes of prefetch answers:
// a grant overtaken by a change before <auth/> is not used; a grant for
// another account than ejabberd picked makes the module ask with the
// account; no answer refuses with temporary-auth-failure; and certificates
// whose chain ejabberd does not verify cost the component no lookup; an
// orphaned answer is swept from the module's table.
func TestEjabberdPrefetch(t *testing.T) {
	st := newPrefetchStack(t, nil)
	fc := st.comp
	alice := "alice@" + st.Domain

	t.Run("changed-after-grant", func(t *testing.T) {
		// Prefetch answered "granted", then the component tells the module
		// the certificate (or its account) changed, then <auth/>: the
		// module must ask again (the forgets counter moved) and follow the
		// new answer.
		for _, tc := range []struct {
			name    string
			payload func(fp string) string
		}{
			{"revoked", func(fp string) string {
				return "<revoked xmlns='" + pluginproto.NS + "' jid='" + alice + "' fingerprint='" + fp + "'/>"
			}},
			{"disabled", func(fp string) string {
				return "<disabled xmlns='" + pluginproto.NS + "' jid='" + alice + "/phone' fingerprint='" + fp + "'/>"
			}},
			{"changed", func(string) string { return "<changed xmlns='" + pluginproto.NS + "' jid='" + alice + "'/>" }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cert := st.cert(t, alice)
				c := st.open(t, cert)
				pre := fc.nextFor(t, cert.DER)
				if pre.authzid != "" {
					t.Fatalf("the first lookup has authzid %q; want a prefetch (none)", pre.authzid)
				}
				fc.grant(t, pre, alice)
				fc.tell(t, tc.payload(storage.FingerprintOf(cert.DER).String()))
				auth := authExternal(c)
				select {
				case o := <-auth:
					t.Fatalf("<auth/> after <%s/>: %s without asking the component again; the prefetched grant was used", tc.name, o)
				case again := <-fc.lookups:
					l := parseLookup(t, again)
					if !bytes.Equal(l.der, cert.DER) || l.authzid != alice {
						t.Fatalf("the second lookup: authzid %q, same certificate %v; want authzid %s for the same certificate", l.authzid, bytes.Equal(l.der, cert.DER), alice)
					}
					fc.refuse(t, l)
				}
				if o := <-auth; !outcomeIs(o, "failure not-authorized") {
					t.Fatalf("<auth/> after <%s/> and the component's refusal: %s; want failure not-authorized", tc.name, o)
				}
				t.Logf("prefetch granted, then <%s/>, then <auth/>: asked again (authzid %s), refused", tc.name, alice)
			})
		}
	})

	t.Run("grant-for-another-account", func(t *testing.T) {
		// The prefetch (no authzid) grants bob for a certificate naming
		// alice, the account ejabberd picks: the module must not use it,
		// and asks with authzid alice.
		for _, tc := range []struct {
			name, second, want string
		}{
			{"second-grants-alice", alice, "success"},
			{"second-grants-bob-too", "bob@" + st.Domain, "failure not-authorized"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cert := st.cert(t, alice)
				c := st.open(t, cert)
				fc.grant(t, fc.nextFor(t, cert.DER), "bob@"+st.Domain)
				auth := authExternal(c)
				select {
				case o := <-auth:
					t.Fatalf("<auth/> after a prefetch granting bob: %s without asking again", o)
				case again := <-fc.lookups:
					l := parseLookup(t, again)
					if !bytes.Equal(l.der, cert.DER) || l.authzid != alice {
						t.Fatalf("the second lookup: authzid %q; want %s for the same certificate", l.authzid, alice)
					}
					fc.grant(t, l, tc.second)
				}
				if o := <-auth; !outcomeIs(o, tc.want) {
					t.Fatalf("prefetch granting bob, then a lookup granting %s: %s; want %s", tc.second, o, tc.want)
				}
				t.Logf("prefetch granting bob for alice's certificate: asked again; a grant for %s gives %s", tc.second, tc.want)
			})
		}
	})

	t.Run("no-answer", func(t *testing.T) {
		// The component reads the prefetch and never answers (nor any
		// lookup after it): temporary-auth-failure, never success.
		cert := st.cert(t, alice)
		c := st.open(t, cert)
		fc.nextFor(t, cert.DER)
		if o := <-authExternal(c); !outcomeIs(o, "failure temporary-auth-failure") {
			t.Fatalf("<auth/> with the prefetch unanswered: %s; want failure temporary-auth-failure", o)
		}
		t.Log("a prefetch the component never answers: <auth/> refused temporary-auth-failure")
	})

	t.Run("unverified-chain-no-lookup", func(t *testing.T) {
		// Throwaway self-signed certificates (ejabberd's TLS layer does
		// not verify their chain against c2s_cafile) open streams and try
		// EXTERNAL: none of them may cost a lookup. The component's
		// connection is in order, so the next lookup it sees must be the
		// CA-issued certificate's that opens a stream afterwards.
		selfSigned := make([][]byte, 3)
		for i := range selfSigned {
			ss := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{alice}})
			selfSigned[i] = ss.DER
			c := dialPresenting(t, st.S, stacktest.TLSCert(ss))
			o := <-authExternal(c)
			if o == "success" {
				t.Fatalf("a self-signed certificate logged in on ejabberd")
			}
			if strings.Contains(o, "Failed to get peer certificate") {
				t.Fatalf("ejabberd did not get the self-signed certificate: %s", o)
			}
			if i == 0 {
				t.Logf("a self-signed certificate presented: ejabberd answered <auth/> with %s", o)
			}
		}
		cert := st.cert(t, alice)
		c := st.open(t, cert)
		for {
			l := fc.next(t)
			for _, der := range selfSigned {
				if bytes.Equal(l.der, der) {
					t.Fatalf("the module asked the component about a self-signed certificate (authzid %q)", l.authzid)
				}
			}
			if bytes.Equal(l.der, cert.DER) {
				fc.grant(t, l, alice)
				break
			}
		}
		if o := <-authExternal(c); o != "success" {
			t.Fatalf("the CA-issued certificate after them: %s; want success", o)
		}
		t.Logf("%d self-signed certificates opened streams and tried EXTERNAL: no lookup; the CA-issued one's lookup came next", len(selfSigned))
	})

	t.Run("orphaned-answer-swept", func(t *testing.T) {
		// A prefetch answer that no login will read (ejabberd_iq's process
		// wrote it after the c2s process ended: a race no client can
		// steer) is deleted by the module's sweep once past its time. The
		// test writes such an entry into the module's table as that
		// process would and waits for it to go.
		e, _ := stacktest.Ejabberd(st.S)
		out, err := e.Eval(`T = rpc:call(Node, erlang, monotonic_time, [millisecond]), ` +
			`rpc:call(Node, ets, insert, [mod_saslcert_prefetch, {saslcert_test_orphan, timeout, T - 1}])`)
		if err != nil || strings.TrimSpace(out) != "true" {
			t.Fatalf("writing an orphaned answer into mod_saslcert_prefetch: %q %v", out, err)
		}
		for deadline := time.Now().Add(eventTimeout); ; time.Sleep(time.Second) {
			out, err := e.Eval(`rpc:call(Node, ets, member, [mod_saslcert_prefetch, saslcert_test_orphan])`)
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(out) == "false" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("an orphaned prefetch answer past its time is still in the table after %v: %q", eventTimeout, out)
			}
		}
		t.Log("an orphaned prefetch answer past its time was swept")
	})
}

// TestEjabberdNoPrefetch: with prefetch: false the module sends no lookup
// before <auth/>, asks with the account ejabberd picked, and follows the
// answer.
func TestEjabberdNoPrefetch(t *testing.T) {
	st := newPrefetchStack(t, func(o *ejabberdtest.Options) { o.NoPrefetch = true })
	fc := st.comp
	alice := "alice@" + st.Domain
	for _, tc := range []struct {
		name, want string
		grant      bool
	}{
		{"granted", "success", true},
		{"refused", "failure not-authorized", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := st.cert(t, alice)
			c := st.open(t, cert)
			auth := authExternal(c)
			l := fc.nextFor(t, cert.DER)
			if l.authzid != alice {
				t.Fatalf("the first lookup has authzid %q; want %s (with prefetch: false nothing is asked before <auth/>)", l.authzid, alice)
			}
			if tc.grant {
				fc.grant(t, l, alice)
			} else {
				fc.refuse(t, l)
			}
			if o := <-auth; !outcomeIs(o, tc.want) {
				t.Fatalf("prefetch: false, component %s: %s; want %s", tc.name, o, tc.want)
			}
			t.Logf("prefetch: false: one lookup with authzid %s after <auth/>; %s", alice, tc.want)
		})
	}
}

// TestEjabberdLookupLimit: lookups are counted per client address (the
// prefetch included); past lookup_burst the prefetch is not sent and the
// login is refused with temporary-auth-failure before any lookup.
func TestEjabberdLookupLimit(t *testing.T) {
	st := newPrefetchStack(t, func(o *ejabberdtest.Options) { o.LookupBurst, o.LookupRate = 2, 0.001 })
	fc := st.comp
	alice := "alice@" + st.Domain
	// Two prefetches (the burst), used by their logins.
	for i := range 2 {
		cert := st.cert(t, alice)
		c := st.open(t, cert)
		fc.grant(t, fc.nextFor(t, cert.DER), alice)
		if o := <-authExternal(c); o != "success" {
			t.Fatalf("login %d within the burst: %s; want success", i+1, o)
		}
	}
	// The third stream from 127.0.0.1: no token for a prefetch, none for a
	// lookup. (A prefetch sent anyway would go unanswered and end in the
	// timeout's text; a lookup would not be answered either.)
	cert := st.cert(t, alice)
	c := st.open(t, cert)
	const want = "failure temporary-auth-failure: Too many certificate logins from your address; try again later"
	if o := <-authExternal(c); o != want {
		t.Fatalf("a login past the burst of 2: %s; want %s", o, want)
	}
	t.Log("lookup_burst 2: two logins, then " + want)
}
