package enroll_test

import (
	"context"
	"errors"
	"testing"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
)

// TestEnrollServiceIssuerRevoked: stored certificates of a CA whose
// revocations are read (the embedded CA, a domain's trusted roots) are
// judged by them; a self-signed certificate or one of a CA saslcert does
// not follow is not; a followed CA without readable revocations fails
// closed, as trusted-roots logins do.
func TestEnrollServiceIssuerRevoked(t *testing.T) {
	srv := newCRLServer(t)
	f := newSvcFixture(t, func(c *enroll.ServiceConfig, _ *svcFixture) {
		p := c.Policies["example.net"]
		p.CRLURLs = []string{srv.url}
		c.Policies["example.net"] = p
		c.CRLMaxAge = -1
	})
	ctx := context.Background()
	check := func(name, domain string, cert *certtest.Cert, wantApplies, wantRevoked bool, wantErr error) {
		t.Helper()
		applies, revoked, err := f.svc.IssuerRevoked(ctx, domain, cert.Cert)
		if applies != wantApplies || revoked != wantRevoked || (wantErr == nil) != (err == nil) || (wantErr != nil && !errors.Is(err, wantErr)) {
			t.Fatalf("%s: applies %v revoked %v err %v; want %v %v %v", name, applies, revoked, err, wantApplies, wantRevoked, wantErr)
		}
	}

	local, err := f.ca.Issue(ctx, &enroll.IssueRequest{Account: svcAlice, CSR: catest.NewCSR(t, catest.CSROptions{})})
	if err != nil {
		t.Fatal(err)
	}
	embedded := &certtest.Cert{Cert: local.Cert, DER: local.Cert.Raw}
	check("embedded CA", "example.org", embedded, true, false, nil)
	if err := f.ca.Revoke(ctx, &enroll.RevokeRequest{Cert: local.Cert}); err != nil {
		t.Fatal(err)
	}
	check("embedded CA, revoked there", "example.org", embedded, true, true, nil)

	selfSigned := certtest.New(t, certtest.Options{XMPPAddrs: []string{svcAlice.String()}})
	check("self-signed", "example.org", selfSigned, false, false, nil)
	stranger := certtest.NewCA(t, "stranger")
	check("a CA nobody follows", "example.org", certtest.New(t, certtest.Options{Parent: stranger, XMPPAddrs: []string{svcAlice.String()}}), false, false, nil)

	orgLeaf := certtest.New(t, certtest.Options{Parent: f.org, XMPPAddrs: []string{svcBob.String()}})
	check("trusted root, CRL unreachable", "example.net", orgLeaf, true, false, enroll.ErrUnavailable)
	srv.set(makeCRL(t, f.org, certtest.Now, 3600e9))
	check("trusted root, not in its CRL", "example.net", orgLeaf, true, false, nil)
	srv.set(makeCRL(t, f.org, certtest.Now, 3600e9, orgLeaf.Cert.SerialNumber))
	check("trusted root, in its CRL", "example.net", orgLeaf, true, true, nil)
	// The org root is trusted by example.net only: for example.org it is a
	// CA saslcert does not follow.
	check("another domain's trusted root", "example.org", orgLeaf, false, false, nil)
}
