package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/storage"
)

// TestHostile: requests an attacker (or a buggy client) sends, each with the
// exact answer, and the store unchanged after all of them.
func TestHostile(t *testing.T) {
	h := newHarness(t)
	fpA := h.upload("alice@example.org", "laptop", cert(t, "alice@example.org"))
	fpB := h.upload("bob@example.org", "laptop", cert(t, "bob@example.org"))
	h.upload("carol@example.net", "laptop", cert(t, "carol@example.net"))
	upload := uploadBody(t, "new", cert(t, "alice@example.org"))
	bobCSR := fmt.Sprintf(`{"csr": %q}`, catest.CSRPEM(catest.NewCSR(t, catest.CSROptions{Key: certtest.Key(t, certtest.ECDSAP256), XMPPAddr: "bob@example.org"})))
	var crmPage pageAnswer
	h.upload("dave@example.net", "laptop", cert(t, "dave@example.net"))
	h.do("GET", "/v1/tenants/example.net/certs?limit=1", "crm", "").json(t, &crmPage)
	var hrPage pageAnswer
	h.do("GET", "/v1/tenants/example.org/certs?limit=1", "hr", "").json(t, &hrPage)
	if crmPage.Next == "" || hrPage.Next == "" {
		t.Fatal("no cursors to tamper with")
	}
	tampered := []byte(hrPage.Next)
	tampered[3] ^= 1
	const (
		org   = "/v1/tenants/example.org"
		net   = "/v1/tenants/example.net"
		alice = org + "/accounts/alice@example.org"
		bob   = org + "/accounts/bob@example.org"
	)
	noTenantOrg := `no tenant "example.org"`
	cases := []struct {
		name                string
		method, path, token string
		body                string
		hdr                 []string
		status              int
		code, text          string
	}{
		{"no token", "GET", org + "/certs", "", "", nil, 401, "invalid_token", "the access token is missing or not valid"},
		{"cross-tenant search", "GET", org + "/certs", "crm", "", nil, 404, "not_found", noTenantOrg},
		{"cross-tenant read", "GET", org + "/certs/" + fpA, "crm", "", nil, 404, "not_found", noTenantOrg},
		{"cross-tenant read through own tenant", "GET", net + "/certs/" + fpA, "crm", "", nil, 404, "not_found",
			`no certificate ` + fpA + ` in tenant "example.net"`},
		{"cross-tenant revoke", "POST", org + "/certs/" + fpA + "/revoke", "crm", "", nil, 404, "not_found", noTenantOrg},
		{"cross-tenant revoke through own tenant", "POST", net + "/certs/" + fpA + "/revoke", "crm", "", nil, 404, "not_found",
			`no certificate ` + fpA + ` in tenant "example.net"`},
		{"cross-tenant disable through own tenant", "POST", net + "/certs/" + fpA + "/disable", "crm", "", nil, 404, "not_found",
			`no certificate ` + fpA + ` in tenant "example.net"`},
		{"cross-tenant upload", "POST", alice + "/certs", "crm", upload, nil, 404, "not_found", noTenantOrg},
		{"cross-tenant upload through own tenant", "POST", net + "/accounts/alice@example.org/certs", "crm", upload, nil, 404,
			"not_found", `no account "alice@example.org" in tenant "example.net"`},
		{"cross-tenant revoke-all through own tenant", "POST", net + "/accounts/alice@example.org/revoke-all", "crm", "", nil, 404,
			"not_found", `no account "alice@example.org" in tenant "example.net"`},
		{"cross-tenant audit", "GET", org + "/audit", "crm", "", nil, 404, "not_found", noTenantOrg},
		{"tenant not served", "GET", "/v1/tenants/example.com/certs", "ghost", "", nil, 404, "not_found", `no tenant "example.com"`},
		{"cross-seat read", "GET", org + "/certs/" + fpB, "alice", "", nil, 404, "not_found",
			`no certificate ` + fpB + ` in tenant "example.org"`},
		{"cross-seat list", "GET", bob + "/certs", "alice", "", nil, 404, "not_found", `no account "bob@example.org" in tenant "example.org"`},
		{"cross-seat search", "GET", org + "/certs?account=bob@example.org", "alice", "", nil, 404, "not_found",
			`no account "bob@example.org" in tenant "example.org"`},
		{"cross-seat audit", "GET", org + "/audit?account=bob@example.org", "alice", "", nil, 404, "not_found",
			`no account "bob@example.org" in tenant "example.org"`},
		{"cross-seat revoke", "POST", org + "/certs/" + fpB + "/revoke", "alice", "", nil, 404, "not_found",
			`no certificate ` + fpB + ` in tenant "example.org"`},
		{"cross-seat upload", "POST", bob + "/certs", "alice", uploadBody(t, "x", cert(t, "bob@example.org")), nil, 404, "not_found",
			`no account "bob@example.org" in tenant "example.org"`},
		{"cross-seat revoke-all", "POST", bob + "/revoke-all", "alice", "", nil, 404, "not_found",
			`no account "bob@example.org" in tenant "example.org"`},
		{"cross-seat enroll", "POST", bob + "/enroll", "alice", bobCSR, nil, 404, "not_found",
			`no account "bob@example.org" in tenant "example.org"`},
		{"scope missing for a write", "POST", org + "/certs/" + fpA + "/revoke", "reader", "", nil, 403, "insufficient_scope",
			"this request needs the scope certs:write"},
		{"scope missing for the audit", "GET", org + "/audit", "reader", "", nil, 403, "insufficient_scope",
			"this request needs the scope audit:read"},
		{"scope missing for enroll", "POST", alice + "/enroll", "reader", bobCSR, nil, 403, "insufficient_scope",
			"this request needs the scope certs:issue"},
		{"CSR naming another account", "POST", alice + "/enroll", "hr", bobCSR, nil, 400, "invalid_request",
			"enrolment refused: the CSR requests the names xmppAddr bob@example.org; only the xmppAddr alice@example.org, optionally followed by the email address alice@example.org (or no subjectAltName), is allowed"},
		{"malformed JSON", "POST", alice + "/certs", "hr", `{"name": laptop}`, nil, 400, "invalid_request",
			"the body is not the JSON this request takes: syntax error at byte 10"},
		{"JSON cut short", "POST", alice + "/certs", "hr", `{"name": "laptop"`, nil, 400, "invalid_request",
			"the body is not the JSON this request takes: it ends early"},
		{"unknown field", "POST", alice + "/certs", "hr", `{"name": "x", "pem": "", "owner": "bob@example.org"}`, nil, 400,
			"invalid_request", `the body is not the JSON this request takes: unknown field "owner"`},
		{"field name in another case", "POST", alice + "/certs", "hr", `{"Name": "x", "pem": ""}`, nil, 400, "invalid_request",
			`the body is not the JSON this request takes: unknown field "Name"`},
		{"field given twice", "POST", alice + "/certs", "hr", `{"name": "x", "name": "y", "pem": ""}`, nil, 400, "invalid_request",
			`the body is not the JSON this request takes: field "name" is given twice`},
		{"wrong type", "POST", alice + "/certs", "hr", `{"name": 5}`, nil, 400, "invalid_request",
			`the body is not the JSON this request takes: field "name" must be a string`},
		{"not an object", "POST", alice + "/certs", "hr", `["x"]`, nil, 400, "invalid_request",
			"the body is not the JSON this request takes: want a JSON object, got array"},
		{"two objects", "POST", alice + "/certs", "hr", `{} {}`, nil, 400, "invalid_request", "the body has more than one JSON value"},
		{"oversized body", "POST", alice + "/certs", "hr", `{"name": "` + strings.Repeat("x", 17<<10) + `"}`, nil, 413,
			"payload_too_large", "the body is larger than 16384 bytes"},
		{"not JSON", "POST", alice + "/certs", "hr", "name=x", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415,
			"unsupported_media_type", `send the body as application/json (got "application/x-www-form-urlencoded")`},
		{"two certificates", "POST", alice + "/certs", "hr", `{"name": "x", "pem": "a", "der": "b"}`, nil, 400, "invalid_request",
			"send the certificate once: pem or der, not both"},
		{"PEM of a key", "POST", alice + "/certs", "hr", fmt.Sprintf(`{"name": "x", "pem": %q}`, cert(t, "alice@example.org").KeyPEM(t)),
			nil, 400, "invalid_request", `pem holds a "PRIVATE KEY" block, not a CERTIFICATE`},
		{"bad fingerprint", "GET", org + "/certs/sha1:abcd", "hr", "", nil, 400, "invalid_request",
			`fingerprint "sha1:abcd" is not sha256: followed by 64 hex digits`},
		{"short fingerprint", "POST", org + "/certs/sha256:abcd/revoke", "hr", "", nil, 400, "invalid_request",
			`fingerprint "sha256:abcd" is not sha256: followed by 64 hex digits`},
		{"unknown fingerprint", "POST", org + "/certs/sha256:" + strings.Repeat("ab", 32) + "/revoke", "hr", "", nil, 404, "not_found",
			"no certificate sha256:" + strings.Repeat("ab", 32) + ` in tenant "example.org"`},
		{"account not normalised", "GET", org + "/accounts/Alice@example.org/certs", "hr", "", nil, 400, "invalid_request",
			`account "Alice@example.org" is not in its normal form; use "alice@example.org"`},
		{"account without local part", "POST", org + "/accounts/example.org/revoke-all", "hr", "", nil, 400, "invalid_request",
			`account "example.org" is not a bare JID with a local part (user@domain)`},
		{"full JID as account", "POST", org + "/accounts/alice@example.org%2Fphone/revoke-all", "hr", "", nil, 400, "invalid_request",
			`account "alice@example.org/phone" is not a bare JID with a local part (user@domain)`},
		{"unknown query parameter", "GET", org + "/certs?owner=bob", "hr", "", nil, 400, "invalid_request",
			`unknown query parameter "owner" (this request takes: state, account, name, expires_after, expires_before, limit, cursor)`},
		{"query on a POST", "POST", alice + "/revoke-all?account=bob@example.org", "hr", "", nil, 400, "invalid_request",
			"this request takes no query parameters"},
		{"bad state", "GET", org + "/certs?state=valid", "hr", "", nil, 400, "invalid_request",
			`state "valid" is not one of active, disabled, revoked`},
		{"limit too large", "GET", org + "/certs?limit=100000", "hr", "", nil, 400, "invalid_request",
			"limit must be a whole number from 1 to 500"},
		{"bad time", "GET", org + "/audit?since=yesterday", "hr", "", nil, 400, "invalid_request",
			"since must be an RFC 3339 time such as 2026-12-31T00:00:00Z"},
		{"account of another tenant in a search", "GET", org + "/certs?account=carol@example.net", "hr", "", nil, 400,
			"invalid_request", `account "carol@example.net" is not of tenant "example.org"`},
		{"tampered cursor", "GET", org + "/certs?limit=1&cursor=" + string(tampered), "hr", "", nil, 400, "invalid_request",
			"the cursor is not valid (it was changed, or made by another server); repeat the search without a cursor"},
		{"garbage cursor", "GET", org + "/certs?limit=1&cursor=%21%21", "hr", "", nil, 400, "invalid_request",
			"the cursor is not valid (it was changed, or made by another server); repeat the search without a cursor"},
		{"cursor of another search", "GET", org + "/certs?limit=1&state=active&cursor=" + hrPage.Next, "hr", "", nil, 400,
			"invalid_request", "the cursor belongs to another search; send the same filters as the request that returned it"},
		{"cursor of another tenant", "GET", org + "/certs?limit=1&cursor=" + crmPage.Next, "hr", "", nil, 400, "invalid_request",
			"the cursor belongs to another search; send the same filters as the request that returned it"},
		{"cursor of a search used on the audit", "GET", org + "/audit?limit=1&cursor=" + hrPage.Next, "hr", "", nil, 400,
			"invalid_request", "the cursor belongs to another search; send the same filters as the request that returned it"},
		{"Idempotency-Key too long", "POST", alice + "/revoke-all", "hr", "", []string{"Idempotency-Key", strings.Repeat("k", 256)},
			400, "invalid_request", "Idempotency-Key must be sent once, with 1 to 255 printable ASCII characters"},
		{"Idempotency-Key twice", "POST", alice + "/revoke-all", "hr", "", []string{"Idempotency-Key", "a", "Idempotency-Key", "b"},
			400, "invalid_request", "Idempotency-Key must be sent once, with 1 to 255 printable ASCII characters"},
	}
	before := h.snapshot()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := h.do(tc.method, tc.path, tc.token, tc.body, tc.hdr...)
			a.errorIs(t, tc.status, tc.code, tc.text)
			switch tc.status {
			case 401:
				if got := a.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="saslcert", error="invalid_token"`) {
					t.Errorf("WWW-Authenticate %q", got)
				}
			case 403:
				if got := a.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="insufficient_scope"`) || !strings.Contains(got, "scope=") {
					t.Errorf("WWW-Authenticate %q", got)
				}
			}
		})
	}
	if after := h.snapshot(); after != before {
		t.Fatalf("the hostile requests changed the store:\n%s\nbefore:\n%s", after, before)
	}
}

// snapshot is every record's account, name and state and the audit log's
// length, as text.
func (h *harness) snapshot() string {
	h.t.Helper()
	var b strings.Builder
	err := h.db.WalkCerts(h.t.Context(), func(c *storage.Cert) error {
		fmt.Fprintf(&b, "%s %q %s\n", c.Account, c.Name, c.State)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	log, err := h.db.Audit(h.t.Context(), "", 0)
	if err != nil {
		h.t.Fatal(err)
	}
	fmt.Fprintf(&b, "%d audit entries\n", len(log))
	return b.String()
}
