package sasl_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// c2sServer is one in-process XMPP server accepting c2s connections on
// 127.0.0.1 with STARTTLS (client certificate required), SASL EXTERNAL
// decided by an Authorizer, and resource binding that applies forced
// resources.
type c2sServer struct {
	ln    net.Listener
	tls   *tls.Config
	authz *sasl.Authorizer
	cert  *certtest.Cert
	done  chan serverResult
}

// serverResult is what the server saw on one connection.
type serverResult struct {
	err      error // from xmpp.ReceiveSession
	grant    sasl.Grant
	authzErr error   // from Authorize
	wire     string  // what the client sent after TLS
	peerDER  []byte  // the TLS client certificate
	bound    jid.JID // what BindCustom returned
}

func newC2SServer(tb testing.TB, store sasl.CertFinder) *c2sServer {
	tb.Helper()
	cert := certtest.New(tb, certtest.Options{CommonName: "example.org", DNSNames: []string{"example.org"}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &c2sServer{
		ln: ln,
		tls: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{cert.DER}, PrivateKey: cert.Key}},
			ClientAuth:   tls.RequireAnyClientCert,
			MinVersion:   tls.VersionTLS12,
		},
		authz: &sasl.Authorizer{Store: store, Now: func() time.Time { return certtest.Now }, Policy: sasl.Policy{ClockSkew: 5 * time.Minute}},
		cert:  cert,
		done:  make(chan serverResult, 1),
	}
	tb.Cleanup(func() { ln.Close() })
	return s
}

// serveOne accepts one connection and negotiates it.
func (s *c2sServer) serveOne(ctx context.Context) {
	var res serverResult
	defer func() { s.done <- res }()
	conn, err := s.ln.Accept()
	if err != nil {
		res.err = err
		return
	}
	defer conn.Close()
	perm := s.authz.Permissions(ctx, "example.org", func(g sasl.Grant, err error) {
		res.grant, res.authzErr = g, err
	})
	checkPeer := func(n *msasl.Negotiator) bool {
		// The callback sees the TLS state mellium passes to the mechanism.
		if st := n.TLSState(); st != nil && len(st.PeerCertificates) > 0 {
			res.peerDER = st.PeerCertificates[0].Raw
		}
		return perm(n)
	}
	bind := func(_ jid.JID, requested string) (jid.JID, error) {
		if res.authzErr != nil || res.grant.JID.Equal(jid.JID{}) {
			return jid.JID{}, errors.New("bind without a grant")
		}
		// A forced resource wins over the one the client asked for (mellium's
		// client asks for none, so the server picks one otherwise).
		r := res.grant.Resource
		if r == "" {
			r = requested
		}
		if r == "" {
			r = "generated"
		}
		j, err := res.grant.JID.WithResource(r)
		res.bound = j
		return j, err
	}
	var wire bytes.Buffer
	defer func() { res.wire = wire.String() }()
	sess, err := xmpp.ReceiveSession(ctx, conn, 0, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{TeeIn: &wire, Features: []xmpp.StreamFeature{
			xmpp.StartTLS(s.tls),
			xmpp.SASLServer(checkPeer, sasl.External),
			xmpp.BindCustom(bind),
		}}
	}))
	res.err = err
	if err == nil {
		sess.Close()
	}
}

// login connects as origin with client certificate cert and authzid.
func (s *c2sServer) login(ctx context.Context, tb testing.TB, origin string, cert *certtest.Cert, authzid string) (*xmpp.Session, error) {
	tb.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(s.cert.Cert)
	cfg := &tls.Config{
		ServerName:   "example.org",
		RootCAs:      roots,
		Time:         func() time.Time { return certtest.Now },
		Certificates: []tls.Certificate{{Certificate: [][]byte{cert.DER}, PrivateKey: cert.Key}},
		MinVersion:   tls.VersionTLS12,
	}
	conn, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return xmpp.NewClientSession(ctx, jid.MustParse(origin), conn,
		xmpp.StartTLS(cfg),
		xmpp.SASL(authzid, "", sasl.External),
		xmpp.BindResource(),
	)
}

func TestExternalLogin(t *testing.T) {
	alice := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	tablet := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org/tablet"}})
	stranger := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	bob := certtest.New(t, certtest.Options{XMPPAddrs: []string{"bob@example.org"}})
	store := newMemFinder()
	store.add(alice.DER, "alice@example.org", storage.StateActive, "")
	store.add(tablet.DER, "alice@example.org", storage.StateActive, "tablet")
	store.add(bob.DER, "bob@example.org", storage.StateRevoked, "")

	tests := []struct {
		name     string
		origin   string
		cert     *certtest.Cert
		authzid  string
		wantAuth string         // the <auth/> element's content on the wire
		want     string         // bound JID; "" means the login fails
		wantCond sasl.Condition // the server's decision on failure
	}{
		{name: "ok/no-authzid", origin: "alice@example.org/desk", cert: alice, wantAuth: ">=</auth>", want: "alice@example.org/generated"},
		{name: "ok/authzid-bare", origin: "alice@example.org/desk", cert: alice, authzid: "alice@example.org",
			wantAuth: ">" + base64.StdEncoding.EncodeToString([]byte("alice@example.org")) + "</auth>", want: "alice@example.org/generated"},
		{name: "ok/forced-resource", origin: "alice@example.org/desk", cert: tablet, want: "alice@example.org/tablet"},
		{name: "ok/stream-from-ignored", origin: "mallory@example.org/desk", cert: alice, want: "alice@example.org/generated"},
		{name: "error/unknown-cert", origin: "alice@example.org/desk", cert: stranger, wantCond: sasl.NotAuthorized},
		{name: "error/revoked-cert", origin: "bob@example.org/desk", cert: bob, wantCond: sasl.NotAuthorized},
		{name: "error/authzid-other-domain", origin: "alice@example.org/desk", cert: alice, authzid: "alice@example.net", wantCond: sasl.InvalidAuthzid},
		{name: "error/authzid-other-user", origin: "alice@example.org/desk", cert: alice, authzid: "bob@example.org", wantCond: sasl.InvalidAuthzid},
		{name: "error/authzid-full-jid", origin: "alice@example.org/desk", cert: alice, authzid: "alice@example.org/desk", wantCond: sasl.InvalidAuthzid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			srv := newC2SServer(t, store)
			go srv.serveOne(ctx)
			sess, err := srv.login(ctx, t, tc.origin, tc.cert, tc.authzid)
			if sess != nil {
				defer sess.Close()
			}
			res := <-srv.done
			if !strings.Contains(res.wire, "mechanism='EXTERNAL'") && !strings.Contains(res.wire, `mechanism="EXTERNAL"`) {
				t.Errorf("no EXTERNAL <auth/> on the wire: %q", res.wire)
			}
			if !strings.Contains(res.wire, tc.wantAuth) {
				t.Errorf("wire %q does not contain %q", res.wire, tc.wantAuth)
			}
			if string(res.peerDER) != string(tc.cert.DER) {
				t.Errorf("the permissions callback saw peer certificate %x..., want the client's", res.peerDER[:min(8, len(res.peerDER))])
			}
			if tc.want == "" {
				if err == nil {
					t.Fatalf("login succeeded as %s, want a failure", sess.LocalAddr())
				}
				if res.err == nil {
					t.Errorf("server session negotiated, want a failure")
				}
				var f *sasl.Failure
				if !errors.As(res.authzErr, &f) || f.Condition != tc.wantCond {
					t.Errorf("server decision = %v, want %s", res.authzErr, tc.wantCond)
				}
				t.Logf("client: %v; server: %v; decision: %v", err, res.err, res.authzErr)
				return
			}
			if err != nil {
				t.Fatalf("login: %v (server: %v, decision: %v)", err, res.err, res.authzErr)
			}
			if res.err != nil {
				t.Fatalf("server session: %v", res.err)
			}
			if got := sess.LocalAddr().String(); got != tc.want {
				t.Errorf("client bound as %s, want %s", got, tc.want)
			}
			if got := res.bound.String(); got != tc.want {
				t.Errorf("server bound %s, want %s", got, tc.want)
			}
			if res.grant.Fingerprint != storage.FingerprintOf(tc.cert.DER) {
				t.Errorf("grant fingerprint %s, want the client certificate's", res.grant.Fingerprint)
			}
			if sess.State()&xmpp.Secure == 0 || sess.State()&xmpp.Authn == 0 || sess.State()&xmpp.Ready == 0 {
				t.Errorf("client session state %v, want Secure|Authn|Ready", sess.State())
			}
		})
	}
}

// TestExternalMechanism drives the mechanism directly: the client's initial
// response is the authzid, the server passes it to the permissions
// callback, and extra steps are refused.
func TestExternalMechanism(t *testing.T) {
	tests := []struct {
		name    string
		authzid string
	}{
		{name: "empty", authzid: ""},
		{name: "authzid", authzid: "alice@example.org"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := msasl.NewClient(sasl.External, msasl.Credentials(func() ([]byte, []byte, []byte) {
				return []byte("alice"), nil, []byte(tc.authzid)
			}))
			more, resp, err := client.Step(nil)
			if err != nil || more || string(resp) != tc.authzid {
				t.Fatalf("client Step = %v, %q, %v; want false, %q, nil", more, resp, err, tc.authzid)
			}
			if _, _, err := client.Step([]byte("challenge")); !errors.Is(err, msasl.ErrTooManySteps) {
				t.Errorf("client second Step error = %v, want ErrTooManySteps", err)
			}

			for _, allow := range []bool{true, false} {
				var seen []byte
				server := msasl.NewServer(sasl.External, func(n *msasl.Negotiator) bool {
					user, pass, id := n.Credentials()
					if len(user) != 0 || len(pass) != 0 {
						t.Errorf("server credentials user %q pass %q, want none", user, pass)
					}
					seen = id
					return allow
				})
				more, resp, err := server.Step(resp)
				if string(seen) != tc.authzid {
					t.Errorf("permissions saw identity %q, want %q", seen, tc.authzid)
				}
				if more || len(resp) != 0 {
					t.Errorf("server Step = %v, %q; want no challenge", more, resp)
				}
				if allow && err != nil {
					t.Errorf("server Step error = %v, want nil", err)
				}
				if !allow && !errors.Is(err, msasl.ErrAuthn) {
					t.Errorf("server Step error = %v, want ErrAuthn", err)
				}
				if allow {
					server.Reset()
					// After a reset the server takes one message again, but
					// not a second one.
					if _, _, err := server.Step(nil); err != nil {
						t.Errorf("server Step after Reset: %v", err)
					}
					if _, _, err := server.Step(nil); !errors.Is(err, msasl.ErrTooManySteps) {
						t.Errorf("server second Step error = %v, want ErrTooManySteps", err)
					}
				}
			}
		})
	}
}

// TestPermissionsWithoutCertificate: no TLS or no client certificate is
// refused, never granted.
func TestPermissionsWithoutCertificate(t *testing.T) {
	a := &sasl.Authorizer{Store: newMemFinder()}
	var got error
	perm := a.Permissions(t.Context(), "example.org", func(_ sasl.Grant, err error) { got = err })
	for _, opts := range [][]msasl.Option{nil, {msasl.TLSState(tls.ConnectionState{Version: tls.VersionTLS13})}} {
		server := msasl.NewServer(sasl.External, perm, opts...)
		if _, _, err := server.Step(nil); !errors.Is(err, msasl.ErrAuthn) {
			t.Errorf("Step error = %v, want ErrAuthn", err)
		}
		var f *sasl.Failure
		if !errors.As(got, &f) || f.Condition != sasl.MalformedRequest {
			t.Errorf("decision = %v, want malformed-request", got)
		}
	}
}
