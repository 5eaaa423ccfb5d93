package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/component"
	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/server"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
)

// TestServeOAuth: serve's wiring puts the OAuth2 server on the service's
// HTTP listener (real loopback sockets), with the served domains as its
// tenants and its grants counted in the metrics; the Authenticator it
// returns accepts the token.
func TestServeOAuth(t *testing.T) {
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + httpLn.Addr().String()
	sc := serveConfig{
		comp:  component.Config{Addr: "127.0.0.1:1", JID: jid.MustParse("certs.example.org"), Secret: []byte("s"), ServerDomains: []string{"example.org"}},
		http:  server.HTTPConfig{Listen: httpLn.Addr().String(), PublicURL: base + "/"},
		oauth: oauthSettings{tokenLifetime: time.Minute},
	}
	db := sqlitetest.Open(t, sqlite.Options{})
	svc, err := server.New(server.Config{Component: sc.comp, HTTP: sc.http}, server.Deps{Store: db, HTTPListener: httpLn, MetricsListener: metricsLn})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{now: time.Now, log: slog.New(slog.DiscardHandler)}
	auth, err := setupOAuth(t.Context(), e, sc, db, svc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pemKey, _ := os.ReadFile(writeKey(t, t.TempDir(), "hr.key", priv))
	key, err := oauth.ParseClientKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := oauth.PublicJWKS(key)
	// example.net is registered but not served: never granted.
	if err := db.AddClient(t.Context(), &storage.OAuthClient{ID: "hr", Tenants: []string{"example.org", "example.net"}, Scopes: []string{oauth.ScopeCertsRead}, JWKS: set}); err != nil {
		t.Fatal(err)
	}
	grant := func(scope string) (int, map[string]any) {
		a, err := key.SignAssertion("hr", base, time.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.PostForm(base+oauth.TokenPath, url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {oauth.AssertionType},
			"client_assertion": {a}, "scope": {scope}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	status, body := grant("tenant:example.org")
	if status != 200 || body["expires_in"] != float64(60) {
		t.Fatalf("grant: %d %v", status, body)
	}
	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/tenants", nil)
	r.Header.Set("Authorization", "Bearer "+body["access_token"].(string))
	if p, err := auth.Authenticate(r); err != nil || p.ClientID != "hr" || p.Tenant != "example.org" {
		t.Errorf("Authenticate: %+v, %v", p, err)
	}
	if status, body := grant("tenant:example.net"); status != 400 || body["error_description"] != "tenant example.net is not a served domain" {
		t.Errorf("unserved tenant: %d %v", status, body)
	}
	resp, err := http.Get("http://" + metricsLn.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`saslcert_oauth_tokens_granted_total{client_auth="private_key_jwt",grant_type="client_credentials"} 1`,
		`saslcert_oauth_token_failures_total{error="invalid_scope",grant_type="client_credentials"} 1`,
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
}
