package oauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
)

// stack is an authorization server on loopback HTTP over a real SQLite
// store, and a client's JWKS endpoint whose keys the test rotates.
type stack struct {
	t      testing.TB
	store  *sqlite.DB
	srv    *oauth.Server
	http   *httptest.Server
	issuer string
	jwks   *jwksServer
}

// newStack starts a stack; cfg's Issuer and Store are filled in.
func newStack(t testing.TB, cfg oauth.Config) *stack {
	t.Helper()
	db := sqlitetest.Open(t, sqlite.Options{Now: cfg.Now}) // one clock for both
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	cfg.Issuer, cfg.Store = hs.URL, db
	if cfg.JWKSMinRefetch == 0 {
		cfg.JWKSMinRefetch = time.Nanosecond
	}
	srv, err := oauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.EnsureSigningKey(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.Register(mux)
	st := &stack{t: t, store: db, srv: srv, http: hs, issuer: hs.URL, jwks: newJWKSServer(t)}
	return st
}

// addClient registers a client or fails.
func (st *stack) addClient(c *storage.OAuthClient) {
	st.t.Helper()
	if err := st.store.AddClient(st.t.Context(), c); err != nil {
		st.t.Fatal(err)
	}
}

// jwksServer serves a JWKS the test changes.
type jwksServer struct {
	mu      sync.Mutex
	keys    []*oauth.ClientKey
	fetches int
	url     string
}

func newJWKSServer(t testing.TB) *jwksServer {
	j := &jwksServer{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		j.fetches++
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
		for _, k := range j.keys {
			set.Keys = append(set.Keys, k.PublicJWK())
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(hs.Close)
	j.url = hs.URL + "/jwks.json"
	return j
}

// publish replaces the published keys.
func (j *jwksServer) publish(keys ...*oauth.ClientKey) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys = keys
}

// newKey returns a new P-256 client key.
func newKey(t testing.TB) *oauth.ClientKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: priv})
	k, err := oauth.ParseClientKey(jwk)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// assertion signs an assertion for client valid for a minute.
func (st *stack) assertion(k *oauth.ClientKey, client string) string {
	st.t.Helper()
	a, err := k.SignAssertion(client, st.issuer, time.Now(), time.Minute)
	if err != nil {
		st.t.Fatal(err)
	}
	return a
}

// answer is an HTTP answer read whole.
type answer struct {
	status int
	header http.Header
	body   map[string]any
}

// post sends form to path (with an optional Basic user and password).
func (st *stack) post(path string, form url.Values, basic ...string) answer {
	st.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, st.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	return st.do(req)
}

func (st *stack) do(req *http.Request) answer {
	st.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &a.body); err != nil {
			st.t.Fatalf("%s %s: body %q is not JSON", req.Method, req.URL.Path, b)
		}
	}
	return a
}

// jwtForm is the private_key_jwt client_credentials form.
func jwtForm(assertion, scope string) url.Values {
	v := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {oauth.AssertionType},
		"client_assertion":      {assertion},
	}
	if scope != "" {
		v.Set("scope", scope)
	}
	return v
}

// authenticate checks token with the server's Verifier through a request.
func (st *stack) authenticate(token string) (oauth.Principal, error) {
	r := httptest.NewRequestWithContext(st.t.Context(), http.MethodGet, "/v1/tenants", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return st.srv.Verifier().Authenticate(r)
}
