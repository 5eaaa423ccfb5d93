package hostile

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// TestIntegrationHistoryBounded: a user who uploads a large certificate and
// disables it in a loop (150 cycles made 5.5 MB before) is stopped: by the
// per-account history cap (--max-history) with modify/policy-violation, and
// by the upload rate (--max-appends-per-hour) with wait/resource-constraint;
// after the refusal the store's certificates and audit log do not change.
// (The database file's size is not compared: the audit watch records that it
// is alive after every poll, a write that may land between two refusals.)
func TestIntegrationHistoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	for _, tc := range []struct {
		name       string
		flags      []string
		okCycles   int // appends that succeed
		typ        stanza.ErrorType
		cond       stanza.Condition
		wantStored int // records of the account in the store at the end
	}{
		{name: "history cap", flags: []string{"--max-history", "3", "--max-appends-per-hour", "1000"},
			okCycles: 4, typ: stanza.Modify, cond: stanza.PolicyViolation, wantStored: 4},
		{name: "upload rate", flags: []string{"--max-history", "1000", "--max-appends-per-hour", "6"},
			okCycles: 6, typ: stanza.Wait, cond: stanza.ResourceConstraint, wantStored: 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := stacktest.Start(t, stacktest.Options{Domain: domain, Process: true, ServeFlags: tc.flags})
			st.Register(t, "hoarder")
			c, err := st.LoginPassword(ctxT(t), "hoarder")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var before stacktest.Digest
			for i := 0; i < tc.okCycles+5; i++ {
				name := "big" + strconv.Itoa(i)
				// ~10 KB of DER (long DNS names), under the 16 KiB of base64.
				cert := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"hoarder@" + domain}, DNSNames: bulkNames(i)})
				err := xep0257.AppendCert(ctxT(t), c.Session, jid.JID{}, name, cert.DER, false)
				if i < tc.okCycles {
					if err != nil {
						t.Fatalf("append %d: %v", i, err)
					}
					if err := xep0257.DisableCert(ctxT(t), c.Session, jid.JID{}, name); err != nil {
						t.Fatalf("disable %d: %v", i, err)
					}
					continue
				}
				var se stanza.Error
				if !errors.As(err, &se) || se.Type != tc.typ || se.Condition != tc.cond {
					t.Fatalf("append %d beyond the bound: %v, want %s/%s", i, err, tc.typ, tc.cond)
				}
				if i == tc.okCycles {
					t.Logf("refused: %s/%s %q", se.Type, se.Condition, se.Text[""])
					before = st.Digest(t)
				} else if d := st.Digest(t); d != before {
					t.Errorf("the store changed after the refusal: %+v, was %+v", d, before)
				}
			}
			n := 0
			for _, r := range st.Certs(t) {
				if r.Account == "hoarder@"+domain && r.State != storage.StateActive {
					n++
				}
			}
			if n != tc.wantStored {
				t.Errorf("%d records of hoarder stored, want %d", n, tc.wantStored)
			}
		})
	}
}

// bulkNames returns 100 DNS names of about 100 bytes, distinct per i.
func bulkNames(i int) []string {
	names := make([]string, 100)
	for j := range names {
		names[j] = strings.Repeat("x", 80) + "-" + strconv.Itoa(i) + "-" + strconv.Itoa(j) + ".example.org"
	}
	return names
}
