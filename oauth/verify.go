package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/storage"
)

// keySource finds a verification key by kid.
type keySource interface {
	key(ctx context.Context, kid string) (*jose.JSONWebKey, error)
}

// Verifier checks access tokens (RFC 9068 JWTs) of one issuer: saslcert's
// own (Server.Verifier: revocation and the client's registration are
// checked too) or an external authorization server's (NewExternalVerifier:
// resource-server mode). It implements Authenticator.
type Verifier struct {
	issuer   string
	audience string
	keys     keySource
	store    storage.OAuthStore // own tokens only: revocation, client still registered
	tenants  []string
	now      func() time.Time
	leeway   time.Duration
}

var _ Authenticator = (*Verifier)(nil)

// ExternalConfig configures a Verifier of another issuer's access tokens.
type ExternalConfig struct {
	// Issuer is the external authorization server's issuer identifier
	// (the iss of its tokens).
	Issuer string
	// JWKSURL is where it publishes its keys (https, or http on loopback).
	JWKSURL string
	// Audience is the aud its tokens must name for saslcert: saslcert's
	// public URL.
	Audience string
	// Tenants, if not nil, are the served domains a token may name.
	Tenants []string
	// JWKSMaxAge and JWKSMinRefetch as in Config.
	JWKSMaxAge, JWKSMinRefetch time.Duration
	Leeway                     time.Duration
	HTTPClient                 *http.Client
	Now                        func() time.Time
}

// NewExternalVerifier returns a Verifier of the tokens of an external
// issuer. Its tokens carry the same scopes as saslcert's own
// (tenant:<domain>, action scopes, optionally seat:<JID>) and a client_id.
func NewExternalVerifier(cfg ExternalConfig) (*Verifier, error) {
	if u, err := url.Parse(cfg.Issuer); err != nil || u.Host == "" {
		return nil, fmt.Errorf("oauth: external issuer %q: want an absolute URL", cfg.Issuer)
	}
	if err := CheckJWKSURI(cfg.JWKSURL); err != nil {
		return nil, fmt.Errorf("oauth: external issuer: %w", err)
	}
	if cfg.Audience == "" {
		return nil, errors.New("oauth: external issuer: no audience (saslcert's public URL)")
	}
	if cfg.JWKSMaxAge <= 0 {
		cfg.JWKSMaxAge = DefaultJWKSMaxAge
	}
	if cfg.JWKSMinRefetch <= 0 {
		cfg.JWKSMinRefetch = DefaultJWKSMinRefetch
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newFetchClient()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cache := &jwksCache{client: cfg.HTTPClient, now: cfg.Now, maxAge: cfg.JWKSMaxAge, minInterval: cfg.JWKSMinRefetch}
	return &Verifier{
		issuer: cfg.Issuer, audience: cfg.Audience, keys: uriKeys{cache, cfg.JWKSURL},
		tenants: cfg.Tenants, now: cfg.Now, leeway: cfg.Leeway,
	}, nil
}

// uriKeys is a keySource on one URL of a jwksCache.
type uriKeys struct {
	c   *jwksCache
	uri string
}

func (u uriKeys) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	return u.c.key(ctx, u.uri, kid)
}

// Issuer is the iss of the tokens v accepts.
func (v *Verifier) Issuer() string { return v.issuer }

// Authenticate implements Authenticator: the Bearer token of r's
// Authorization header.
func (v *Verifier) Authenticate(r *http.Request) (Principal, error) {
	raw, err := BearerToken(r)
	if err != nil {
		return Principal{}, err
	}
	p, _, err := v.Verify(r.Context(), raw)
	return p, err
}

// BearerToken returns the token of r's "Authorization: Bearer" header.
// Errors: invalid_token (none), invalid_request (malformed, or a token in
// the query or a form), both with a Bearer challenge.
func BearerToken(r *http.Request) (string, error) {
	if r.URL.Query().Has("access_token") {
		return "", &httperr.Error{Code: httperr.InvalidRequest, Description: "send the access token in the Authorization header, not the URL", Challenge: httperr.Bearer}
	}
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", &httperr.Error{Code: httperr.InvalidToken, Description: "access token missing", Challenge: httperr.Bearer}
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if len(h) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
		return "", &httperr.Error{Code: httperr.InvalidRequest, Description: "want Authorization: Bearer <token>", Challenge: httperr.Bearer}
	}
	return tok, nil
}

// Verify checks an access token and returns whom it speaks for and its
// expiry. Errors: *httperr.Error: invalid_token with a Bearer challenge for
// a token that does not hold, temporarily_unavailable (503) when the store
// or the issuer's key set cannot be read.
func (v *Verifier) Verify(ctx context.Context, raw string) (Principal, time.Time, error) {
	bad := func(format string, args ...any) (Principal, time.Time, error) {
		return Principal{}, time.Time{}, &httperr.Error{Code: httperr.InvalidToken, Description: fmt.Sprintf(format, args...), Challenge: httperr.Bearer}
	}
	if len(raw) > maxAssertion {
		return bad("token too long")
	}
	tok, err := parseJWS(raw)
	if err != nil {
		return bad("%v", err)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !isAccessTokenType(typ) && (v.store != nil || !strings.EqualFold(typ, "JWT")) {
		return bad("typ %q is not at+jwt", typ)
	}
	key, err := v.keys.key(ctx, h.KeyID)
	if errors.Is(err, ErrUnknownKey) {
		return bad("unknown key id %q", h.KeyID)
	}
	if err != nil {
		return Principal{}, time.Time{}, unavailable(err)
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return bad("key %q is for %s", key.KeyID, key.Algorithm)
	}
	var c accessClaims
	if err := tok.Claims(key.Key, &c); err != nil {
		return bad("signature does not verify")
	}
	now := v.now()
	switch {
	case c.Issuer != v.issuer:
		return bad("issuer %q not accepted", c.Issuer)
	case !slices.Contains(c.Audience, v.audience):
		return bad("audience is not %s", v.audience)
	case c.Expiry == nil || !now.Before(c.Expiry.Time().Add(v.leeway)):
		return bad("token expired")
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(v.leeway)):
		return bad("token not valid yet")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(v.leeway)):
		return bad("token issued in the future")
	case c.ClientID == "":
		return bad("client_id missing")
	case v.store != nil && c.ID == "":
		return bad("jti missing")
	}
	sc, err := ParseScope(c.Scope)
	if err != nil {
		return bad("scope: %v", err)
	}
	if sc.Tenant == "" {
		return bad("the token names no tenant")
	}
	if v.tenants != nil && !slices.Contains(v.tenants, sc.Tenant) {
		return bad("tenant %s is not a served domain", sc.Tenant)
	}
	if v.store != nil {
		if err := v.checkOwn(ctx, c, sc); err != nil {
			return Principal{}, time.Time{}, unavailable(err)
		}
	}
	return Principal{ClientID: c.ClientID, Tenant: sc.Tenant, Seat: sc.Seat, Scopes: sc.Actions, TokenID: c.ID}, c.Expiry.Time(), nil
}

// unavailable passes an *httperr.Error on and turns other errors (the
// store, a key set that cannot be fetched) into temporarily_unavailable
// (503): not the token's fault, and never a 500.
func unavailable(err error) error {
	if he := (*httperr.Error)(nil); errors.As(err, &he) {
		return err
	}
	return &httperr.Error{Code: httperr.Unavailable, Description: "cannot check the token now; try again", RetryAfter: time.Second, Cause: err}
}

// checkOwn checks what only saslcert knows of its own tokens: not revoked,
// the client still registered and still granted the scope.
func (v *Verifier) checkOwn(ctx context.Context, c accessClaims, sc Scope) error {
	bad := func(d string) error {
		return &httperr.Error{Code: httperr.InvalidToken, Description: d, Challenge: httperr.Bearer}
	}
	revoked, err := v.store.TokenRevoked(ctx, c.ID)
	if err != nil {
		return err
	}
	if revoked {
		return bad("token revoked")
	}
	client, err := v.store.FindClient(ctx, c.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return bad("client no longer registered")
	}
	if err != nil {
		return err
	}
	if !slices.Contains(client.Tenants, sc.Tenant) {
		return bad("tenant no longer granted to the client")
	}
	for _, a := range sc.Actions {
		if !slices.Contains(client.Scopes, a) {
			return bad("scope no longer granted to the client")
		}
	}
	return nil
}

// Verifiers returns an Authenticator that checks a token with the Verifier
// of its issuer (read from the token before verification; the chosen
// Verifier checks it again).
func Verifiers(vs ...*Verifier) Authenticator { return verifiers(vs) }

type verifiers []*Verifier

func (vs verifiers) Authenticate(r *http.Request) (Principal, error) {
	raw, err := BearerToken(r)
	if err != nil {
		return Principal{}, err
	}
	iss := unverifiedIssuer(raw)
	for _, v := range vs {
		if v.issuer == iss {
			p, _, err := v.Verify(r.Context(), raw)
			return p, err
		}
	}
	return Principal{}, &httperr.Error{Code: httperr.InvalidToken, Description: "token of an issuer not accepted", Challenge: httperr.Bearer}
}
