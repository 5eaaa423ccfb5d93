package prosody_test

import (
	"os"
	"path/filepath"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/pluginproto"
)

// TestAccountsQuery: the plugin answers the component's reconciliation query
// (<accounts/>, docs/PLUGIN-PROTOCOL.md) with exists='true' only for an
// account that exists, 'false' only where the accounts store confirms the
// absence, and 'unknown' whenever it cannot tell: an unreadable account
// record (a storage error must never look like a deleted account, whose
// certificates the component would revoke), a JID that is not in Prosody's
// canonical form, or an account of another host.
func TestAccountsQuery(t *testing.T) {
	s := startServer(t)
	s.Register(t, "carol", "carolpw")
	// carol's account record cannot be read: user_exists says no, the
	// store says "error".
	carol := filepath.Join(s.Dir, "data", "example%2eorg", "accounts", "carol.dat")
	if _, err := os.Stat(carol); err != nil {
		t.Fatalf("carol's account file: %v", err)
	}
	if err := os.WriteFile(carol, []byte("this is not Lua {"), 0o600); err != nil {
		t.Fatal(err)
	}
	fc := startComponent(t, s)
	accounts := []string{"alice@example.org", "nobody@example.org", "carol@example.org", "Alice@example.org",
		"stra\u00dfe@example.org", "alice@elsewhere.example", "alice@example.org/res"}
	want := map[string]string{
		"alice@example.org":       "true",
		"nobody@example.org":      "false",
		"carol@example.org":       "unknown",
		"Alice@example.org":       "unknown",
		"stra\u00dfe@example.org": "unknown",
		"alice@elsewhere.example": "unknown",
		"alice@example.org/res":   "unknown",
	}
	var q pluginproto.Accounts
	for _, a := range accounts {
		q.Accounts = append(q.Accounts, pluginproto.Account{JID: a})
	}
	r := fc.sendPayload(t, stanza.GetIQ, "a1", q)
	if r.Attr("type") != "result" {
		t.Fatalf("accounts query: %s", r.Outcome())
	}
	got := map[string]string{}
	for _, n := range r.Child(nsPlugin, "accounts").Children {
		got[n.Attr("jid")] = n.Attr("exists")
	}
	for _, a := range accounts {
		if got[a] != want[a] {
			t.Errorf("%s: exists=%q, want %q", a, got[a], want[a])
		}
	}
	if len(got) != len(want) {
		t.Errorf("answers: %v", got)
	}
}
