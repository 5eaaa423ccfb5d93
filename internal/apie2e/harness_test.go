package apie2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/server"
)

const domain = "example.org"

// staticTokens is a test Authenticator: "Bearer <name>" is that principal.
type staticTokens map[string]oauth.Principal

func (ts staticTokens) Authenticate(r *http.Request) (oauth.Principal, error) {
	name, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if p, known := ts[name]; ok && known {
		return p, nil
	}
	return oauth.Principal{}, &httperr.Error{Code: httperr.InvalidToken, Challenge: httperr.Bearer, Description: "unknown token"}
}

var hrToken = staticTokens{"hr": {ClientID: "hr", Tenant: domain, TokenID: "t1",
	Scopes: []string{oauth.ScopeCertsRead, oauth.ScopeCertsWrite, oauth.ScopeCertsIssue, oauth.ScopeAuditRead}}}

// apiStack is a Prosody stack whose component serves the API on a
// loopback HTTP listener.
type apiStack struct {
	*stacktest.Stack
	base string // http://127.0.0.1:port
}

// startAPIStack starts the stack with the API authenticating with auth.
func startAPIStack(tb testing.TB, auth oauth.Authenticator) *apiStack {
	tb.Helper()
	st := stacktest.Start(tb, stacktest.Options{Domain: domain,
		HTTP: server.HTTPConfig{Listen: "127.0.0.1:0", PublicURL: "http://127.0.0.1"},
		BeforeRun: func(svc *server.Service) {
			a, err := svc.API(auth)
			if err != nil {
				tb.Fatal(err)
			}
			svc.AddRoutes(a)
		}})
	svc := st.Comp().Service()
	deadline := time.Now().Add(time.Minute)
	for svc.HTTPAddr() == nil {
		if time.Now().After(deadline) {
			tb.Fatal("the HTTP listener did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &apiStack{Stack: st, base: "http://" + svc.HTTPAddr().String()}
}

// call sends a JSON request with a bearer token and decodes a JSON answer
// into out (if not nil); it returns the status.
func (st *apiStack) call(tb testing.TB, method, path, token, body string, out any) int {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(tb.Context(), method, st.base+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// loginRefusal tries an EXTERNAL login and returns the SASL condition of
// its refusal ("" if it succeeded).
func (st *apiStack) loginRefusal(tb testing.TB, user string, c *certtest.Cert) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	defer cancel()
	cl, err := st.LoginCert(ctx, user, c, "")
	if err == nil {
		cl.Close()
		return ""
	}
	var ae *xmppclient.AuthError
	if errors.As(err, &ae) {
		return ae.Condition
	}
	tb.Fatalf("login of %s: %v", user, err)
	return ""
}
