package oauth_test

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/storage"
)

// ccConfig is a clientcredentials client using private_key_jwt through its
// endpoint parameters.
func (st *stack) ccConfig(client, assertion string, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:  client,
		TokenURL:  st.issuer + oauth.TokenPath,
		Scopes:    scopes,
		AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{
			"client_assertion_type": {oauth.AssertionType},
			"client_assertion":      {assertion},
		},
	}
}

// TestPrivateKeyJWTRotation: a client publishing its keys at a jwks_uri
// rotates them during the test; the new key works at once (unknown kid:
// refetch), the removed key stops working.
func TestPrivateKeyJWTRotation(t *testing.T) {
	st := newStack(t, oauth.Config{})
	k1, k2 := newKey(t), newKey(t)
	st.jwks.publish(k1)
	st.addClient(&storage.OAuthClient{ID: "hr", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead, oauth.ScopeCertsWrite}, JWKSURI: st.jwks.url})

	tok, err := st.ccConfig("hr", st.assertion(k1, "hr"), "certs:read", "tenant:example.org").Token(t.Context())
	if err != nil {
		t.Fatalf("token with k1: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.Extra("scope") != "certs:read tenant:example.org" {
		t.Errorf("token type %q scope %v", tok.TokenType, tok.Extra("scope"))
	}
	p, err := st.authenticate(tok.AccessToken)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	want := oauth.Principal{ClientID: "hr", Tenant: "example.org", Scopes: []string{"certs:read"}, TokenID: p.TokenID}
	if p.ClientID != want.ClientID || p.Tenant != want.Tenant || p.Seat != "" || !slices.Equal(p.Scopes, want.Scopes) || p.TokenID == "" {
		t.Errorf("principal %+v, want %+v", p, want)
	}

	// Daily rotation: k2 is published, k1 removed.
	st.jwks.publish(k2)
	if _, err := st.ccConfig("hr", st.assertion(k2, "hr")).Token(t.Context()); err != nil {
		t.Fatalf("token with the new key k2: %v", err)
	}
	_, err = st.ccConfig("hr", st.assertion(k1, "hr")).Token(t.Context())
	checkRetrieve(t, "removed key k1", err, http.StatusUnauthorized, "invalid_client", `private_key_jwt: unknown key id "`+k1.KeyID+`"`)

	// A kid that was never published, after the rotation.
	k3 := newKey(t)
	_, err = st.ccConfig("hr", st.assertion(k3, "hr")).Token(t.Context())
	checkRetrieve(t, "unknown kid", err, http.StatusUnauthorized, "invalid_client", `private_key_jwt: unknown key id "`+k3.KeyID+`"`)
}

// checkRetrieve checks an oauth2 token error.
func checkRetrieve(t *testing.T, name string, err error, status int, code, desc string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("%s: %v, want a RetrieveError", name, err)
	}
	if re.Response.StatusCode != status || re.ErrorCode != code || (desc != "" && re.ErrorDescription != desc) {
		t.Errorf("%s: %d %s %q, want %d %s %q", name, re.Response.StatusCode, re.ErrorCode, re.ErrorDescription, status, code, desc)
	}
}

// TestClientSecret: client_secret_basic and client_secret_post through
// clientcredentials; the secret is stored as an argon2id hash.
func TestClientSecret(t *testing.T) {
	st := newStack(t, oauth.Config{})
	secret, hash := oauth.NewSecret()
	st.addClient(&storage.OAuthClient{ID: "desk", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead, oauth.ScopeAuditRead}, SecretHash: hash})
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cc := &clientcredentials.Config{ClientID: "desk", ClientSecret: secret, TokenURL: st.issuer + oauth.TokenPath, AuthStyle: style,
			Scopes: []string{"audit:read", "seat:alice@example.org", "tenant:example.org"}}
		tok, err := cc.Token(t.Context())
		if err != nil {
			t.Fatalf("style %d: %v", style, err)
		}
		p, err := st.authenticate(tok.AccessToken)
		if err != nil || p.Seat != "alice@example.org" || !slices.Equal(p.Scopes, []string{"audit:read"}) {
			t.Errorf("style %d: %+v, %v", style, p, err)
		}
		cc.ClientSecret = "wrong"
		_, err = cc.Token(t.Context())
		checkRetrieve(t, "wrong secret", err, http.StatusUnauthorized, "invalid_client", "")
	}
	if got, _ := st.store.FindClient(t.Context(), "desk"); got.SecretHash == secret || got.SecretHash[:10] != "$argon2id$" {
		t.Errorf("stored %q", got.SecretHash)
	}
}

// TestJWTBearerGrant: RFC 7523 §2.1 (seed 002's flow), no client
// authentication besides the assertion; a replay is invalid_grant.
func TestJWTBearerGrant(t *testing.T) {
	st := newStack(t, oauth.Config{})
	k := newKey(t)
	jwks, _ := jsonJWKS(k)
	st.addClient(&storage.OAuthClient{ID: "cloud", Tenants: []string{"example.org", "example.net"}, Scopes: []string{oauth.ScopeCertsIssue}, JWKS: jwks})
	form := url.Values{"grant_type": {oauth.GrantJWTBearer}, "assertion": {st.assertion(k, "cloud")}, "scope": {"tenant:example.net"}}
	a := st.post(oauth.TokenPath, form)
	if a.status != 200 || a.body["scope"] != "certs:issue tenant:example.net" || a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("grant: %d %v", a.status, a.body)
	}
	a = st.post(oauth.TokenPath, form)
	if a.status != 400 || a.body["error"] != "invalid_grant" || a.body["error_description"] != "assertion: jti already used: an assertion is good for one request" {
		t.Errorf("replay: %d %v", a.status, a.body)
	}
	form.Set("assertion", st.assertion(k, "cloud"))
	form.Del("scope")
	if a := st.post(oauth.TokenPath, form); a.status != 400 || a.body["error"] != "invalid_scope" {
		t.Errorf("no tenant with two tenants registered: %d %v", a.status, a.body)
	}
}
