package enrolle2e

import (
	"strings"
	"testing"

	"github.com/saslcert/saslcert/internal/ejabberdtest"
)

// TestEjabberdTablesOutliveOneHost: mod_saslcert's tables (sessions, cache,
// link state, prefetch answers, lookup buckets) are shared by
// every host and created by the first host's process. Stopping the module
// on that host must hand them to another host's process, not take them
// with it: the other hosts' logins depend on them.
func TestEjabberdTablesOutliveOneHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ejabberd")
	}
	ejabberdtest.Skip(t)
	s := ejabberdtest.Start(t, ejabberdtest.Options{ExtraHosts: []string{"example.net"}})
	owner := func() string {
		t.Helper()
		out, err := s.Eval(`case rpc:call(Node, ets, info, [mod_saslcert_link, owner]) of ` +
			`undefined -> gone; P -> element(2, rpc:call(Node, erlang, process_info, [P, registered_name])) end`)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	first := owner()
	var stopHost string
	switch first {
	case "'mod_saslcert_example.org'":
		stopHost = "example.org"
	case "'mod_saslcert_example.net'":
		stopHost = "example.net"
	default:
		t.Fatalf("the tables' owner is %s, want one host's mod_saslcert process", first)
	}
	if out, err := s.Eval(`rpc:call(Node, gen_mod, stop_module, [<<"` + stopHost + `">>, mod_saslcert])`); err != nil {
		t.Fatalf("stopping mod_saslcert on %s: %v %s", stopHost, err, out)
	}
	after := owner()
	if after == "gone" || after == first {
		t.Fatalf("after mod_saslcert stopped on %s the tables' owner is %s (was %s): the other host lost them", stopHost, after, first)
	}
	t.Logf("mod_saslcert stopped on %s: its tables moved from %s to %s", stopHost, first, after)
}
