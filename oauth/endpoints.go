package oauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/saslcert/saslcert/httperr"
)

// serveJWKS is GET /oauth2/jwks: the current and still-published keys.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) error {
	set, err := s.keys.jwks(r.Context())
	if err != nil {
		return s.fail(r, err)
	}
	if set.Keys == nil {
		set.Keys = []jose.JSONWebKey{}
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	return json.NewEncoder(w).Encode(set)
}

// metadata is GET /.well-known/oauth-authorization-server (RFC 8414).
func (s *Server) metadata(w http.ResponseWriter, r *http.Request) error {
	auth := []string{string(authBasic), string(authPost), string(authJWT)}
	algs := make([]string, len(SignatureAlgs))
	for i, a := range SignatureAlgs {
		algs[i] = string(a)
	}
	scopes := append([]string{}, ActionScopes...)
	m := map[string]any{
		"issuer":                                s.cfg.Issuer,
		"token_endpoint":                        s.tokenURL,
		"jwks_uri":                              s.cfg.Issuer + JWKSPath,
		"introspection_endpoint":                s.cfg.Issuer + IntrospectPath,
		"revocation_endpoint":                   s.cfg.Issuer + RevokePath,
		"grant_types_supported":                 []string{GrantClientCredentials, GrantJWTBearer},
		"response_types_supported":              []string{},
		"scopes_supported":                      scopes,
		"token_endpoint_auth_methods_supported": auth,
		"token_endpoint_auth_signing_alg_values_supported":         algs,
		"introspection_endpoint_auth_methods_supported":            auth,
		"introspection_endpoint_auth_signing_alg_values_supported": algs,
		"revocation_endpoint_auth_methods_supported":               auth,
		"revocation_endpoint_auth_signing_alg_values_supported":    algs,
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	return json.NewEncoder(w).Encode(m)
}

// introspection is RFC 7662's answer.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Jti       string `json:"jti,omitempty"`
}

// tokenRequest reads an introspection or revocation request: the client
// (authenticated as at the token endpoint) and the token it names. ok is
// false for a token that does not hold (expired, forged, revoked, not
// saslcert's); err is the request's failure.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request) (client string, p Principal, exp time.Time, ok bool, err error) {
	form, err := readForm(w, r)
	if err != nil {
		return "", p, exp, false, err
	}
	c, _, err := s.authenticateClient(r.Context(), r, form)
	if err != nil {
		return "", p, exp, false, s.fail(r, err)
	}
	raw := form.Get("token")
	if raw == "" {
		return "", p, exp, false, httperr.New(httperr.InvalidRequest, "token missing")
	}
	p, exp, err = s.own.Verify(r.Context(), raw)
	if he := (*httperr.Error)(nil); errors.As(err, &he) && he.Code == httperr.InvalidToken {
		return c.ID, Principal{}, exp, false, nil
	}
	if err != nil {
		return "", p, exp, false, s.fail(r, err)
	}
	return c.ID, p, exp, true, nil
}

// introspect is POST /oauth2/introspect (RFC 7662): an authenticated
// client learns whether a token of its own is active. Tokens of other
// clients, and tokens that do not hold, are {"active": false}.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) error {
	client, p, exp, ok, err := s.tokenRequest(w, r)
	if err != nil {
		return err
	}
	ans := introspection{}
	if ok && p.ClientID == client {
		sc := Scope{Actions: p.Scopes, Tenant: p.Tenant, Seat: p.Seat}
		ans = introspection{Active: true, Scope: sc.String(), ClientID: p.ClientID, TokenType: "Bearer",
			Exp: exp.Unix(), Sub: p.ClientID, Iss: s.cfg.Issuer, Jti: p.TokenID}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(ans)
}

// revoke is POST /oauth2/revoke (RFC 7009): an authenticated client revokes
// one of its access tokens until it expires. A token that does not hold
// (expired, malformed, not ours) is answered 200 as the RFC says; a token of
// another client is refused.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) error {
	client, p, exp, ok, err := s.tokenRequest(w, r)
	if err != nil {
		return err
	}
	if ok {
		if p.ClientID != client {
			return httperr.New(httperr.UnauthorizedClient, "the token was issued to another client")
		}
		if err := s.cfg.Store.RevokeToken(r.Context(), p.TokenID, exp.Add(s.cfg.Leeway+time.Second)); err != nil {
			return s.fail(r, err)
		}
		s.log.Info("oauth: token revoked", "client", client, "jti", p.TokenID)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}
