package localca_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
)

func TestEnrollEmbeddedRenew(t *testing.T) {
	ca, clk := newCA(t, localca.Options{})
	other, _ := newCA(t, localca.Options{})
	ctx := context.Background()
	issue := func(ca *localca.CA) *enroll.Issued {
		t.Helper()
		is, err := ca.Issue(ctx, &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{}), Lifetime: 3 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return is
	}
	prev := issue(ca)
	clk.Add(2 * time.Hour)
	next, err := ca.Issue(ctx, &enroll.IssueRequest{Account: alice, Renew: prev.Cert, Lifetime: 3 * time.Hour})
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	checkIssued(t, ca, next, clk.Now(), 3*time.Hour)
	if !bytes.Equal(next.Cert.RawSubjectPublicKeyInfo, prev.Cert.RawSubjectPublicKeyInfo) || next.Cert.SerialNumber.Cmp(prev.Cert.SerialNumber) == 0 {
		t.Fatal("the renewal is not a new certificate for the same key")
	}

	revoked := issue(ca)
	if err := ca.Revoke(ctx, &enroll.RevokeRequest{Cert: revoked.Cert}); err != nil {
		t.Fatal(err)
	}
	expired := issue(ca)
	foreign := issue(other)
	selfSigned := certtest.New(t, certtest.Options{XMPPAddrs: []string{alice.String()}, NotBefore: clk.Now().Add(-time.Hour)})
	tests := []struct {
		name    string
		account jid.JID
		prev    *x509.Certificate
		advance time.Duration
	}{
		{"error/other-ca", alice, foreign.Cert, 0},
		{"error/self-signed", alice, selfSigned.Cert, 0},
		{"error/revoked", alice, revoked.Cert, 0},
		{"error/other-account", jid.MustParse("bob@example.org"), next.Cert, 0},
		{"error/expired", alice, expired.Cert, 4 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.Add(tt.advance)
			_, err := ca.Issue(ctx, &enroll.IssueRequest{Account: tt.account, Renew: tt.prev})
			if !errors.Is(err, enroll.ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
			t.Log(err)
		})
	}
}

func TestEnrollEmbeddedCheckRevocation(t *testing.T) {
	ca, _ := newCA(t, localca.Options{})
	other, _ := newCA(t, localca.Options{})
	ctx := context.Background()
	is, err := ca.Issue(ctx, &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{})})
	if err != nil {
		t.Fatal(err)
	}
	if revoked, ok, err := ca.CheckRevocation(ctx, is.Cert, other.Cert()); ok || revoked || err != nil {
		t.Fatalf("another CA's certificate: revoked %v ok %v err %v; want not ok", revoked, ok, err)
	}
	if revoked, ok, err := ca.CheckRevocation(ctx, is.Cert, ca.Cert()); !ok || revoked || err != nil {
		t.Fatalf("before the revocation: revoked %v ok %v err %v", revoked, ok, err)
	}
	if !ca.IssuedHere(is.Cert) || other.IssuedHere(is.Cert) {
		t.Fatal("IssuedHere is wrong")
	}
	if err := ca.Revoke(ctx, &enroll.RevokeRequest{Cert: is.Cert}); err != nil {
		t.Fatal(err)
	}
	if revoked, ok, err := ca.CheckRevocation(ctx, is.Cert, ca.Cert()); !ok || !revoked || err != nil {
		t.Fatalf("after the revocation: revoked %v ok %v err %v", revoked, ok, err)
	}
}
