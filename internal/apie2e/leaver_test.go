package apie2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/storage"
)

// TestIntegrationLeaver: the HR system gets an access token
// (client_credentials, private_key_jwt) and alice's laptop has a live SASL EXTERNAL session;
// the HR system revokes everything of hers through the API (revoke-all);
// the session is closed by the server, her next login is refused, and the
// audit log names the API client.
func TestIntegrationLeaver(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	st := startAPIStack(t)
	hr := st.token(t, "hr", st.client(t, "hr", allScopes...), "tenant:"+domain, "certs:read", "certs:write", "audit:read")
	st.Register(t, "alice")
	laptop := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"alice@" + domain}})
	body, _ := json.Marshal(map[string]string{"name": "laptop", "pem": string(laptop.CertPEM())})
	if s := st.call(t, hr, "POST", "/v1/tenants/"+domain+"/accounts/alice@"+domain+"/certs", string(body), nil); s != http.StatusCreated {
		t.Fatalf("upload: %d", s)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	live, err := st.RawLoginCert(ctx, laptop, "")
	if err != nil {
		t.Fatalf("EXTERNAL login: %v", err)
	}
	defer live.Close()
	// The certificate's live session, as the component learnt it from the
	// plugin's session notice (it arrives after the bind).
	fp := storage.FingerprintOf(laptop.DER).String()
	var one struct {
		Sessions []string `json:"sessions"`
	}
	for deadline := time.Now().Add(time.Minute); len(one.Sessions) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("GET of the certificate never listed its live session")
		}
		st.call(t, hr, "GET", "/v1/tenants/"+domain+"/certs/"+fp, "", &one)
	}

	start := time.Now()
	var out struct {
		Revoked []struct {
			Name  string        `json:"name"`
			State storage.State `json:"state"`
		} `json:"revoked"`
	}
	if s := st.call(t, hr, "POST", "/v1/tenants/"+domain+"/accounts/alice@"+domain+"/revoke-all", "", &out); s != http.StatusOK ||
		len(out.Revoked) != 1 || out.Revoked[0].State != storage.StateRevoked {
		t.Fatalf("revoke-all: %d %+v", s, out)
	}
	answered := time.Since(start)
	closed, err := live.WaitClosed(time.Minute)
	closedAfter := time.Since(start)
	if err != nil || closed.Outcome() != "stream-error reset: This client certificate has been revoked." {
		t.Fatalf("the live session after revoke-all: %v %v", closed.Outcome(), err)
	}
	if cond := st.loginRefusal(t, "alice", laptop); cond != "not-authorized" {
		t.Fatalf("login after revoke-all: %q, want not-authorized", cond)
	}
	var log struct {
		Items []struct {
			Actor, Action, Account, Fingerprint string
		} `json:"items"`
	}
	st.call(t, hr, "GET", "/v1/tenants/"+domain+"/audit?account=alice@"+domain, "", &log)
	var story string
	for _, e := range log.Items {
		story += fmt.Sprintf("  audit: %s %s %s %s\n", e.Actor, e.Action, e.Account, e.Fingerprint)
		if e.Actor != "api:hr" {
			t.Errorf("audit entry by %q, want api:hr", e.Actor)
		}
	}
	if len(log.Items) != 2 || log.Items[0].Action != "add" || log.Items[1].Action != "revoke" {
		t.Fatalf("audit: %+v", log.Items)
	}
	t.Logf("leaver story:\n  live sessions of %s before: %v\n  revoke-all answered after %v\n  live session: %s, %v after the request\n  next login: not-authorized\n%s",
		fp, one.Sessions, answered.Round(time.Millisecond), closed.Outcome(), closedAfter.Round(time.Millisecond), story)
}
