package apie2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/storage"
)

// TestIntegrationTokens: real access tokens decide what the API shows: a
// seat: token sees its account only (404 for another's), a token without
// certs:write cannot revoke (403), a changed token is refused (401); each
// with the exact answer and nothing changed.
func TestIntegrationTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	st := startAPIStack(t)
	hr := st.token(t, "hr", st.client(t, "hr", allScopes...), "tenant:"+domain, "certs:read", "certs:write")
	upload := func(user string) string {
		c := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{user + "@" + domain}})
		body, _ := json.Marshal(map[string]string{"name": "laptop", "pem": string(c.CertPEM())})
		if s := st.call(t, hr, "POST", "/v1/tenants/"+domain+"/accounts/"+user+"@"+domain+"/certs", string(body), nil); s != http.StatusCreated {
			t.Fatalf("upload for %s: %d", user, s)
		}
		return storage.FingerprintOf(c.DER).String()
	}
	fpAlice, fpBob := upload("alice"), upload("bob")
	self := st.token(t, "selfservice", st.client(t, "selfservice", "certs:read", "certs:write"),
		"tenant:"+domain, "seat:alice@"+domain, "certs:read", "certs:write")
	reader := st.token(t, "helpdesk", st.client(t, "helpdesk", "certs:read"), "tenant:"+domain, "certs:read")

	type errAnswer struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	cases := []struct {
		name         string
		hc           *http.Client
		method, path string
		status       int
		want         errAnswer
	}{
		{"seat reads another account's certificate", self, "GET", "/v1/tenants/" + domain + "/certs/" + fpBob, 404,
			errAnswer{"not_found", "no certificate " + fpBob + ` in tenant "` + domain + `"`}},
		{"seat revokes another account", self, "POST", "/v1/tenants/" + domain + "/accounts/bob@" + domain + "/revoke-all", 404,
			errAnswer{"not_found", `no account "bob@` + domain + `" in tenant "` + domain + `"`}},
		{"reader revokes", reader, "POST", "/v1/tenants/" + domain + "/certs/" + fpAlice + "/revoke", 403,
			errAnswer{"insufficient_scope", "this request needs the scope certs:write"}},
		{"another tenant", hr, "GET", "/v1/tenants/example.net/certs", 404, errAnswer{"not_found", `no tenant "example.net"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got errAnswer
			if s := st.call(t, tc.hc, tc.method, tc.path, "", &got); s != tc.status || got != tc.want {
				t.Fatalf("%d %+v, want %d %+v", s, got, tc.status, tc.want)
			}
		})
	}
	var page struct {
		Items []struct{ Fingerprint string } `json:"items"`
	}
	if s := st.call(t, self, "GET", "/v1/tenants/"+domain+"/certs", "", &page); s != http.StatusOK || len(page.Items) != 1 || page.Items[0].Fingerprint != fpAlice {
		t.Fatalf("the seat's search: %d %+v, want alice's certificate only", s, page)
	}
	// A token changed by one character.
	tok, err := hr.Transport.(*oauth2.Transport).Source.Token()
	if err != nil {
		t.Fatal(err)
	}
	forged := *tok
	b := []byte(tok.AccessToken)
	i := strings.Index(tok.AccessToken, ".") + 5 // inside the claims
	b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
	forged.AccessToken = string(b)
	var got errAnswer
	if s := st.call(t, oauth2.NewClient(t.Context(), oauth2.StaticTokenSource(&forged)), "GET", "/v1/tenants/"+domain+"/certs", "", &got); s != 401 || got.Error != "invalid_token" {
		t.Fatalf("changed token: %d %+v", s, got)
	}
	for _, fp := range []string{fpAlice, fpBob} {
		var c struct{ State storage.State }
		if st.call(t, hr, "GET", "/v1/tenants/"+domain+"/certs/"+fp, "", &c); c.State != storage.StateActive {
			t.Fatalf("%s is %s after the refused requests", fp, c.State)
		}
	}
}
