package cluster_test

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/pgtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/xep0257"
)

func TestMain(m *testing.M) { stacktest.Main(m) }

const (
	user    = "alice"
	account = "alice@example.org"
	// adminWatch is long, so that a change reaching the other instance
	// within a second shows the change feed (LISTEN/NOTIFY) at work, not
	// the poll.
	adminWatch = "10s"
	// eventTimeout bounds waiting for one event (a session closed, a
	// login that works again).
	eventTimeout = 8 * time.Second
)

// node is one XMPP server with its saslcert instance.
type node struct {
	name string
	*stacktest.Stack
}

func startNode(t *testing.T, name, storeURL string) node {
	t.Helper()
	st := stacktest.Start(t, stacktest.Options{
		Process:    true,
		ServeFlags: []string{"--store", storeURL, "--instance", name, "--admin-watch-interval", adminWatch, "--store-wait", "30s"},
	})
	st.Register(t, user)
	return node{name, st}
}

// login logs in with EXTERNAL and c; a session that opens is closed at cleanup.
func (n node) login(t *testing.T, c *certtest.Cert) (*xmppclient.Client, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cl, err := n.LoginCert(ctx, user, c, "")
	if err == nil {
		t.Cleanup(func() { _ = cl.Close() })
	}
	return cl, err
}

func (n node) mustLogin(t *testing.T, c *certtest.Cert) *xmppclient.Client {
	t.Helper()
	cl, err := n.login(t, c)
	if err != nil {
		t.Fatalf("EXTERNAL login on %s: %v", n.name, err)
	}
	return cl
}

// password logs alice in with her password on n.
func (n node) password(t *testing.T) *xmppclient.Client {
	t.Helper()
	cl, err := n.LoginPassword(t.Context(), user)
	if err != nil {
		t.Fatalf("password login on %s: %v", n.name, err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// closed waits until cl's stream ends.
func closed(t *testing.T, what string, cl *xmppclient.Client) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-cl.Done():
		return time.Since(start)
	case <-time.After(eventTimeout):
		t.Fatalf("%s: the session is still open after %v", what, eventTimeout)
		return 0
	}
}

// condition is the SASL failure condition of a failed login ("" if none).
func condition(err error) string {
	var ae *xmppclient.AuthError
	if errors.As(err, &ae) {
		return ae.Condition
	}
	return ""
}

func TestIntegrationTwoServers(t *testing.T) {
	if testing.Short() {
		t.Skip("two Prosody servers, two components and PostgreSQL (-short)")
	}
	pg := pgtest.Start(t, pgtest.Options{})
	storeURL := pg.URL(pg.CreateDB(t))
	a := startNode(t, "a", storeURL)
	b := startNode(t, "b", storeURL)
	bin := stacktest.Binary(t)

	c1 := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{account}})
	c2 := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{account}})
	c3 := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{account}})

	// Upload through A, log in on B.
	pa := a.password(t)
	for _, up := range []struct {
		name string
		c    *certtest.Cert
	}{{"one", c1}, {"two", c2}, {"three", c3}} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		if err := xep0257.AppendCert(ctx, pa.Session, jid.JID{}, up.name, up.c.DER, false); err != nil {
			t.Fatalf("upload %s through A: %v", up.name, err)
		}
		cancel()
	}
	b.mustLogin(t, c1)
	t.Log("uploaded through A, logged in on B")

	// A revocation through B closes the live session on A.
	sessA := a.mustLogin(t, c1)
	pb := b.password(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	if err := xep0257.RevokeCert(ctx, pb.Session, jid.JID{}, "one"); err != nil {
		t.Fatalf("revoke through B: %v", err)
	}
	cancel()
	d := closed(t, "revoked through B, session on A", sessA)
	t.Logf("revoked through B: the session on A closed %v after B acknowledged", d)
	for _, n := range []node{a, b} {
		if _, err := n.login(t, c1); condition(err) != "not-authorized" {
			t.Fatalf("login with the revoked certificate on %s: %v, want not-authorized", n.name, err)
		}
	}

	// The CLI's revocation closes sessions on both.
	s2a, s2b := a.mustLogin(t, c2), b.mustLogin(t, c2)
	cmd := exec.CommandContext(t.Context(), bin, "cert", "revoke", "--store", storeURL, "--jid", account, "--name", "two", "--wait", "20s")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("saslcert cert revoke: %v\n%s", err, out)
	}
	closed(t, "CLI revoke, session on A", s2a)
	closed(t, "CLI revoke, session on B", s2b)
	t.Log("the CLI's revocation closed the sessions on A and B")

	// PostgreSQL restarted under load: logins never succeed wrongly
	// (revoked c1; certificates never stored, fresh each time, so that no
	// cached answer applies), fail with temporary-auth-failure or succeed
	// (valid c3, possibly from the plugin's cache) while it is down, and
	// recover.
	var wrong, tempFail, otherFail, ok atomic.Int64
	loadCtx, stopLoad := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, n := range []node{a, b} {
		for _, kind := range []string{"revoked", "valid", "unknown"} {
			wg.Go(func() {
				for loadCtx.Err() == nil {
					c := map[string]*certtest.Cert{"revoked": c1, "valid": c3}[kind]
					if c == nil {
						c = stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{account}})
					}
					cl, err := n.login(t, c)
					switch {
					case err == nil && kind != "valid":
						wrong.Add(1)
						t.Errorf("a %s certificate logged in on %s", kind, n.name)
					case err == nil:
						ok.Add(1)
						cl.Close()
					case condition(err) == "temporary-auth-failure":
						tempFail.Add(1)
					case condition(err) == "not-authorized" && kind != "valid":
					case loadCtx.Err() != nil:
					default:
						otherFail.Add(1)
						t.Logf("login with a %s certificate on %s while PostgreSQL restarts: %v", kind, n.name, err)
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
		}
	}
	time.Sleep(500 * time.Millisecond)
	pg.Stop()
	time.Sleep(2 * time.Second)
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, errA := a.login(t, c3)
		_, errB := b.login(t, c3)
		if errA == nil && errB == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logins did not recover after PostgreSQL came back: A %v, B %v", errA, errB)
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopLoad()
	wg.Wait()
	t.Logf("PostgreSQL restarted under load: %d logins succeeded, %d temporary-auth-failure, %d other failures, %d wrong", ok.Load(), tempFail.Load(), otherFail.Load(), wrong.Load())
	if otherFail.Load() > 0 {
		t.Errorf("%d logins failed otherwise than with temporary-auth-failure", otherFail.Load())
	}
	if tempFail.Load() == 0 {
		t.Errorf("no login got temporary-auth-failure while PostgreSQL was down")
	}

	// One component killed: the other keeps serving its server.
	a.Comp().Kill(t)
	b.mustLogin(t, c3)
	if _, err := b.login(t, c1); condition(err) != "not-authorized" {
		t.Fatalf("login with the revoked certificate on B after A was killed: %v", err)
	}
	t.Log("A's component killed; B still serves")
}
