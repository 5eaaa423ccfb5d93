package apie2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/server"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
)

const domain = "example.org"

// issuer is the OAuth issuer identifier of the test stacks (the
// listener's port is not known before it listens; the identifier need
// not be its address).
const issuer = "http://127.0.0.1"

var allScopes = []string{oauth.ScopeCertsRead, oauth.ScopeCertsWrite, oauth.ScopeCertsIssue, oauth.ScopeAuditRead}

// apiStack is a Prosody stack whose component serves the OAuth2 server and
// the API on a loopback HTTP listener, as saslcert serve does.
type apiStack struct {
	*stacktest.Stack
	base  string        // http://127.0.0.1:port
	store *sqlite.DB    // a second handle on the component's database
	oauth *oauth.Server // the authorization server
}

// startAPIStack starts the stack; the API authenticates with the OAuth
// server's Verifier.
func startAPIStack(tb testing.TB) *apiStack {
	tb.Helper()
	dir := tb.TempDir()
	st := &apiStack{}
	stack := stacktest.Start(tb, stacktest.Options{Domain: domain, DataDir: dir,
		HTTP: server.HTTPConfig{Listen: "127.0.0.1:0", PublicURL: issuer},
		BeforeRun: func(svc *server.Service) {
			if st.store == nil {
				db, err := sqlite.Open(context.Background(), filepath.Join(dir, stacktest.DBFile), sqlite.Options{})
				if err != nil {
					tb.Fatal(err)
				}
				tb.Cleanup(func() { db.Close() })
				st.store = db
			}
			srv, err := oauth.New(oauth.Config{Issuer: issuer, Store: st.store, Tenants: []string{domain}})
			if err != nil {
				tb.Fatal(err)
			}
			if err := srv.EnsureSigningKey(context.Background()); err != nil {
				tb.Fatal(err)
			}
			st.oauth = srv
			a, err := svc.API(srv.Verifier())
			if err != nil {
				tb.Fatal(err)
			}
			svc.AddRoutes(srv, a)
		}})
	st.Stack = stack
	svc := stack.Comp().Service()
	deadline := time.Now().Add(time.Minute)
	for svc.HTTPAddr() == nil {
		if time.Now().After(deadline) {
			tb.Fatal("the HTTP listener did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	st.base = "http://" + svc.HTTPAddr().String()
	return st
}

// client registers an OAuth client with a fresh key (its JWKS registered
// with it) and returns its key.
func (st *apiStack) client(tb testing.TB, id string, scopes ...string) *oauth.ClientKey {
	tb.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: priv})
	k, err := oauth.ParseClientKey(jwk)
	if err != nil {
		tb.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.PublicJWK()}})
	if err := st.store.AddClient(tb.Context(), &storage.OAuthClient{ID: id, Tenants: []string{domain}, Scopes: scopes, JWKS: set}); err != nil {
		tb.Fatal(err)
	}
	return k
}

// token gets an access token for client with key k (private_key_jwt through
// clientcredentials' endpoint parameters) for scope, and returns an HTTP
// client that sends it.
func (st *apiStack) token(tb testing.TB, client string, k *oauth.ClientKey, scope ...string) *http.Client {
	tb.Helper()
	assertion, err := k.SignAssertion(client, issuer, time.Now(), time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	cc := &clientcredentials.Config{ClientID: client, TokenURL: st.base + oauth.TokenPath, Scopes: scope,
		AuthStyle: oauth2.AuthStyleInParams, EndpointParams: url.Values{
			"client_assertion_type": {oauth.AssertionType}, "client_assertion": {assertion}}}
	tok, err := cc.Token(tb.Context())
	if err != nil {
		tb.Fatalf("token for %s %v: %v", client, scope, err)
	}
	return oauth2.NewClient(tb.Context(), oauth2.StaticTokenSource(tok))
}

// call sends a JSON request with a bearer token and decodes a JSON answer
// into out (if not nil); it returns the status.
func (st *apiStack) call(tb testing.TB, hc *http.Client, method, path, body string, out any) int {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(tb.Context(), method, st.base+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// loginRefusal tries an EXTERNAL login and returns the SASL condition of
// its refusal ("" if it succeeded).
func (st *apiStack) loginRefusal(tb testing.TB, user string, c *certtest.Cert) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	defer cancel()
	cl, err := st.LoginCert(ctx, user, c, "")
	if err == nil {
		cl.Close()
		return ""
	}
	var ae *xmppclient.AuthError
	if errors.As(err, &ae) {
		return ae.Condition
	}
	tb.Fatalf("login of %s: %v", user, err)
	return ""
}
