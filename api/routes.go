package api

import (
	"net/http"
	"slices"

	"github.com/saslcert/saslcert/oauth"
)

// EnrollPath is the enrolment route's path (server.EnrollPathTemplate names
// the same for WebFinger).
const EnrollPath = "/v1/tenants/{tenant}/accounts/{account}/enroll"

// route is one endpoint: its method and path (a ServeMux pattern, also the
// OpenAPI path), what it needs, and the statuses it answers.
type route struct {
	method, path string
	// scope is the action scope needed ("": any valid token).
	scope string
	// public routes need no token (the OpenAPI document).
	public bool
	// body: the request has a JSON body (Content-Type application/json,
	// at most Config.MaxBody bytes, unknown fields refused).
	body bool
	// idempotent: a POST that honours Idempotency-Key.
	idempotent bool
	// ok are the success statuses; errs the error statuses of this route
	// beyond those every route of its kind answers (commonStatuses).
	ok, errs []int
	h        func(*call) (*reply, error)
}

// table is every route of the API.
func (a *API) table() []route {
	const (
		tenant  = "/v1/tenants/{tenant}"
		account = tenant + "/accounts/{account}"
		cert    = tenant + "/certs/{fingerprint}"
	)
	return []route{
		{method: "GET", path: "/v1/openapi.json", public: true, ok: []int{200}, h: a.openAPI},
		{method: "GET", path: "/v1/tenants", ok: []int{200}, h: a.listTenants},
		{method: "GET", path: tenant + "/certs", scope: oauth.ScopeCertsRead, ok: []int{200}, h: a.searchCerts},
		{method: "GET", path: cert, scope: oauth.ScopeCertsRead, ok: []int{200}, h: a.getCert},
		{method: "POST", path: cert + "/disable", scope: oauth.ScopeCertsWrite, body: true, idempotent: true,
			ok: []int{200}, errs: []int{409}, h: a.disableCert},
		{method: "POST", path: cert + "/revoke", scope: oauth.ScopeCertsWrite, body: true, idempotent: true,
			ok: []int{200}, errs: []int{409}, h: a.revokeCert},
		{method: "GET", path: account + "/certs", scope: oauth.ScopeCertsRead, ok: []int{200}, h: a.accountCerts},
		{method: "POST", path: account + "/certs", scope: oauth.ScopeCertsWrite, body: true, idempotent: true,
			ok: []int{201}, errs: []int{409, 429}, h: a.upload},
		{method: "POST", path: EnrollPath, scope: oauth.ScopeCertsIssue, body: true, idempotent: true,
			ok: []int{201}, errs: []int{406, 409, 429, 502, 503}, h: a.enroll},
		{method: "POST", path: account + "/revoke-all", scope: oauth.ScopeCertsWrite, body: true, idempotent: true,
			ok: []int{200}, h: a.revokeAll},
		{method: "GET", path: tenant + "/audit", scope: oauth.ScopeAuditRead, ok: []int{200}, h: a.audit},
	}
}

// Statuses returns, for every route ("METHOD path"), the statuses it may
// answer, sorted: what the OpenAPI document must list.
func (a *API) Statuses() map[string][]int {
	out := make(map[string][]int, len(a.routes))
	for _, rt := range a.routes {
		s := append(slices.Clone(rt.ok), rt.errs...)
		s = append(s, commonStatuses(rt)...)
		slices.Sort(s)
		out[rt.method+" "+rt.path] = slices.Compact(s)
	}
	return out
}

// commonStatuses are the error statuses every route of rt's kind answers:
// a token (401 missing or bad, 403 scope), a tenant or account (404), a
// parameter or body (400), a body's size and type (413, 415), an
// Idempotency-Key in use (409) or reused for another request (422), and the
// store (500, 503).
func commonStatuses(rt route) []int {
	if rt.public {
		return nil
	}
	s := []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusInternalServerError, http.StatusServiceUnavailable}
	if rt.body {
		s = append(s, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
	}
	if rt.idempotent {
		s = append(s, http.StatusConflict, http.StatusUnprocessableEntity)
	}
	return s
}

// Scopes returns, for every route ("METHOD path"), the action scope it
// needs ("" for any token or none): what the OpenAPI document's security
// must name.
func (a *API) Scopes() map[string]string {
	out := make(map[string]string, len(a.routes))
	for _, rt := range a.routes {
		out[rt.method+" "+rt.path] = rt.scope
	}
	return out
}
