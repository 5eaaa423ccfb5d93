package oauth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/storage"
)

// GrantClientCredentials is RFC 6749 §4.4's grant type.
const GrantClientCredentials = "client_credentials"

// accessClaims are the claims of an access token (RFC 9068 §2.2).
type accessClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

// tokenResponse is RFC 6749 §5.1's answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// token is POST /oauth2/token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	form, err := readForm(w, r)
	if err != nil {
		return err
	}
	gt := form.Get("grant_type")
	label := gt // the metrics label: a fixed set
	if gt != GrantClientCredentials && gt != GrantJWTBearer {
		label = "other"
	}
	client, method, sc, err := s.grant(r, form, gt)
	if err != nil {
		code := httperr.ServerError
		if he := (*httperr.Error)(nil); errors.As(err, &he) {
			code = he.Code
		}
		s.cfg.Observer.TokenRefused(label, code)
		return s.fail(r, err)
	}
	tok, exp, err := s.issue(r, client.ID, sc)
	if err != nil {
		s.cfg.Observer.TokenRefused(label, httperr.ServerError)
		return s.fail(r, err)
	}
	s.cfg.Observer.TokenGranted(label, string(method))
	s.log.Info("oauth: token granted", "client", client.ID, "method", method, "scope", sc.String(), "exp", exp)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	return json.NewEncoder(w).Encode(tokenResponse{
		AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(s.cfg.TokenLifetime / time.Second), Scope: sc.String(),
	})
}

// grant authenticates the client by the grant type's rules and decides the
// token's scope.
func (s *Server) grant(r *http.Request, form url.Values, gt string) (*storage.OAuthClient, authMethod, Scope, error) {
	var client *storage.OAuthClient
	var method authMethod
	var err error
	switch gt {
	case GrantClientCredentials:
		client, method, err = s.authenticateClient(r.Context(), r, form)
	case GrantJWTBearer:
		client, err = s.bearerGrant(r, form)
		method = "jwt-bearer"
	case "":
		err = httperr.New(httperr.InvalidRequest, "grant_type missing")
	default:
		err = httperr.New(httperr.UnsupportedGrantType, "grant_type %q not supported (client_credentials, %s)", gt, GrantJWTBearer)
	}
	if err != nil {
		return nil, method, Scope{}, err
	}
	sc, err := s.grantScope(client, form.Get("scope"))
	return client, method, sc, err
}

// bearerGrant authenticates RFC 7523 §2.1's grant: the assertion is the
// client's, under the failure rate limit; its failures are invalid_grant.
func (s *Server) bearerGrant(r *http.Request, form map[string][]string) (*storage.OAuthClient, error) {
	a := form["assertion"]
	if len(a) == 0 || a[0] == "" {
		return nil, httperr.New(httperr.InvalidRequest, "assertion missing")
	}
	keys := []string{addrKey(r), idKey(unverifiedIssuer(a[0]))}
	if blocked, wait := s.fails.blocked(s.cfg.Now(), keys...); blocked {
		return nil, &httperr.Error{Code: httperr.TooManyRequests, Description: "too many failed authentications; wait", RetryAfter: wait}
	}
	client, err := s.verifyAssertion(r.Context(), a[0], "")
	if ce := (*credentialError)(nil); errors.As(err, &ce) {
		s.fails.failed(s.cfg.Now(), keys...)
		s.log.Info("oauth: assertion grant refused", "addr", keys[0], "reason", ce.desc)
		return nil, httperr.New(httperr.InvalidGrant, "assertion: %s", ce.desc)
	}
	return client, err
}

// grantScope decides the scope of a token: the requested actions (all the
// client's if none), the requested tenant (the client's only one if none),
// the seat if asked. Never more than the client was registered for.
// Errors: invalid_scope.
func (s *Server) grantScope(client *storage.OAuthClient, requested string) (Scope, error) {
	sc, err := ParseScope(requested)
	if err != nil {
		return Scope{}, httperr.New(httperr.InvalidScope, "%v", err)
	}
	for _, a := range sc.Actions {
		if !slices.Contains(client.Scopes, a) {
			return Scope{}, httperr.New(httperr.InvalidScope, "scope %s not granted to client %s", a, client.ID)
		}
	}
	if len(sc.Actions) == 0 {
		for _, a := range ActionScopes {
			if slices.Contains(client.Scopes, a) {
				sc.Actions = append(sc.Actions, a)
			}
		}
	}
	if len(sc.Actions) == 0 {
		return Scope{}, httperr.New(httperr.InvalidScope, "client %s has no action scope", client.ID)
	}
	if sc.Tenant == "" {
		if len(client.Tenants) != 1 {
			return Scope{}, httperr.New(httperr.InvalidScope, "name one tenant:<domain> (client %s has several)", client.ID)
		}
		sc.Tenant = client.Tenants[0]
	}
	if !slices.Contains(client.Tenants, sc.Tenant) {
		return Scope{}, httperr.New(httperr.InvalidScope, "tenant %s not granted to client %s", sc.Tenant, client.ID)
	}
	if s.cfg.Tenants != nil && !slices.Contains(s.cfg.Tenants, sc.Tenant) {
		return Scope{}, httperr.New(httperr.InvalidScope, "tenant %s is not a served domain", sc.Tenant)
	}
	return sc, nil
}

// issue signs an access token for client with scope sc.
func (s *Server) issue(r *http.Request, client string, sc Scope) (string, time.Time, error) {
	k, err := s.keys.signer(r.Context())
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.cfg.Now()
	exp := now.Add(s.cfg.TokenLifetime)
	c := accessClaims{
		Claims: jwt.Claims{
			Issuer: s.cfg.Issuer, Subject: client, Audience: jwt.Audience{s.cfg.Issuer},
			Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(now), ID: newJTI(),
		},
		ClientID: client,
		Scope:    sc.String(),
	}
	tok, err := jwt.Signed(k.signer).Claims(c).Serialize()
	return tok, exp, err
}

// newJTI returns a random token id.
func newJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
