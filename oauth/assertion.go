package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/storage"
)

// The URNs of RFC 7523.
const (
	AssertionType  = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" // §2.2 client_assertion_type
	GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"            // §2.1 grant_type
)

// maxAssertion bounds an assertion's length.
const maxAssertion = 8 << 10

// maxJTI bounds an assertion's jti.
const maxJTI = 256

// credentialError is a client's credential that does not hold: a failed
// authentication (counted by the rate limit), answered with the code of the
// context (invalid_client or invalid_grant).
type credentialError struct {
	desc string
}

func (e *credentialError) Error() string { return e.desc }

func badCredential(format string, args ...any) error {
	return &credentialError{desc: fmt.Sprintf(format, args...)}
}

// headerAlg returns the alg of a compact JWS's protected header, "" if it
// cannot be read.
func headerAlg(raw string) string {
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var v struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	return v.Alg
}

// parseJWS parses a compact JWS signed with an allowed algorithm.
func parseJWS(raw string) (*jwt.JSONWebToken, error) {
	tok, err := jwt.ParseSigned(raw, SignatureAlgs)
	if err != nil {
		if alg := headerAlg(raw); alg != "" && !slices.Contains(SignatureAlgs, jose.SignatureAlgorithm(alg)) {
			return nil, badCredential("alg %q not allowed (allowed: ES256 ES384 RS256 PS256 EdDSA)", alg)
		}
		return nil, badCredential("not a signed JWT in compact form")
	}
	if len(tok.Headers) != 1 {
		return nil, badCredential("want exactly one signature")
	}
	return tok, nil
}

// verifyAssertion checks a client assertion (RFC 7523 §3): signed by a key
// of the client it names, iss = sub = client id (= wantClient if not empty),
// aud the issuer or the token endpoint, exp within AssertionMaxAge, jti
// never used before (recorded until exp). It returns the client. Errors: a
// *credentialError for an assertion that does not hold, other errors for
// failures of the store or of fetching keys.
func (s *Server) verifyAssertion(ctx context.Context, raw, wantClient string) (*storage.OAuthClient, error) {
	if len(raw) > maxAssertion {
		return nil, badCredential("assertion longer than %d bytes", maxAssertion)
	}
	tok, err := parseJWS(raw)
	if err != nil {
		return nil, err
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); isAccessTokenType(typ) {
		return nil, badCredential("an access token is not an assertion")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, badCredential("claims are not a JSON object")
	}
	id := unverified.Issuer
	switch {
	case id == "" || unverified.Subject != id:
		return nil, badCredential("iss and sub must both be the client id")
	case wantClient != "" && id != wantClient:
		return nil, badCredential("iss is not client_id")
	}
	client, err := s.cfg.Store.FindClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, badCredential("unknown client")
	}
	if err != nil {
		return nil, err
	}
	key, err := s.clientKey(ctx, client, h.KeyID)
	if err != nil {
		return nil, err
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, badCredential("key %q is for %s, not %s", key.KeyID, key.Algorithm, h.Algorithm)
	}
	var c jwt.Claims
	if err := tok.Claims(key.Key, &c); err != nil {
		return nil, badCredential("signature does not verify with key %q", key.KeyID)
	}
	if err := s.checkTimes(c, true); err != nil {
		return nil, err
	}
	if !slices.Contains(c.Audience, s.cfg.Issuer) && !slices.Contains(c.Audience, s.tokenURL) {
		return nil, badCredential("aud must be %s (or %s)", s.cfg.Issuer, s.tokenURL)
	}
	if c.ID == "" || len(c.ID) > maxJTI {
		return nil, badCredential("jti missing or longer than %d", maxJTI)
	}
	// Kept until the assertion is refused anyway: exp plus the leeway.
	if err := s.cfg.Store.UseJTI(ctx, client.ID, c.ID, c.Expiry.Time().Add(s.cfg.Leeway+time.Second)); err != nil {
		if errors.Is(err, storage.ErrDuplicate) {
			return nil, badCredential("jti already used: an assertion is good for one request")
		}
		return nil, err
	}
	return client, nil
}

// checkTimes checks exp (required; at most AssertionMaxAge ahead if
// bounded), nbf and iat against the clock with the leeway.
func (s *Server) checkTimes(c jwt.Claims, bounded bool) error {
	now, lw := s.cfg.Now(), s.cfg.Leeway
	switch {
	case c.Expiry == nil:
		return badCredential("exp missing")
	case !now.Before(c.Expiry.Time().Add(lw)):
		return badCredential("expired at %s", c.Expiry.Time().UTC().Format(time.RFC3339))
	case bounded && c.Expiry.Time().After(now.Add(s.cfg.AssertionMaxAge+lw)):
		return badCredential("exp more than %v ahead", s.cfg.AssertionMaxAge)
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(lw)):
		return badCredential("not valid before %s", c.NotBefore.Time().UTC().Format(time.RFC3339))
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(lw)):
		return badCredential("iat in the future")
	}
	return nil
}

// clientKey returns the client's public key kid, from its registered JWKS
// or its jwks_uri. An empty kid is allowed only with a registered JWKS of
// one key.
func (s *Server) clientKey(ctx context.Context, client *storage.OAuthClient, kid string) (*jose.JSONWebKey, error) {
	switch {
	case client.JWKS != nil:
		set, err := ParseJWKS(client.JWKS)
		if err != nil {
			return nil, fmt.Errorf("oauth: client %s: registered JWKS: %w", client.ID, err)
		}
		if kid == "" && len(set.Keys) == 1 {
			return &set.Keys[0], nil
		}
		if k := findKey(set, kid); k != nil {
			return k, nil
		}
		return nil, badCredential("unknown key id %q", kid)
	case client.JWKSURI != "":
		if kid == "" {
			return nil, badCredential("kid missing")
		}
		k, err := s.jwks.key(ctx, client.JWKSURI, kid)
		if errors.Is(err, ErrUnknownKey) {
			return nil, badCredential("unknown key id %q", kid)
		}
		if err != nil {
			s.log.Warn("oauth: client key set unavailable", "client", client.ID, "err", err)
			return nil, &httperr.Error{Code: httperr.InvalidClient, Description: "the client's key set could not be fetched", Cause: err}
		}
		return k, nil
	}
	return nil, badCredential("client has no registered keys")
}

// isAccessTokenType reports whether a JWS typ is RFC 9068's.
func isAccessTokenType(typ string) bool {
	t := strings.ToLower(typ)
	return t == "at+jwt" || t == "application/at+jwt"
}
