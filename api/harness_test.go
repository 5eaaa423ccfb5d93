package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/api"
	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/lifecycle"
	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
	"github.com/saslcert/saslcert/xep0257"
)

// tokens is the test Authenticator: "Authorization: Bearer <name>" speaks
// for the principal of that name. Real tokens (oauth's Verifier) are tested
// end to end in the e2e tests.
type tokens map[string]oauth.Principal

func (ts tokens) Authenticate(r *http.Request) (oauth.Principal, error) {
	h := r.Header.Get("Authorization")
	name, ok := strings.CutPrefix(h, "Bearer ")
	if p, known := ts[name]; ok && known {
		return p, nil
	}
	return oauth.Principal{}, &httperr.Error{Code: httperr.InvalidToken, Challenge: httperr.Bearer,
		Description: "the access token is missing or not valid"}
}

var allScopes = []string{oauth.ScopeCertsRead, oauth.ScopeCertsWrite, oauth.ScopeCertsIssue, oauth.ScopeAuditRead}

// testTokens: hr administers example.org, crm example.net; reader may only
// read example.org; alice's self-service token is her seat only.
var testTokens = tokens{
	"hr":     {ClientID: "hr", Tenant: "example.org", Scopes: allScopes, TokenID: "t1"},
	"reader": {ClientID: "reader", Tenant: "example.org", Scopes: []string{oauth.ScopeCertsRead}, TokenID: "t2"},
	"crm":    {ClientID: "crm", Tenant: "example.net", Scopes: allScopes, TokenID: "t3"},
	"alice":  {ClientID: "selfservice", Tenant: "example.org", Seat: "alice@example.org", Scopes: allScopes, TokenID: "t4"},
	"ghost":  {ClientID: "ghost", Tenant: "example.com", Scopes: allScopes, TokenID: "t5"},
}

// harness is the API on a real SQLite store and a loopback HTTP server,
// with the embedded CA for example.org.
type harness struct {
	t   *testing.T
	url string
	db  *sqlite.DB
	mgr *lifecycle.Manager
	api *api.API

	mu      sync.Mutex
	revoked []string // accounts/fingerprints whose Revoked effect ran
}

// newHarness starts the API; with plainStore, its Store is one without
// the optional interfaces (storage.Searcher, storage.Idempotency), so that
// the walking searches and the in-memory keys serve.
func newHarness(t *testing.T, plainStore ...bool) *harness {
	t.Helper()
	now := func() time.Time { return certtest.Now }
	h := &harness{t: t, db: sqlitetest.Open(t, sqlite.Options{Now: now})}
	h.mgr = lifecycle.New(h.db, nil)
	h.mgr.Register(lifecycle.Effects{Revoked: func(_ context.Context, c *storage.Cert) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.revoked = append(h.revoked, c.Fingerprint.String())
	}})
	dir := filepath.Join(t.TempDir(), "ca")
	if err := localca.Init(dir, localca.InitOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	ca, err := localca.Load(dir, localca.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := enroll.NewService(enroll.ServiceConfig{
		Store:     h.mgr,
		Issuers:   map[string]enroll.Issuer{enroll.EmbeddedIssuer: ca},
		Policies:  enroll.Policies{"example.org": enroll.DefaultDomainPolicy(), "example.net": {AllowSelfSigned: true}},
		Component: jid.MustParse("certs.example.org"),
		Now:       now,
	})
	if err != nil {
		t.Fatal(err)
	}
	certs := &xep0257.Handler{Store: h.mgr, Now: now, CheckAppend: svc.CheckAppend}
	var store storage.Store = h.db
	if len(plainStore) > 0 && plainStore[0] {
		store = plain{h.db}
	}
	h.api, err = api.New(api.Config{Auth: testTokens, Store: store, Lifecycle: h.mgr, Certs: certs, Enroll: svc,
		Tenants: []string{"example.org", "example.net"}, Now: now, MaxBody: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.api.Handler())
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// answer is an HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the answer's body into v.
func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d %q: %v", a.status, a.body, err)
	}
}

// errorIs checks that the answer is the httperr error code/status/text.
func (a answer) errorIs(t *testing.T, status int, code, text string) {
	t.Helper()
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if a.status != status || json.Unmarshal(a.body, &e) != nil || e.Error != code || e.Description != text {
		t.Fatalf("answer %d %s; want %d {%q, %q}", a.status, a.body, status, code, text)
	}
}

// do sends a request with token (none if "") and body (a JSON text,
// application/json, if not ""); hdr are more header name/value pairs.
func (h *harness) do(method, path, token, body string, hdr ...string) answer {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(h.t.Context(), method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Content-Type" {
			req.Header.Del(hdr[i])
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// cert makes a certificate naming account.
func cert(t *testing.T, account string) *certtest.Cert {
	t.Helper()
	return certtest.New(t, certtest.Options{CommonName: account, XMPPAddrs: []string{account}})
}

// uploadBody is the JSON of an upload of c under name.
func uploadBody(t *testing.T, name string, c *certtest.Cert) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"name": name, "pem": string(c.CertPEM())})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// upload stores c for account through the API as hr, or fails.
func (h *harness) upload(account, name string, c *certtest.Cert) string {
	h.t.Helper()
	a := h.do("POST", "/v1/tenants/"+storage.DomainOf(account)+"/accounts/"+account+"/certs", tokenOf(account),
		uploadBody(h.t, name, c))
	if a.status != http.StatusCreated {
		h.t.Fatalf("upload %s %q: %d %s", account, name, a.status, a.body)
	}
	return storage.FingerprintOf(c.DER).String()
}

// tokenOf is the admin token of account's tenant.
func tokenOf(account string) string {
	if storage.DomainOf(account) == "example.net" {
		return "crm"
	}
	return "hr"
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// revokedList is what the Revoked effect saw, in order.
func (h *harness) revokedList() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.revoked)
}

// plain hides a store's optional interfaces.
type plain struct{ storage.Store }
