package ejabberdtest

import (
	"strings"
	"testing"
)

// TestStart starts ejabberd with mod_saslcert, registers an account with
// ejabberdctl, restarts it with the same spool (the account survives) and
// checks that the module was loaded.
func TestStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ejabberd (-short)")
	}
	s := Start(t, Options{})
	s.Register(t, "alice", "secret-pw")
	s.Restart(t)
	out, err := s.Ctl("registered_users", s.Domain)
	if err != nil || !strings.Contains(out, "alice") {
		t.Fatalf("registered_users after a restart: %v\n%s", err, out)
	}
	if !strings.Contains(s.Log(), "mod_saslcert") && !strings.Contains(s.Log(), "is started in the node") {
		t.Fatalf("log:\n%s", s.Log())
	}
}
