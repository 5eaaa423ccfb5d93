package prosodytest_test

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/prosodytest"
)

func TestStartRegisterLoginPlain(t *testing.T) {
	s := prosodytest.Start(t, prosodytest.Options{})
	s.Register(t, "alice", "s3cret")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	origin := jid.MustParse("alice@" + s.Domain + "/harness")
	sess, err := s.DialClient(ctx, origin,
		xmpp.StartTLS(s.TLSConfig()),
		xmpp.SASL("", "s3cret", sasl.Plain),
		xmpp.BindResource(),
	)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	// mellium requests no particular resource (it uses the stream's "to",
	// which Prosody sets to the bare JID), so the server picks one.
	if got := sess.LocalAddr(); !got.Bare().Equal(origin.Bare()) || got.Resourcepart() == "" {
		t.Errorf("bound as %q, want %s/<something>", got, origin.Bare())
	}
	if sess.State()&xmpp.Secure == 0 {
		t.Error("session is not secure")
	}
	if err := sess.Close(); err != nil {
		t.Error(err)
	}
	sess.Conn().Close()

	// A wrong password fails.
	_, err = s.DialClient(ctx, origin,
		xmpp.StartTLS(s.TLSConfig()),
		xmpp.SASL("", "wrong", sasl.Plain),
		xmpp.BindResource(),
	)
	if err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	t.Logf("wrong password: %v", err)

	// Restart keeps ports and accounts.
	pid := s.Pid()
	s.Restart(t)
	if s.Pid() == pid {
		t.Error("pid unchanged after restart")
	}
	sess, err = s.DialClient(ctx, origin,
		xmpp.StartTLS(s.TLSConfig()),
		xmpp.SASL("", "s3cret", sasl.Plain),
		xmpp.BindResource(),
	)
	if err != nil {
		t.Fatalf("login after restart: %v", err)
	}
	sess.Close()
	sess.Conn().Close()

	// The component port accepts the component.
	c, err := net.DialTimeout("tcp", s.ComponentAddr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	s.Stop()
	s.Stop() // idempotent
	if s.Running() {
		t.Fatal("still running after Stop")
	}
	if _, err := net.DialTimeout("tcp", s.C2SAddr, time.Second); err == nil {
		t.Error("c2s port still open after Stop")
	}
	if !strings.Contains(s.Log(), "Authenticated as alice@"+s.Domain) {
		t.Errorf("log has no authentication line:\n%s", s.Log())
	}
}

func TestNoProsodyLeft(t *testing.T) {
	s := prosodytest.Start(t, prosodytest.Options{Domain: "other.example"})
	pid := s.Pid()
	s.Stop()
	if err := exec.Command("kill", "-0", strconv.Itoa(pid)).Run(); err == nil {
		t.Errorf("prosody pid %d still alive after Stop", pid)
	}
}

func TestDelegationLoads(t *testing.T) {
	s := prosodytest.Start(t, prosodytest.Options{Delegation: true})
	s.Stop()
	log := s.Log()
	if !strings.Contains(log, "delegation") {
		t.Errorf("mod_delegation not mentioned in the log")
	}
	for _, bad := range []string{"Failed to load", "\terror\t"} {
		if strings.Contains(log, bad) {
			t.Errorf("log contains %q", bad)
		}
	}
}

// stopTB records Skipf/Fatalf and stops the caller with a panic.
type stopTB struct {
	testing.TB
	skipped, failed bool
}

type stopped struct{}

func (r *stopTB) Skipf(string, ...any)  { r.skipped = true; panic(stopped{}) }
func (r *stopTB) Fatalf(string, ...any) { r.failed = true; panic(stopped{}) }
func (r *stopTB) Helper()               {}

func TestMissingProsody(t *testing.T) {
	old := prosodytest.ProsodyBin
	prosodytest.ProsodyBin = "/nonexistent/prosody"
	defer func() { prosodytest.ProsodyBin = old }()
	run := func() *stopTB {
		r := &stopTB{TB: t}
		func() {
			defer func() {
				if v := recover(); v != nil && v != (stopped{}) {
					panic(v)
				}
			}()
			prosodytest.Start(r, prosodytest.Options{})
		}()
		return r
	}
	t.Setenv(prosodytest.RequireEnv, "")
	if r := run(); !r.skipped || r.failed {
		t.Errorf("without %s: skipped=%v failed=%v", prosodytest.RequireEnv, r.skipped, r.failed)
	}
	t.Setenv(prosodytest.RequireEnv, "1")
	if r := run(); r.skipped || !r.failed {
		t.Errorf("with %s: skipped=%v failed=%v", prosodytest.RequireEnv, r.skipped, r.failed)
	}
}
