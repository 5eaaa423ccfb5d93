package enrolle2e

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enrollcmd"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// TestEnrollRevokeRenewed (issue 10.8): revoking an enrolled certificate
// revokes its key. A certificate is requested as "laptop" and renewed for
// the same key; a session logs in with the renewal; the owner revokes
// "laptop" with XEP-0257. The renewal is revoked with it (in the store and
// at the CA), its live session is closed, and it no longer logs in — a
// thief holding the key keeps nothing.
func TestEnrollRevokeRenewed(t *testing.T) {
	rs := newRenewalStack(t)
	ctx := context.Background()
	erin := rs.Register(t, "erin")
	mc := rs.messageClient(t, "erin")
	key := newKey(t)
	res, err := requestCert(t, mc.Session, rs.compJID, map[string]string{enrollcmd.FieldCSR: csrPEM(t, key, "", ""), enrollcmd.FieldName: "laptop"})
	if err != nil {
		t.Fatalf("Request a certificate: %v", err)
	}
	text, _ := res.Form.value(enrollcmd.FieldChain)
	first := pemChain(t, text)

	rs.clk.advance(2*time.Hour + 5*time.Minute)
	select {
	case <-mc.msgs:
	case <-time.After(eventTimeout):
		t.Fatal("no message about the renewal")
	}
	latest := fetchLatest(t, mc.Session, rs.compJID)
	text, _ = latest.Form.value(enrollcmd.FieldChain)
	renewed := pemChain(t, text)
	name, _ := latest.Form.value(enrollcmd.FieldName)
	if !strings.HasPrefix(name, "laptop (renewed ") {
		t.Fatalf("latest certificate %q; want the renewal of laptop", name)
	}
	thief, err := rs.certLogin(t, erin, tlsCert(renewed, key))
	if err != nil {
		t.Fatalf("SASL EXTERNAL with the renewed certificate: %v", err)
	}

	qctx, cancel := context.WithTimeout(ctx, stepTimeout)
	err = xep0257.RevokeCert(qctx, mc.Session, jid.JID{}, "laptop")
	cancel()
	if err != nil {
		t.Fatalf("revoke laptop: %v", err)
	}
	for _, der := range [][]byte{first[0], renewed[0]} {
		rec, err := rs.db.FindCertByFingerprint(ctx, storage.FingerprintOf(der))
		if err != nil || rec.State != storage.StateRevoked {
			t.Fatalf("record %v after revoking laptop: %+v, %v; want revoked", storage.FingerprintOf(der), rec, err)
		}
	}
	leaf, err := x509.ParseCertificate(renewed[0])
	if err != nil {
		t.Fatal(err)
	}
	if revoked, ok, err := rs.ca.CheckRevocation(ctx, leaf, rs.ca.Cert()); err != nil || !ok || !revoked {
		t.Fatalf("the renewal at the CA: revoked %v, known %v, %v; want revoked", revoked, ok, err)
	}
	t.Logf("the session of the renewal ended: %v", waitClosed(t, thief))
	ae := rs.mustRefuse(t, erin, tlsCert(renewed, key), "not-authorized")
	t.Logf("renewal after laptop was revoked: <%s/> %q", ae.Condition, ae.Text)
}
