package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/storage"
)

// grant gets a token for client hr with key k.
func (st *stack) grant(k *oauth.ClientKey, client, scope string) string {
	st.t.Helper()
	a := st.post(oauth.TokenPath, jwtForm(st.assertion(k, client), scope))
	if a.status != 200 {
		st.t.Fatalf("grant: %d %v", a.status, a.body)
	}
	return a.body["access_token"].(string)
}

// checkHTTPErr checks err is an *httperr.Error of code whose description
// starts with desc.
func checkHTTPErr(t *testing.T, err error, code, desc string) {
	t.Helper()
	var he *httperr.Error
	if !errors.As(err, &he) || he.Code != code || !strings.HasPrefix(he.Description, desc) {
		t.Errorf("error %v, want %s %q", err, code, desc)
		return
	}
	if he.Challenge != httperr.Bearer {
		t.Errorf("%v: no Bearer challenge", err)
	}
}

// TestVerifierHostile: the resource side refuses every token that does not
// hold, with invalid_token (401) or invalid_request (400), never a Principal.
func TestVerifierHostile(t *testing.T) {
	st := newStack(t, oauth.Config{FailureBurst: 1000})
	k := newKey(t)
	jwks, _ := jsonJWKS(k)
	st.addClient(&storage.OAuthClient{ID: "hr", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, JWKS: jwks})
	st.addClient(&storage.OAuthClient{ID: "gone", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, JWKS: jwks})
	good := st.grant(k, "hr", "")
	revoked := st.grant(k, "hr", "")
	if a := st.post(oauth.RevokePath, url.Values{"token": {revoked}, "client_assertion_type": {oauth.AssertionType}, "client_assertion": {st.assertion(k, "hr")}}); a.status != 200 {
		t.Fatalf("revoke: %d %v", a.status, a.body)
	}
	ofRemoved := st.grant(k, "gone", "")
	if err := st.store.RemoveClient(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2]

	// A token signed by a key of saslcert's own shape that is not saslcert's.
	foreign := newKey(t)
	fs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: foreign.Signer, KeyID: foreign.KeyID}}, (&jose.SignerOptions{}).WithType("at+jwt"))
	forged, _ := jwt.Signed(fs).Claims(map[string]any{"iss": st.issuer, "aud": st.issuer, "client_id": "hr", "scope": "certs:read tenant:example.org",
		"jti": "x", "exp": time.Now().Add(time.Minute).Unix()}).Serialize()

	for _, tc := range []struct {
		name, header, query, code, desc string
	}{
		{name: "valid", header: "Bearer " + good},
		{name: "missing", code: "invalid_token", desc: "access token missing"},
		{name: "not bearer", header: "Basic aHI6eA==", code: "invalid_request", desc: "want Authorization: Bearer <token>"},
		{name: "token in the query", query: "?access_token=" + good, header: "Bearer " + good, code: "invalid_request", desc: "send the access token in the Authorization header"},
		{name: "revoked", header: "Bearer " + revoked, code: "invalid_token", desc: "token revoked"},
		{name: "client removed", header: "Bearer " + ofRemoved, code: "invalid_token", desc: "client no longer registered"},
		{name: "tampered", header: "Bearer " + tampered, code: "invalid_token", desc: "signature does not verify"},
		{name: "foreign key", header: "Bearer " + forged, code: "invalid_token", desc: `unknown key id "` + foreign.KeyID + `"`},
		{name: "assertion as access token", header: "Bearer " + st.assertion(k, "hr"), code: "invalid_token", desc: `typ "JWT" is not at+jwt`},
		{name: "alg none", header: "Bearer " + unsigned(map[string]any{"alg": "none", "typ": "at+jwt"}, map[string]any{"iss": st.issuer}), code: "invalid_token", desc: `alg "none" not allowed`},
		{name: "garbage", header: "Bearer abc.def", code: "invalid_token", desc: "not a signed JWT in compact form"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/tenants"+tc.query, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			p, err := st.srv.Verifier().Authenticate(r)
			if tc.code == "" {
				if err != nil || p.ClientID != "hr" || p.Tenant != "example.org" {
					t.Errorf("%+v, %v", p, err)
				}
				return
			}
			checkHTTPErr(t, err, tc.code, tc.desc)
			if p.ClientID != "" {
				t.Errorf("a principal on error: %+v", p)
			}
		})
	}
}

// TestExpiredToken: an access token stops working at exp (plus leeway).
func TestExpiredToken(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	st := newStack(t, oauth.Config{TokenLifetime: time.Minute, Leeway: time.Second, Now: func() time.Time { return clock() }})
	k := newKey(t)
	jwks, _ := jsonJWKS(k)
	st.addClient(&storage.OAuthClient{ID: "hr", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, JWKS: jwks})
	tok := st.grant(k, "hr", "")
	if _, err := st.authenticate(tok); err != nil {
		t.Fatal(err)
	}
	clock = func() time.Time { return now.Add(time.Minute + 2*time.Second) }
	_, err := st.authenticate(tok)
	checkHTTPErr(t, err, "invalid_token", "token expired")
}

// TestSigningKeyRotation: after `api keys rotate` (RotateSigningKey) new
// tokens carry the new kid, old tokens still verify, and the JWKS
// publishes both.
func TestSigningKeyRotation(t *testing.T) {
	st := newStack(t, oauth.Config{KeyRefresh: time.Nanosecond})
	k := newKey(t)
	jwks, _ := jsonJWKS(k)
	st.addClient(&storage.OAuthClient{ID: "hr", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, JWKS: jwks})
	old := st.grant(k, "hr", "")
	nk, err := oauth.RotateSigningKey(context.Background(), st.store, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fresh := st.grant(k, "hr", "")
	tok, _ := jwt.ParseSigned(fresh, oauth.SignatureAlgs)
	if tok.Headers[0].KeyID != nk.ID {
		t.Errorf("new token's kid %q, want %q", tok.Headers[0].KeyID, nk.ID)
	}
	for _, tk := range []string{old, fresh} {
		if _, err := st.authenticate(tk); err != nil {
			t.Errorf("after rotation: %v", err)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, st.issuer+oauth.JWKSPath, nil)
	a := st.do(req)
	if keys, _ := a.body["keys"].([]any); a.status != 200 || len(keys) != 2 || a.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Errorf("JWKS: %d %v", a.status, a.body)
	}
}

// TestIntrospect: a client sees its own token active, another client's and
// a revoked one inactive.
func TestIntrospect(t *testing.T) {
	st := newStack(t, oauth.Config{})
	k := newKey(t)
	jwks, _ := jsonJWKS(k)
	st.addClient(&storage.OAuthClient{ID: "hr", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, JWKS: jwks})
	secret, hash := oauth.NewSecret()
	st.addClient(&storage.OAuthClient{ID: "desk", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, SecretHash: hash})
	tok := st.grant(k, "hr", "tenant:example.org seat:alice@example.org")
	auth := func() url.Values {
		return url.Values{"client_assertion_type": {oauth.AssertionType}, "client_assertion": {st.assertion(k, "hr")}, "token": {tok}}
	}
	a := st.post(oauth.IntrospectPath, auth())
	if a.status != 200 || a.body["active"] != true || a.body["client_id"] != "hr" || a.body["scope"] != "certs:read tenant:example.org seat:alice@example.org" {
		t.Errorf("own token: %d %v", a.status, a.body)
	}
	if a := st.post(oauth.IntrospectPath, url.Values{"token": {tok}}, "desk", secret); a.status != 200 || a.body["active"] != false || len(a.body) != 1 {
		t.Errorf("another client's token: %d %v, want only active false", a.status, a.body)
	}
	if a := st.post(oauth.RevokePath, url.Values{"token": {tok}}, "desk", secret); a.status != 400 || a.body["error"] != "unauthorized_client" {
		t.Errorf("revoking another client's token: %d %v", a.status, a.body)
	}
	if a := st.post(oauth.IntrospectPath, url.Values{"token": {tok}}); a.status != 401 || a.body["error"] != "invalid_client" {
		t.Errorf("introspection without client authentication: %d %v", a.status, a.body)
	}
	if a := st.post(oauth.RevokePath, auth()); a.status != 200 {
		t.Fatalf("revoke: %d %v", a.status, a.body)
	}
	if a := st.post(oauth.IntrospectPath, auth()); a.status != 200 || a.body["active"] != false {
		t.Errorf("revoked token: %d %v", a.status, a.body)
	}
}

// TestMetadata: RFC 8414's document names the endpoints and methods.
func TestMetadata(t *testing.T) {
	st := newStack(t, oauth.Config{})
	req, _ := http.NewRequest(http.MethodGet, st.issuer+oauth.MetadataPath, nil)
	a := st.do(req)
	if a.status != 200 || a.body["issuer"] != st.issuer || a.body["token_endpoint"] != st.issuer+"/oauth2/token" || a.body["jwks_uri"] != st.issuer+"/oauth2/jwks" {
		t.Errorf("%d %v", a.status, a.body)
	}
	req, _ = http.NewRequest(http.MethodGet, st.issuer+oauth.TokenPath, nil)
	if a := st.do(req); a.status != 405 || a.body["error"] != "method_not_allowed" {
		t.Errorf("GET token: %d %v", a.status, a.body)
	}
}

// TestExternalIssuer: resource-server mode accepts an external issuer's
// at+jwt tokens by its JWKS URL, and nothing with another aud or issuer.
func TestExternalIssuer(t *testing.T) {
	ext := newJWKSServer(t)
	k := newKey(t)
	ext.publish(k)
	const iss, aud = "https://idp.example.org", "https://certs.example.org"
	v, err := oauth.NewExternalVerifier(oauth.ExternalConfig{Issuer: iss, JWKSURL: ext.url, Audience: aud, Tenants: []string{"example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(claims map[string]any) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: jose.JSONWebKey{Key: k.Signer, KeyID: k.KeyID}}, (&jose.SignerOptions{}).WithType("at+jwt"))
		c := map[string]any{"iss": iss, "aud": aud, "client_id": "erp", "scope": "certs:read tenant:example.org", "exp": time.Now().Add(time.Minute).Unix()}
		for k, v := range claims {
			c[k] = v
		}
		tok, _ := jwt.Signed(s).Claims(c).Serialize()
		return tok
	}
	for _, tc := range []struct {
		name   string
		claims map[string]any
		desc   string
	}{
		{"valid", nil, ""},
		{"wrong audience", map[string]any{"aud": "https://other.example"}, "audience is not " + aud},
		{"wrong issuer", map[string]any{"iss": "https://evil.example"}, `issuer "https://evil.example" not accepted`},
		{"tenant not served", map[string]any{"scope": "certs:read tenant:example.net"}, "tenant example.net is not a served domain"},
		{"no tenant", map[string]any{"scope": "certs:read"}, "the token names no tenant"},
		{"expired", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}, "token expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/tenants", nil)
			r.Header.Set("Authorization", "Bearer "+sign(tc.claims))
			p, err := oauth.Verifiers(v).Authenticate(r)
			if tc.desc == "" {
				if err != nil || p.ClientID != "erp" || p.Tenant != "example.org" {
					t.Errorf("%+v, %v", p, err)
				}
				return
			}
			if tc.name == "wrong issuer" {
				checkHTTPErr(t, err, "invalid_token", "token of an issuer not accepted")
				_, _, err = v.Verify(t.Context(), sign(tc.claims))
			}
			checkHTTPErr(t, err, "invalid_token", tc.desc)
		})
	}
}
