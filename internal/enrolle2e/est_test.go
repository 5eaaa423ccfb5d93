package enrolle2e

import (
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enrollcmd"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/xep0257"
)

// TestEnrollEST: the domain's issuer is an EST server (globalsign's
// estserver). EST CAs copy the CSR's names, so the CSR must request the
// account's xmppAddr; the certificate is issued, stored and logs in. EST has
// no revocation: the revoke closes the session and refuses the next login
// (the store decides), and the log says to revoke at the CA by other means.
func TestEnrollEST(t *testing.T) {
	st := newStack(t)
	e := catest.StartEST(t)
	root := st.writeFile(t, "est-root.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.Root.Raw}), 0o644)
	creds := st.writeFile(t, "est.credentials", []byte("saslcert:secret\n"), 0o600)
	p := st.startServe(t, st.baseConfig(t, fmt.Sprintf(`ca = "est"
est-url = %q
est-root = %q
est-credentials-file = %q
est-allow-server-auth = true   # globalsign's mock CA adds serverAuth to every certificate
`, e.URL, root, creds)))
	comp := jid.MustParse(st.S.ComponentJID())
	frank := st.Register(t, "frank")
	pw := st.passwordLogin(t, "frank")

	// A CSR without the xmppAddr is refused before it is sent.
	_, err := requestCert(t, pw.Session, comp, map[string]string{enrollcmd.FieldCSR: csrPEM(t, newKey(t), "", "")})
	se := stanzaError(t, err)
	t.Logf("EST, CSR without the xmppAddr: <%s/> %q", se.Condition, se.Text[""])

	key := newKey(t)
	res, err := requestCert(t, pw.Session, comp, map[string]string{enrollcmd.FieldCSR: csrPEM(t, key, frank.String(), frank.String()), enrollcmd.FieldName: "est"})
	if err != nil {
		t.Fatalf("Request a certificate (EST): %v", err)
	}
	text, _ := res.Form.value(enrollcmd.FieldChain)
	chain := pemChain(t, text)
	checkIssued(t, chain, frank, key, 0, e.CA, e.Root, time.Time{})
	ext, err := st.certLogin(t, frank, tlsCert(chain, key))
	if err != nil {
		t.Fatalf("SASL EXTERNAL with the EST certificate: %v", err)
	}
	ctx, cancel := deadline()
	defer cancel()
	if err := xep0257.RevokeCert(ctx, pw.Session, jid.JID{}, "est"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ext)
	ae := st.mustRefuse(t, frank, tlsCert(chain, key), "not-authorized")
	t.Logf("after the revoke: refused <%s/>", ae.Condition)
	if !strings.Contains(p.Log(), "revoke it there by other means") {
		t.Fatal("the log does not say that the EST CA must be told by other means")
	}
}
