package enrolle2e

import (
	"crypto"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/enrollcmd"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
)

// TestEnrollKeyPolicy runs serve with min-rsa-bits = 4096, the embedded CA
// as issuer and as trusted root of the domain: the floor that applies to
// XEP-0257 uploads applies to enrollment and trusted-root logins too (issue
// 11.6). A 2048-bit CSR is refused by "Request a certificate" before the CA
// signs anything, and a 2048-bit certificate of the trusted CA (issued out
// of band, never stored) cannot log in; ECDSA keys pass both.
func TestEnrollKeyPolicy(t *testing.T) {
	st := newStack(t)
	st.initCA(t)
	st.startServe(t, st.baseConfig(t, fmt.Sprintf(`
min-rsa-bits = 4096

[policy.%q]
issuer = "embedded"
trusted_roots = ["embedded"]
`, st.S.Domain())))
	comp := jid.MustParse(st.S.ComponentJID())
	const floor = "RSA key of 2048 bits; at least 4096 are required"

	t.Run("enroll", func(t *testing.T) {
		st.Register(t, "alice")
		pw := st.passwordLogin(t, "alice")
		tests := []struct {
			name string
			key  crypto.Signer
			want string // "" = issued; else a text the bad-request must hold
		}{
			{name: "ok/ecdsa-p256", key: newKey(t)},
			{name: "error/rsa-2048", key: certtest.Key(t, certtest.RSA2048), want: floor},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res, err := requestCert(t, pw.Session, comp, map[string]string{enrollcmd.FieldCSR: csrPEM(t, tt.key, "", ""), enrollcmd.FieldName: tt.name})
				if tt.want == "" {
					if err != nil || res.Status != "completed" {
						t.Fatalf("Request a certificate: %v (%+v); want it completed", err, res)
					}
					return
				}
				se := stanzaError(t, err)
				if se.Condition != stanza.BadRequest || !strings.Contains(se.Text[""], tt.want) {
					t.Fatalf("Request a certificate: <%s/> %q; want <bad-request/> with %q", se.Condition, se.Text[""], tt.want)
				}
				t.Logf("refused: <%s/> %q", se.Condition, se.Text[""])
			})
		}
	})

	t.Run("trusted-root-login", func(t *testing.T) {
		ca, err := localca.Load(filepath.Join(st.DataDir, "ca"), localca.Options{})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			user string
			key  crypto.Signer
			want string // "" = logs in; else the SASL condition
		}{
			{name: "ok/ecdsa-p256", user: "carol", key: newKey(t)},
			{name: "error/rsa-2048", user: "dave", key: certtest.Key(t, certtest.RSA2048), want: "not-authorized"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				account := st.Register(t, tt.user)
				ctx, cancel := deadline()
				defer cancel()
				// Out of band: the embedded CA itself does not know the
				// serve's floor; only serve applies it at login.
				issued, err := ca.Issue(ctx, &enroll.IssueRequest{Account: account, CSR: catest.NewCSR(t, catest.CSROptions{Key: tt.key}), Lifetime: 24 * time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				if tt.want == "" {
					c, err := st.certLogin(t, account, tlsCert(issued.Chain, tt.key))
					if err != nil {
						t.Fatalf("trusted-roots login: %v", err)
					}
					c.Close()
					return
				}
				ae := st.mustRefuse(t, account, tlsCert(issued.Chain, tt.key), tt.want)
				t.Logf("refused: <%s/> %q", ae.Condition, ae.Text)
			})
		}
	})
}
