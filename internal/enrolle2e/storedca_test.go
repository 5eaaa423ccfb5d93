package enrolle2e

import (
	"path/filepath"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/xep0257"
)

// TestEnrollStoredRevokedAtCA (issue 10.9): a CA-issued certificate that
// was also uploaded (XEP-0257 <append/>) is judged by its CA's revocations
// too, as it would be through trusted roots: after step-ca (or the
// embedded CA) revokes it, the stored, still active certificate no longer
// logs in. A self-signed upload is not affected.
func TestEnrollStoredRevokedAtCA(t *testing.T) {
	st, _, org := newTrustedRootsStack(t)
	ctx, cancel := deadline()
	defer cancel()

	// carol's certificate from the organisation's step-ca, uploaded.
	carol := st.Register(t, "carol")
	carolPW := st.passwordLogin(t, "carol")
	carolKey := newKey(t)
	orgCert, err := org.Issue(ctx, &enroll.IssueRequest{Account: carol, CSR: catest.NewCSR(t, catest.CSROptions{Key: carolKey}), Lifetime: 24 * time.Hour})
	if err != nil {
		t.Fatalf("step-ca: %v", err)
	}
	if err := xep0257.AppendCert(ctx, carolPW.Session, jid.JID{}, "org laptop", orgCert.Chain[0], false); err != nil {
		t.Fatalf("uploading the step-ca certificate: %v", err)
	}
	c, err := st.certLogin(t, carol, tlsCert(orgCert.Chain[:1], carolKey))
	if err != nil {
		t.Fatalf("login with the uploaded step-ca certificate: %v", err)
	}
	c.Close()
	if err := org.Revoke(ctx, &enroll.RevokeRequest{Cert: orgCert.Cert, Reason: enroll.ReasonKeyCompromise}); err != nil {
		t.Fatalf("revoking at step-ca: %v", err)
	}
	if rec := st.storedRecord(t, orgCert.Chain[0]); rec.State != "active" {
		t.Fatalf("the stored record is %s; the revocation was at the CA only", rec.State)
	}
	ae := st.mustRefuse(t, carol, tlsCert(orgCert.Chain[:1], carolKey), "not-authorized")
	t.Logf("uploaded step-ca certificate after its revocation at step-ca: <%s/> %q", ae.Condition, ae.Text)

	// dave's certificate from the embedded CA, made without saslcert's
	// enrollment, uploaded, then revoked at the CA.
	dave := st.Register(t, "dave")
	davePW := st.passwordLogin(t, "dave")
	ca, err := localca.Load(filepath.Join(st.DataDir, "ca"), localca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	daveKey := newKey(t)
	local, err := ca.Issue(ctx, &enroll.IssueRequest{Account: dave, CSR: catest.NewCSR(t, catest.CSROptions{Key: daveKey}), Lifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := xep0257.AppendCert(ctx, davePW.Session, jid.JID{}, "tablet", local.Chain[0], false); err != nil {
		t.Fatalf("uploading the embedded CA's certificate: %v", err)
	}
	c, err = st.certLogin(t, dave, tlsCert(local.Chain, daveKey))
	if err != nil {
		t.Fatalf("login with the uploaded embedded-CA certificate: %v", err)
	}
	c.Close()
	if err := ca.Revoke(ctx, &enroll.RevokeRequest{Cert: local.Cert}); err != nil {
		t.Fatal(err)
	}
	ae = st.mustRefuse(t, dave, tlsCert(local.Chain, daveKey), "not-authorized")
	t.Logf("uploaded embedded-CA certificate after its revocation at the CA: <%s/> %q", ae.Condition, ae.Text)

	// A self-signed upload knows no CA: it logs in as before.
	ss := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{dave.String()}, NotAfter: time.Now().Add(time.Hour)})
	if err := xep0257.AppendCert(ctx, davePW.Session, jid.JID{}, "self-signed", ss.DER, false); err != nil {
		t.Fatalf("uploading a self-signed certificate: %v", err)
	}
	c, err = st.certLogin(t, dave, stacktest.TLSCert(ss))
	if err != nil {
		t.Fatalf("login with a self-signed upload: %v", err)
	}
	c.Close()
}
