package oauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/storage"
)

// TestJWKSURIHostile: a client's key publisher that misbehaves (too large,
// an error status, a redirect to a set that would verify, private keys,
// too slow) gets its client no token, and saslcert answers invalid_client
// without hanging.
func TestJWKSURIHostile(t *testing.T) {
	k := newKey(t)
	good, _ := jsonJWKS(k)
	goodSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(good) }))
	defer goodSrv.Close()
	priv, _ := oauth.PublicJWKS(k)
	priv = []byte(strings.Replace(string(priv), `"kty"`, `"d": "`+strings.Repeat("A", 43)+`", "kty"`, 1))
	release := make(chan struct{})
	defer close(release)
	cases := []struct {
		name string
		h    http.HandlerFunc
	}{
		{"larger than 64 KiB", func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", oauth.MaxJWKSSize) + `"}`))
		}},
		{"status 500", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", 500) }},
		{"redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, goodSrv.URL, http.StatusFound) }},
		{"private key published", func(w http.ResponseWriter, _ *http.Request) { w.Write(priv) }},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html>")) }},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}},
	}
	st := newStack(t, oauth.Config{HTTPClient: &http.Client{Timeout: 300 * time.Millisecond,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub := httptest.NewServer(tc.h)
			defer pub.Close()
			id := "c" + string(rune('a'+i))
			st.addClient(&storage.OAuthClient{ID: id, Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, JWKSURI: pub.URL})
			a := st.post(oauth.TokenPath, jwtForm(st.assertion(k, id), ""))
			if a.status != 401 || a.body["error"] != "invalid_client" || a.body["error_description"] != "the client's key set could not be fetched" {
				t.Errorf("%d %v, want 401 invalid_client", a.status, a.body)
			}
		})
	}
}
