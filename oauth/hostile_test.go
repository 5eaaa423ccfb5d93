package oauth_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/storage"
)

// claimsFor are an assertion's claims for client, valid for a minute.
func (st *stack) claimsFor(client string) jwt.Claims {
	now := time.Now()
	return jwt.Claims{Issuer: client, Subject: client, Audience: jwt.Audience{st.issuer}, ID: strings.Repeat("x", 8) + now.Format("150405.000000000"),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
}

// signClaims signs c with k (alg and kid of k).
func signClaims(t *testing.T, k *oauth.ClientKey, c any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: jose.JSONWebKey{Key: k.Signer, KeyID: k.KeyID}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned builds a JWS with alg none.
func unsigned(header map[string]any, c any) string {
	h, _ := json.Marshal(header)
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
}

// TestHostileTokenRequests: each attack on the token endpoint gets its
// exact status, error and description, and grants nothing.
func TestHostileTokenRequests(t *testing.T) {
	st := newStack(t, oauth.Config{FailureBurst: 1000}) // TestFailureRateLimit tests the limit
	k := newKey(t)
	st.jwks.publish(k)
	st.addClient(&storage.OAuthClient{ID: "hr", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, JWKSURI: st.jwks.url})
	secret, hash := oauth.NewSecret()
	st.addClient(&storage.OAuthClient{ID: "desk", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, SecretHash: hash})

	replayed := st.assertion(k, "hr")
	if a := st.post(oauth.TokenPath, jwtForm(replayed, "")); a.status != 200 {
		t.Fatalf("first use: %d %v", a.status, a.body)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(k.Signer.Public())
	hs256 := func(secret []byte) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithHeader("kid", k.KeyID))
		tok, _ := jwt.Signed(s).Claims(st.claimsFor("hr")).Serialize()
		return tok
	}
	pubJWK, _ := json.Marshal(k.PublicJWK())
	with := func(f func(c *jwt.Claims)) string {
		c := st.claimsFor("hr")
		f(&c)
		return signClaims(t, k, c)
	}
	accessToken := func() string {
		a := st.post(oauth.TokenPath, jwtForm(st.assertion(k, "hr"), ""))
		return a.body["access_token"].(string)
	}

	type tc struct {
		name   string
		form   url.Values
		basic  []string
		ctype  string // default form
		raw    string // body instead of form
		status int
		code   string
		desc   string
	}
	cases := []tc{
		{name: "replayed jti", form: jwtForm(replayed, ""), status: 401, code: "invalid_client", desc: "private_key_jwt: jti already used: an assertion is good for one request"},
		{name: "expired", form: jwtForm(with(func(c *jwt.Claims) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(time.Now().Add(-10*time.Minute)), jwt.NewNumericDate(time.Now().Add(-5*time.Minute))
		}), ""), status: 401, code: "invalid_client", desc: "private_key_jwt: expired at "},
		{name: "exp too far ahead", form: jwtForm(with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(time.Hour)) }), ""),
			status: 401, code: "invalid_client", desc: "private_key_jwt: exp more than 5m0s ahead"},
		{name: "no exp", form: jwtForm(with(func(c *jwt.Claims) { c.Expiry = nil }), ""), status: 401, code: "invalid_client", desc: "private_key_jwt: exp missing"},
		{name: "nbf in the future", form: jwtForm(with(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(3 * time.Minute)) }), ""),
			status: 401, code: "invalid_client", desc: "private_key_jwt: not valid before "},
		{name: "wrong aud", form: jwtForm(with(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.example"} }), ""),
			status: 401, code: "invalid_client", desc: "private_key_jwt: aud must be " + st.issuer + " (or " + st.issuer + oauth.TokenPath + ")"},
		{name: "iss is not sub", form: jwtForm(with(func(c *jwt.Claims) { c.Subject = "alice" }), ""),
			status: 401, code: "invalid_client", desc: "private_key_jwt: iss and sub must both be the client id"},
		{name: "no jti", form: jwtForm(with(func(c *jwt.Claims) { c.ID = "" }), ""), status: 401, code: "invalid_client", desc: "private_key_jwt: jti missing or longer than 256"},
		{name: "alg none", form: jwtForm(unsigned(map[string]any{"alg": "none", "kid": k.KeyID}, st.claimsFor("hr")), ""),
			status: 401, code: "invalid_client", desc: `private_key_jwt: alg "none" not allowed (allowed: ES256 ES384 RS256 PS256 EdDSA)`},
		{name: "HS256 keyed with the public key (DER)", form: jwtForm(hs256(pubDER), ""),
			status: 401, code: "invalid_client", desc: `private_key_jwt: alg "HS256" not allowed (allowed: ES256 ES384 RS256 PS256 EdDSA)`},
		{name: "HS256 keyed with the public JWK", form: jwtForm(hs256(pubJWK), ""),
			status: 401, code: "invalid_client", desc: `private_key_jwt: alg "HS256" not allowed (allowed: ES256 ES384 RS256 PS256 EdDSA)`},
		{name: "signed by another key under the client's kid", form: jwtForm(signClaims(t, &oauth.ClientKey{Signer: newKey(t).Signer, Alg: jose.ES256, KeyID: k.KeyID}, st.claimsFor("hr")), ""),
			status: 401, code: "invalid_client", desc: `private_key_jwt: signature does not verify with key "` + k.KeyID + `"`},
		{name: "access token as assertion", form: jwtForm(accessToken(), ""), status: 401, code: "invalid_client", desc: "private_key_jwt: an access token is not an assertion"},
		{name: "unknown client (assertion)", form: jwtForm(st.assertion(k, "nobody"), ""), status: 401, code: "invalid_client", desc: "private_key_jwt: unknown client"},
		{name: "client_id differs from iss", form: func() url.Values { v := jwtForm(st.assertion(k, "hr"), ""); v.Set("client_id", "desk"); return v }(),
			status: 401, code: "invalid_client", desc: "private_key_jwt: iss is not client_id"},
		{name: "scope not granted", form: jwtForm(st.assertion(k, "hr"), "certs:write tenant:example.org"),
			status: 400, code: "invalid_scope", desc: "scope certs:write not granted to client hr"},
		{name: "tenant not granted", form: jwtForm(st.assertion(k, "hr"), "certs:read tenant:example.net"),
			status: 400, code: "invalid_scope", desc: "tenant example.net not granted to client hr"},
		{name: "seat of another tenant", form: jwtForm(st.assertion(k, "hr"), "tenant:example.org seat:bob@example.net"),
			status: 400, code: "invalid_scope", desc: "seat bob@example.net is not an account of tenant example.org"},
		{name: "unknown scope", form: jwtForm(st.assertion(k, "hr"), "admin"),
			status: 400, code: "invalid_scope", desc: `unknown scope "admin" (known: certs:read certs:write certs:issue audit:read, tenant:<domain>, seat:<bare JID>)`},
		{name: "unknown client (secret)", form: url.Values{"grant_type": {"client_credentials"}}, basic: []string{"nobody", secret},
			status: 401, code: "invalid_client", desc: "client_secret_basic: unknown client or wrong secret"},
		{name: "wrong secret", form: url.Values{"grant_type": {"client_credentials"}}, basic: []string{"desk", "wrong"},
			status: 401, code: "invalid_client", desc: "client_secret_basic: unknown client or wrong secret"},
		{name: "secret for a key-only client", form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"hr"}, "client_secret": {secret}},
			status: 401, code: "invalid_client", desc: "client_secret_post: client has no secret; use private_key_jwt"},
		{name: "two authentication methods", form: func() url.Values { v := jwtForm(st.assertion(k, "hr"), ""); v.Set("client_secret", "x"); return v }(),
			status: 400, code: "invalid_request", desc: "use one client authentication method"},
		{name: "no authentication", form: url.Values{"grant_type": {"client_credentials"}}, status: 401, code: "invalid_client"},
		{name: "unsupported grant", form: url.Values{"grant_type": {"password"}}, status: 400, code: "unsupported_grant_type"},
		{name: "no grant type", form: url.Values{}, status: 400, code: "invalid_request", desc: "grant_type missing"},
		{name: "repeated parameter", raw: "grant_type=client_credentials&grant_type=client_credentials", status: 400, code: "invalid_request", desc: "parameter grant_type given 2 times"},
		{name: "malformed body", raw: "grant_type=%zz", status: 400, code: "invalid_request", desc: "malformed form body"},
		{name: "JSON body", raw: `{"grant_type":"client_credentials"}`, ctype: "application/json", status: 400, code: "invalid_request", desc: "want a body of type application/x-www-form-urlencoded"},
		{name: "oversized body", raw: "grant_type=client_credentials&client_assertion=" + strings.Repeat("A", 20<<10), status: 413, code: "payload_too_large", desc: "request body larger than 16384 bytes"},
		{name: "wrong assertion type", form: func() url.Values {
			v := jwtForm(st.assertion(k, "hr"), "")
			v.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return v
		}(), status: 400, code: "invalid_request", desc: "client_assertion_type must be " + oauth.AssertionType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.form.Encode()
			if c.raw != "" {
				body = c.raw
			}
			req, _ := http.NewRequest(http.MethodPost, st.issuer+oauth.TokenPath, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			if c.basic != nil {
				req.SetBasicAuth(c.basic[0], c.basic[1])
			}
			a := st.do(req)
			desc, _ := a.body["error_description"].(string)
			if a.status != c.status || a.body["error"] != c.code || !strings.HasPrefix(desc, c.desc) {
				t.Errorf("%d %v %q, want %d %s %q", a.status, a.body["error"], desc, c.status, c.code, c.desc)
			}
			if a.body["access_token"] != nil {
				t.Error("a token was granted")
			}
			if c.basic != nil && a.status == 401 && a.header.Get("WWW-Authenticate") != `Basic realm="saslcert"` {
				t.Errorf("WWW-Authenticate %q after Basic", a.header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestFailureRateLimit: failed authentications are limited per client id
// (from any address) and per address; the limited id is refused even with
// the right credentials until the limit refills.
func TestFailureRateLimit(t *testing.T) {
	st := newStack(t, oauth.Config{FailureBurst: 3, FailureEvery: time.Hour})
	secret, hash := oauth.NewSecret()
	st.addClient(&storage.OAuthClient{ID: "desk", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, SecretHash: hash})
	form := url.Values{"grant_type": {"client_credentials"}}
	for i := range 3 {
		if a := st.post(oauth.TokenPath, form, "desk", "wrong"); a.status != 401 {
			t.Fatalf("failure %d: %d %v", i, a.status, a.body)
		}
	}
	a := st.post(oauth.TokenPath, form, "desk", secret)
	if a.status != 429 || a.body["error"] != "too_many_requests" || a.header.Get("Retry-After") == "" {
		t.Errorf("after 3 failures: %d %v Retry-After %q, want 429 too_many_requests", a.status, a.body, a.header.Get("Retry-After"))
	}
	// The address is limited too: another client id from it is refused.
	if a := st.post(oauth.TokenPath, form, "other", "x"); a.status != 429 {
		t.Errorf("another id from the same address: %d %v, want 429", a.status, a.body)
	}
}

// TestReplayWithinLeeway: an assertion past its exp but within the clock
// leeway is still refused as a replay (its jti is kept until exp + leeway).
func TestReplayWithinLeeway(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	st := newStack(t, oauth.Config{Now: func() time.Time { return clock() }})
	k := newKey(t)
	jwks, _ := jsonJWKS(k)
	st.addClient(&storage.OAuthClient{ID: "hr", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, JWKS: jwks})
	a, err := k.SignAssertion("hr", st.issuer, now, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.post(oauth.TokenPath, jwtForm(a, "")); r.status != 200 {
		t.Fatalf("first use: %d %v", r.status, r.body)
	}
	clock = func() time.Time { return now.Add(25 * time.Second) } // exp + 15 s, leeway 30 s
	r := st.post(oauth.TokenPath, jwtForm(a, ""))
	if r.status != 401 || r.body["error_description"] != "private_key_jwt: jti already used: an assertion is good for one request" {
		t.Errorf("replay within the leeway: %d %v", r.status, r.body)
	}
	clock = func() time.Time { return now.Add(time.Minute) }
	r = st.post(oauth.TokenPath, jwtForm(a, ""))
	if desc, _ := r.body["error_description"].(string); r.status != 401 || !strings.HasPrefix(desc, "private_key_jwt: expired at") {
		t.Errorf("after the leeway: %d %v", r.status, r.body)
	}
}
