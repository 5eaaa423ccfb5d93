package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/docs"
)

// openAPIDoc is the part of docs/openapi.json the test reads.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		Responses map[string]json.RawMessage `json:"responses"`
		Security  *[]map[string][]string     `json:"security"`
	} `json:"paths"`
}

// TestOpenAPI: every route registered on the mux is in docs/openapi.json
// with exactly the statuses it answers and the scope it needs, and the
// document has nothing else; the document is what GET /v1/openapi.json
// serves.
func TestOpenAPI(t *testing.T) {
	h := newHarness(t)
	var doc openAPIDoc
	if err := json.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	mux := http.NewServeMux()
	h.api.Register(mux)
	want := h.api.Statuses()
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			// The mux routes a request for the documented path to the
			// documented pattern.
			req := httptest.NewRequest(strings.ToUpper(method), samplePath(path), nil)
			if _, pattern := mux.Handler(req); pattern != key {
				t.Errorf("%s: the mux routes it to %q", key, pattern)
			}
			statuses, ok := want[key]
			if !ok {
				t.Errorf("%s is documented but not a route", key)
				continue
			}
			var got []int
			for code := range op.Responses {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("%s: response %q is not a status", key, code)
				}
				got = append(got, n)
			}
			slices.Sort(got)
			if !slices.Equal(got, statuses) {
				t.Errorf("%s: documented statuses %v, the route answers %v", key, got, statuses)
			}
		}
	}
	for key := range want {
		if !documented[key] {
			t.Errorf("route %s is not in docs/openapi.json", key)
		}
	}
	for key, scope := range h.api.Scopes() {
		method, path, _ := strings.Cut(key, " ")
		op := doc.Paths[path][strings.ToLower(method)]
		var docScope string
		if op.Security != nil {
			for _, req := range *op.Security {
				docScope = strings.Join(req["bearer"], " ")
			}
		}
		if scope != docScope && !(scope == "" && op.Security == nil) {
			t.Errorf("%s needs scope %q, documented %q", key, scope, docScope)
		}
	}
	a := h.do("GET", "/v1/openapi.json", "", "")
	if a.status != http.StatusOK || string(a.body) != string(docs.OpenAPI) {
		t.Fatalf("GET /v1/openapi.json: %d, %d bytes", a.status, len(a.body))
	}
}

// samplePath fills a path template's wildcards.
func samplePath(p string) string {
	r := strings.NewReplacer("{tenant}", "example.org", "{account}", "alice@example.org",
		"{fingerprint}", "sha256:"+strings.Repeat("0", 64))
	return r.Replace(p)
}
