package enrolle2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
)

// TestEnrollTrustedRoots logs in with CA-issued certificates that were never
// uploaded nor stored: one from step-ca (the organisation's CA, trusted
// through trusted_roots, revocation from its CRL in crl_urls) and one from
// the embedded CA (trusted_roots = "embedded", revocation from its own
// list). Each works until it is revoked at its CA, then the next login is
// refused. A certificate of an untrusted CA is refused throughout.
func TestEnrollTrustedRoots(t *testing.T) {
	st, _, org := newTrustedRootsStack(t)
	ctx, cancel := deadline()
	defer cancel()

	// A certificate the organisation's step-ca issued to carol, out of band.
	carol := st.Register(t, "carol")
	carolKey := newKey(t)
	orgCert, err := org.Issue(ctx, &enroll.IssueRequest{Account: carol, CSR: catest.NewCSR(t, catest.CSROptions{Key: carolKey}), Lifetime: 24 * time.Hour})
	if err != nil {
		t.Fatalf("step-ca: %v", err)
	}
	t.Logf("step-ca issued serial %x for %s (never uploaded)", orgCert.Cert.SerialNumber, carol)
	// The client presents the leaf only: the intermediate comes from the
	// trusted_roots bundle.
	c, err := st.certLogin(t, carol, tlsCert(orgCert.Chain[:1], carolKey))
	if err != nil {
		t.Fatalf("trusted-roots login with the step-ca certificate: %v", err)
	}
	t.Logf("trusted-roots login with the step-ca certificate: bound as %s", c.LocalAddr())
	c.Close()
	if err := org.Revoke(ctx, &enroll.RevokeRequest{Cert: orgCert.Cert, Reason: enroll.ReasonAffiliationChanged}); err != nil {
		t.Fatalf("revoking at step-ca: %v", err)
	}
	ae := st.mustRefuse(t, carol, tlsCert(orgCert.Chain[:1], carolKey), "not-authorized")
	t.Logf("after the revocation at step-ca: refused <%s/> %q", ae.Condition, ae.Text)

	// A certificate of the embedded CA for dave, never stored.
	dave := st.Register(t, "dave")
	ca, err := localca.Load(filepath.Join(st.DataDir, "ca"), localca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	daveKey := newKey(t)
	local, err := ca.Issue(ctx, &enroll.IssueRequest{Account: dave, CSR: catest.NewCSR(t, catest.CSROptions{Key: daveKey}), Lifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err = st.certLogin(t, dave, tlsCert(local.Chain, daveKey))
	if err != nil {
		t.Fatalf("trusted-roots login with the embedded CA's certificate: %v", err)
	}
	t.Logf("trusted-roots login with an embedded-CA certificate (serial %x, never stored): bound as %s", local.Cert.SerialNumber, c.LocalAddr())
	c.Close()
	if err := ca.Revoke(ctx, &enroll.RevokeRequest{Cert: local.Cert}); err != nil {
		t.Fatal(err)
	}
	ae = st.mustRefuse(t, dave, tlsCert(local.Chain, daveKey), "not-authorized")
	t.Logf("after the revocation at the embedded CA: refused <%s/> %q", ae.Condition, ae.Text)

	// A self-signed certificate nobody uploaded is not trusted.
	ss := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{dave.String()}, NotAfter: time.Now().Add(time.Hour)})
	st.mustRefuse(t, dave, stacktest.TLSCert(ss), "not-authorized")
}
