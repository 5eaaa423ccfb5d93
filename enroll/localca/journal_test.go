package localca_test

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/internal/certtest"
)

// TestEnrollEmbeddedRevokeAppends (issue 16.3): a revocation appends one
// line to the journal and leaves the list (RevokedFile) alone, however long
// it is; another process sees it at once; the next CRL lists everything and
// folds the journal into the list.
func TestEnrollEmbeddedRevokeAppends(t *testing.T) {
	ca, _ := newCA(t, localca.Options{})
	other, err := localca.Load(ca.Dir(), localca.Options{Now: func() time.Time { return certtest.Now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	revoke := func(c *localca.CA, sn int64) {
		t.Helper()
		if err := c.Revoke(ctx, &enroll.RevokeRequest{Serial: big.NewInt(sn)}); err != nil {
			t.Fatal(err)
		}
	}
	const listed = 300
	for i := range listed {
		revoke(ca, int64(1000+i))
	}
	if _, err := ca.CRL(ctx); err != nil { // folds the journal into the list
		t.Fatal(err)
	}
	list := filepath.Join(ca.Dir(), localca.RevokedFile)
	journal := filepath.Join(ca.Dir(), localca.JournalFile)
	before, err := os.Stat(list)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(journal); err == nil && fi.Size() != 0 {
		t.Fatalf("journal after a CRL holds %d bytes; want none", fi.Size())
	}

	for i := range 10 {
		c := ca
		if i%2 == 1 {
			c = other
		}
		revoke(c, int64(5000+i))
		revoke(c, int64(5000+i)) // twice: recorded once
	}
	after, err := os.Stat(list)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) || before.Size() != after.Size() {
		t.Fatalf("%s was rewritten by a revocation; a revocation must only append to %s", localca.RevokedFile, localca.JournalFile)
	}
	data, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte{'\n'}); n != 10 {
		t.Fatalf("journal has %d lines; want one per revocation (10)", n)
	}
	for _, c := range []*localca.CA{ca, other} {
		revs, err := c.Revocations(ctx)
		if err != nil || len(revs) != listed+10 {
			t.Fatalf("Revocations: %d, %v; want %d", len(revs), err, listed+10)
		}
	}

	// A torn last line (a crash in the middle of a write) is cut off.
	f, err := os.OpenFile(journal, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"serial":"ff`)
	f.Close()
	revoke(other, 7777)
	revs, err := ca.Revocations(ctx)
	if err != nil || len(revs) != listed+11 {
		t.Fatalf("after a torn line: %d, %v; want %d", len(revs), err, listed+11)
	}

	der, err := other.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	crl := mustParseCRL(t, der)
	if len(crl.RevokedCertificateEntries) != listed+11 {
		t.Fatalf("CRL lists %d; want %d", len(crl.RevokedCertificateEntries), listed+11)
	}
	if fi, err := os.Stat(journal); err == nil && fi.Size() != 0 {
		t.Fatalf("journal after a CRL holds %d bytes; want none", fi.Size())
	}
	if revs, err := ca.Revocations(ctx); err != nil || len(revs) != listed+11 {
		t.Fatalf("after the other process folded the journal: %d, %v; want %d", len(revs), err, listed+11)
	}
}

func mustParseCRL(t *testing.T, der []byte) *x509.RevocationList {
	t.Helper()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}
