package oauth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/saslcert/saslcert/sasl"
)

// ActionScopes are the action scopes, in the order they are listed.
var ActionScopes = []string{ScopeCertsRead, ScopeCertsWrite, ScopeCertsIssue, ScopeAuditRead}

// The prefixes of the scope tokens that name a tenant and a seat.
const (
	tenantPrefix = "tenant:"
	seatPrefix   = "seat:"
)

// Scope is a parsed scope parameter or claim: action scopes, one tenant and
// at most one seat.
type Scope struct {
	Actions []string // action scopes, each once, in ActionScopes order
	Tenant  string   // "" if the scope named none
	Seat    string   // canonical bare JID of the tenant, "" if none
}

// ParseScope parses a space-separated scope (RFC 6749 §3.3). Every token
// must be an action scope, tenant:<domain> or seat:<bare JID>; at most one
// tenant and one seat, and a seat's domain must be the tenant. Errors name
// the offending token.
func ParseScope(s string) (Scope, error) {
	var sc Scope
	for tok := range strings.FieldsSeq(s) {
		switch {
		case slices.Contains(ActionScopes, tok):
			if !slices.Contains(sc.Actions, tok) {
				sc.Actions = append(sc.Actions, tok)
			}
		case strings.HasPrefix(tok, tenantPrefix):
			t := strings.TrimPrefix(tok, tenantPrefix)
			if sc.Tenant != "" && sc.Tenant != t {
				return Scope{}, fmt.Errorf("scope names two tenants (%s, %s)", sc.Tenant, t)
			}
			if t == "" || strings.ContainsAny(t, "@/") {
				return Scope{}, fmt.Errorf("scope %q: want tenant:<domain>", tok)
			}
			sc.Tenant = t
		case strings.HasPrefix(tok, seatPrefix):
			j, err := sasl.ParseJID(strings.TrimPrefix(tok, seatPrefix))
			if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
				return Scope{}, fmt.Errorf("scope %q: want seat:<bare JID>", tok)
			}
			seat := j.String()
			if sc.Seat != "" && sc.Seat != seat {
				return Scope{}, fmt.Errorf("scope names two seats (%s, %s)", sc.Seat, seat)
			}
			sc.Seat = seat
		default:
			return Scope{}, fmt.Errorf("unknown scope %q (known: %s, tenant:<domain>, seat:<bare JID>)", tok, strings.Join(ActionScopes, " "))
		}
	}
	slices.SortFunc(sc.Actions, func(a, b string) int {
		return slices.Index(ActionScopes, a) - slices.Index(ActionScopes, b)
	})
	if sc.Seat != "" {
		if sc.Tenant == "" {
			return Scope{}, fmt.Errorf("seat:%s needs tenant:<domain>", sc.Seat)
		}
		if _, dom, _ := strings.Cut(sc.Seat, "@"); dom != sc.Tenant {
			return Scope{}, fmt.Errorf("seat %s is not an account of tenant %s", sc.Seat, sc.Tenant)
		}
	}
	return sc, nil
}

// String is the scope's space-separated form: actions, tenant, seat.
func (sc Scope) String() string {
	toks := slices.Clone(sc.Actions)
	if sc.Tenant != "" {
		toks = append(toks, tenantPrefix+sc.Tenant)
	}
	if sc.Seat != "" {
		toks = append(toks, seatPrefix+sc.Seat)
	}
	return strings.Join(toks, " ")
}

// CheckActionScopes reports an error naming the first of scopes that is not
// an action scope (for registering clients).
func CheckActionScopes(scopes []string) error {
	for _, s := range scopes {
		if !slices.Contains(ActionScopes, s) {
			return fmt.Errorf("unknown scope %q (known: %s)", s, strings.Join(ActionScopes, " "))
		}
	}
	return nil
}
