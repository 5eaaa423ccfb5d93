package oauth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/storage"
)

// BenchmarkTokenGrantPrivateKeyJWT: client_credentials grants with
// private_key_jwt over loopback HTTP on a real SQLite store (each grant:
// parse, ES256 verify, jti insert, ES256 sign). The client signs its
// assertions before the timer starts.
func BenchmarkTokenGrantPrivateKeyJWT(b *testing.B) {
	st := newStack(b, oauth.Config{})
	k := newKey(b)
	jwks, _ := jsonJWKS(k)
	st.addClient(&storage.OAuthClient{ID: "hr", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, JWKS: jwks})
	assertions := make([]string, b.N)
	for i := range assertions {
		assertions[i] = st.assertion(k, "hr")
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if a := st.post(oauth.TokenPath, jwtForm(assertions[i], "")); a.status != 200 {
			b.Fatalf("%d %v", a.status, a.body)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "grants/s")
}

// BenchmarkVerify: the resource side's check of an access token (parse,
// ES256 verify, revocation lookup, client lookup), in process.
func BenchmarkVerify(b *testing.B) {
	st := newStack(b, oauth.Config{})
	k := newKey(b)
	jwks, _ := jsonJWKS(k)
	st.addClient(&storage.OAuthClient{ID: "hr", Tenants: []string{"example.org"}, Scopes: []string{oauth.ScopeCertsRead}, JWKS: jwks})
	a := st.post(oauth.TokenPath, jwtForm(st.assertion(k, "hr"), ""))
	tok := a.body["access_token"].(string)
	r := httptest.NewRequest(http.MethodGet, "/v1/tenants", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	v := st.srv.Verifier()
	b.ResetTimer()
	for range b.N {
		if _, err := v.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}
