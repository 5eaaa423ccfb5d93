package webfinger_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/webfinger"
)

func TestParseResource(t *testing.T) {
	tests := []struct {
		name, resource string
		want           string // bare JID; "" for an error
		code           string // httperr code of the error
	}{
		{"acct", "acct:alice@example.org", "alice@example.org", ""},
		{"acct upper-case scheme and domain", "ACCT:Alice@EXAMPLE.org", "alice@example.org", ""},
		{"xmpp", "xmpp:alice@example.org", "alice@example.org", ""},
		{"acct percent-encoded userpart", "acct:al%69ce@example.org", "alice@example.org", ""},
		{"no scheme", "alice@example.org", "", httperr.InvalidRequest},
		{"empty scheme", ":alice@example.org", "", httperr.InvalidRequest},
		{"bad scheme", "1acct:alice@example.org", "", httperr.InvalidRequest},
		{"acct without user", "acct:@example.org", "", httperr.InvalidRequest},
		{"acct without host", "acct:alice@", "", httperr.InvalidRequest},
		{"acct without @", "acct:example.org", "", httperr.InvalidRequest},
		{"acct with path", "acct:alice@example.org/x", "", httperr.InvalidRequest},
		{"acct with query", "acct:alice@example.org?x", "", httperr.InvalidRequest},
		{"acct bad percent", "acct:al%zzice@example.org", "", httperr.InvalidRequest},
		{"acct encoded @ in user", "acct:alice%40evil.org@example.org", "", httperr.InvalidRequest},
		{"acct two hosts", "acct:alice@example.org@evil.org", "", httperr.InvalidRequest},
		{"acct encoded @ in host", "acct:alice@evil.org%40example.org", "", httperr.InvalidRequest},
		{"acct NUL", "acct:al%00ice@example.org", "", httperr.InvalidRequest},
		{"acct two forms", "acct:stra%C3%9Fe@example.org", "", httperr.InvalidRequest},
		{"xmpp authority", "xmpp://guest@example.com/alice@example.org", "", httperr.InvalidRequest},
		{"xmpp resource", "xmpp:alice@example.org/laptop", "", httperr.InvalidRequest},
		{"xmpp query", "xmpp:alice@example.org?message", "", httperr.InvalidRequest},
		{"xmpp fragment", "xmpp:alice@example.org#x", "", httperr.InvalidRequest},
		{"xmpp domain only", "xmpp:example.org", "", httperr.InvalidRequest},
		{"mailto is not served", "mailto:alice@example.org", "", httperr.NotFound},
		{"https is not served", "https://example.org/alice", "", httperr.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := webfinger.ParseResource(tc.resource)
			if tc.want != "" {
				if err != nil || j.String() != tc.want {
					t.Fatalf("ParseResource(%q) = %v, %v; want %s", tc.resource, j, err, tc.want)
				}
				return
			}
			var he *httperr.Error
			if !errors.As(err, &he) || he.Code != tc.code {
				t.Fatalf("ParseResource(%q) = %v, %v; want an httperr %s", tc.resource, j, err, tc.code)
			}
		})
	}
}

// fullConfig links everything.
var fullConfig = webfinger.Config{
	Domains:    []string{"example.org", "Other.example"},
	Service:    jid.MustParse("certs.example.org"),
	PublicURL:  "https://certs.example.org",
	EnrollPath: "/v1/tenants/{tenant}/accounts/{account}/enroll",
	CARootPath: "/ca/root.pem",
	CRLPath:    "/ca/crl",
}

// serve runs h on a real loopback listener.
func serve(t *testing.T, h *webfinger.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func get(t *testing.T, u string) answer {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

func query(resource string, rels ...string) string {
	v := url.Values{"resource": {resource}}
	if resource == "" {
		v = url.Values{}
	}
	for _, r := range rels {
		v.Add("rel", r)
	}
	return webfinger.Path + "?" + v.Encode()
}

func rels(j webfinger.JRD) []string {
	var out []string
	for _, l := range j.Links {
		out = append(out, l.Rel)
	}
	return out
}

func TestWebFinger(t *testing.T) {
	base := serve(t, webfinger.New(fullConfig))
	all := []string{webfinger.RelXEP0257, webfinger.RelEnroll, webfinger.RelCARoot, webfinger.RelCRL, webfinger.RelOAuthIssuer}
	tests := []struct {
		name    string
		path    string
		status  int
		code    string   // httperr code for errors
		subject string   // for 200
		rels    []string // for 200, in order
	}{
		{"acct", query("acct:alice@example.org"), 200, "", "acct:alice@example.org", all},
		{"xmpp", query("xmpp:alice@example.org"), 200, "", "acct:alice@example.org", all},
		{"domain case", query("acct:bob@OTHER.example"), 200, "", "acct:bob@other.example", all},
		{"rel filter", query("acct:alice@example.org", webfinger.RelEnroll), 200, "", "acct:alice@example.org", []string{webfinger.RelEnroll}},
		{"rel repeated", query("acct:alice@example.org", webfinger.RelOAuthIssuer, webfinger.RelXEP0257), 200, "", "acct:alice@example.org",
			[]string{webfinger.RelXEP0257, webfinger.RelOAuthIssuer}},
		{"unknown rel", query("acct:alice@example.org", "http://webfinger.net/rel/avatar"), 200, "", "acct:alice@example.org", nil},
		{"other domain", query("acct:alice@evil.example"), 404, httperr.NotFound, "", nil},
		{"component domain", query("acct:alice@certs.example.org"), 404, httperr.NotFound, "", nil},
		{"mailto", query("mailto:alice@example.org"), 404, httperr.NotFound, "", nil},
		{"missing resource", query(""), 400, httperr.InvalidRequest, "", nil},
		{"empty resource", webfinger.Path + "?resource=", 400, httperr.InvalidRequest, "", nil},
		{"repeated resource", webfinger.Path + "?resource=acct:a@example.org&resource=acct:b@example.org", 400, httperr.InvalidRequest, "", nil},
		{"bad query encoding", webfinger.Path + "?resource=acct:a%zz@example.org", 400, httperr.InvalidRequest, "", nil},
		{"malformed resource", query("acct:example.org"), 400, httperr.InvalidRequest, "", nil},
		{"resource too long", query("acct:" + strings.Repeat("a", webfinger.MaxResource) + "@example.org"), 400, httperr.InvalidRequest, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, base+tc.path)
			if a.status != tc.status {
				t.Fatalf("status %d %s, want %d", a.status, a.body, tc.status)
			}
			if a.header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("Access-Control-Allow-Origin %q, want *", a.header.Get("Access-Control-Allow-Origin"))
			}
			if tc.status != 200 {
				var e struct{ Error string }
				if a.header.Get("Content-Type") != "application/json" || json.Unmarshal(a.body, &e) != nil || e.Error != tc.code {
					t.Fatalf("error body %s (%s), want code %s", a.body, a.header.Get("Content-Type"), tc.code)
				}
				return
			}
			if ct := a.header.Get("Content-Type"); ct != webfinger.ContentType {
				t.Errorf("Content-Type %q", ct)
			}
			var j webfinger.JRD
			if err := json.Unmarshal(a.body, &j); err != nil {
				t.Fatal(err)
			}
			if j.Subject != tc.subject || !slices.Equal(rels(j), tc.rels) {
				t.Errorf("subject %q rels %v, want %q %v", j.Subject, rels(j), tc.subject, tc.rels)
			}
		})
	}
}

// The links: absolute URLs from the public URL, the account's enrollment
// endpoint, the component's xmpp: URI.
func TestLinks(t *testing.T) {
	base := serve(t, webfinger.New(fullConfig))
	var j webfinger.JRD
	if err := json.Unmarshal(get(t, base+query("acct:alice@example.org")).body, &j); err != nil {
		t.Fatal(err)
	}
	want := []webfinger.Link{
		{Rel: webfinger.RelXEP0257, Href: "xmpp:certs.example.org"},
		{Rel: webfinger.RelEnroll, Href: "https://certs.example.org/v1/tenants/example.org/accounts/alice@example.org/enroll"},
		{Rel: webfinger.RelCARoot, Type: "application/x-pem-file", Href: "https://certs.example.org/ca/root.pem"},
		{Rel: webfinger.RelCRL, Type: "application/pkix-crl", Href: "https://certs.example.org/ca/crl"},
		{Rel: webfinger.RelOAuthIssuer, Href: "https://certs.example.org"},
	}
	if !slices.Equal(j.Links, want) {
		t.Errorf("links\n%+v\nwant\n%+v", j.Links, want)
	}
	if !slices.Equal(j.Aliases, []string{"xmpp:alice@example.org"}) {
		t.Errorf("aliases %v", j.Aliases)
	}

	// Without enrollment and CA only the XEP-0257 service and the issuer.
	min := fullConfig
	min.EnrollPath, min.CARootPath, min.CRLPath = "", "", ""
	base = serve(t, webfinger.New(min))
	if err := json.Unmarshal(get(t, base+query("acct:alice@example.org")).body, &j); err != nil {
		t.Fatal(err)
	}
	if got := rels(j); !slices.Equal(got, []string{webfinger.RelXEP0257, webfinger.RelOAuthIssuer}) {
		t.Errorf("rels without CA and enrollment: %v", got)
	}
}

// No enumeration: any two addresses of a served domain get the same
// answer, up to the address itself.
func TestNoEnumeration(t *testing.T) {
	base := serve(t, webfinger.New(fullConfig))
	norm := func(resource, local string) string {
		return strings.ReplaceAll(string(get(t, base+query(resource)).body), local, "USER")
	}
	a, b := norm("acct:alice@example.org", "alice"), norm("acct:nobody-registered-this@example.org", "nobody-registered-this")
	if a != b {
		t.Errorf("answers differ beyond the address:\n%s\n%s", a, b)
	}
}
