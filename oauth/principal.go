// Package oauth is saslcert's OAuth2 side: the authorization server (token,
// JWKS, metadata, introspection, revocation; registered clients) and the
// resource-server check of access tokens that the /v1 API relies on.
package oauth

import (
	"net/http"
	"slices"
)

// The action scopes a client may be registered for and ask for. A token
// also names its tenant (tenant:<domain>) and optionally one seat
// (seat:<bare JID>); those are in Principal.Tenant and Principal.Seat, not in
// Scopes.
const (
	ScopeCertsRead  = "certs:read"
	ScopeCertsWrite = "certs:write"
	ScopeCertsIssue = "certs:issue"
	ScopeAuditRead  = "audit:read"
)

// Principal is who an access token speaks for, as the API sees it.
type Principal struct {
	// ClientID is the registered client the token was granted to; changes
	// it makes are audited as "api:" + ClientID.
	ClientID string
	// Tenant is the served XMPP domain the token is limited to (from
	// tenant:<domain>); never empty in an authenticated Principal.
	Tenant string
	// Seat, if not empty, is the one account (bare JID, canonical form)
	// the token is limited to (from seat:<bare JID>).
	Seat string
	// Scopes are the action scopes granted (ScopeCertsRead, ...).
	Scopes []string
	// TokenID is the token's jti (for logs and revocation).
	TokenID string
}

// Has reports whether p was granted the action scope s.
func (p Principal) Has(s string) bool { return slices.Contains(p.Scopes, s) }

// Actor is the audit actor of p's changes: "api:<client id>".
func (p Principal) Actor() string { return "api:" + p.ClientID }

// Authenticator checks the access token of a request (Authorization: Bearer,
// RFC 6750 §2.1 only: never a query parameter). Errors are *httperr.Error
// with code invalid_request (malformed header), invalid_token (missing,
// expired, revoked, bad signature, wrong audience: with a Bearer challenge,
// 401), never a 500 for a bad token.
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}
