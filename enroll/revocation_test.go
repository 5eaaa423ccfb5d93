package enroll_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/certtest"
)

// crlServer serves a CRL that the test replaces, counting fetches.
type crlServer struct {
	mu      sync.Mutex
	der     []byte
	fetches atomic.Int32
	url     string
}

func newCRLServer(t *testing.T) *crlServer {
	s := &crlServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		der := s.der
		s.mu.Unlock()
		if der == nil {
			http.Error(w, "no CRL", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(der)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/crl"
	return s
}

func (s *crlServer) set(der []byte) {
	s.mu.Lock()
	s.der = der
	s.mu.Unlock()
}

// makeCRL is a CRL of ca listing serials, valid from now for validity.
func makeCRL(t *testing.T, ca *certtest.Cert, now time.Time, validity time.Duration, serials ...*big.Int) []byte {
	t.Helper()
	list := &x509.RevocationList{Number: big.NewInt(now.Unix()), ThisUpdate: now, NextUpdate: now.Add(validity)}
	for _, sn := range serials {
		list.RevokedCertificateEntries = append(list.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: sn, RevocationTime: now})
	}
	der, err := x509.CreateRevocationList(rand.Reader, list, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestEnrollCRLChecker(t *testing.T) {
	now := certtest.Now
	clock := func() time.Time { return now }
	ca := certtest.NewCA(t, "org CA")
	other := certtest.NewCA(t, "other CA")
	impostor := certtest.New(t, certtest.Options{IsCA: true, NoEKU: true, CommonName: "org CA",
		Key: certtest.Key(t, certtest.RSA2048), NotBefore: now.Add(-time.Hour)})
	leaf := certtest.New(t, certtest.Options{Parent: ca, XMPPAddrs: []string{"alice@example.org"}})
	gone := certtest.New(t, certtest.Options{Parent: ca, XMPPAddrs: []string{"alice@example.org"}})
	srv := newCRLServer(t)
	ctx := context.Background()

	c := enroll.NewHTTPCRLChecker(srv.url, nil, time.Minute, clock)
	if _, _, err := c.CheckRevocation(ctx, leaf.Cert, ca.Cert); !errors.Is(err, enroll.ErrUnavailable) {
		t.Fatalf("no CRL: err = %v, want ErrUnavailable", err)
	}
	srv.set(makeCRL(t, ca, now, 24*time.Hour, gone.Cert.SerialNumber))
	if revoked, ok, err := c.CheckRevocation(ctx, leaf.Cert, ca.Cert); revoked || !ok || err != nil {
		t.Fatalf("leaf: revoked %v ok %v err %v", revoked, ok, err)
	}
	if revoked, ok, err := c.CheckRevocation(ctx, gone.Cert, ca.Cert); !revoked || !ok || err != nil {
		t.Fatalf("revoked leaf: revoked %v ok %v err %v", revoked, ok, err)
	}
	if _, ok, err := c.CheckRevocation(ctx, leaf.Cert, other.Cert); ok || err != nil {
		t.Fatalf("another issuer: ok %v err %v; want not ok", ok, err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches; want 2 (one failed, then cached)", n)
	}

	// A revocation is seen only after MaxAge or Invalidate.
	srv.set(makeCRL(t, ca, now, 24*time.Hour, gone.Cert.SerialNumber, leaf.Cert.SerialNumber))
	if revoked, _, _ := c.CheckRevocation(ctx, leaf.Cert, ca.Cert); revoked {
		t.Fatal("the cached CRL was not used")
	}
	c.Invalidate()
	if revoked, _, _ := c.CheckRevocation(ctx, leaf.Cert, ca.Cert); !revoked {
		t.Fatal("Invalidate did not make the checker fetch the new CRL")
	}

	// A CRL past its nextUpdate is refetched; if it is still stale, the
	// status is unknown.
	srv.set(makeCRL(t, ca, now.Add(-2*time.Hour), time.Hour))
	c.Invalidate()
	if _, _, err := c.CheckRevocation(ctx, leaf.Cert, ca.Cert); !errors.Is(err, enroll.ErrUnavailable) {
		t.Fatalf("stale CRL: err = %v, want ErrUnavailable", err)
	}

	// A CRL that names the issuer but is signed by another key.
	srv.set(makeCRL(t, impostor, now, time.Hour))
	c.Invalidate()
	if _, ok, err := c.CheckRevocation(ctx, leaf.Cert, ca.Cert); ok || !errors.Is(err, enroll.ErrUnavailable) {
		t.Fatalf("forged CRL: ok %v err %v; want ErrUnavailable", ok, err)
	}

	// MaxAge 0 fetches for every check.
	srv.set(makeCRL(t, ca, now, time.Hour))
	every := enroll.NewHTTPCRLChecker(srv.url, nil, 0, clock)
	before := srv.fetches.Load()
	for range 3 {
		if _, ok, err := every.CheckRevocation(ctx, leaf.Cert, ca.Cert); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if n := srv.fetches.Load() - before; n != 3 {
		t.Fatalf("%d fetches with MaxAge 0; want 3", n)
	}
}
