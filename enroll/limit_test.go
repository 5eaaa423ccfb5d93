package enroll_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/storage"
)

// gateIssuer holds every Issue call until open is closed, counting them.
type gateIssuer struct {
	enroll.Issuer
	open    chan struct{}
	arrived chan struct{}
	mu      sync.Mutex
	calls   int
}

func (g *gateIssuer) Issue(ctx context.Context, req *enroll.IssueRequest) (*enroll.Issued, error) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	g.arrived <- struct{}{}
	<-g.open
	return g.Issuer.Issue(ctx, req)
}

// TestEnrollServiceConcurrentRequests (issue 16.3): requests sent at once
// reserve a slot before the CA is asked, so at most MaxPerAccount reach
// it while the others are refused with storage.ErrLimit, and nothing has
// to be revoked at the CA.
func TestEnrollServiceConcurrentRequests(t *testing.T) {
	const max, n = 3, 12
	gate := &gateIssuer{open: make(chan struct{}), arrived: make(chan struct{}, n)}
	f := newSvcFixture(t, func(c *enroll.ServiceConfig, f *svcFixture) {
		gate.Issuer = f.iss
		c.Issuers[enroll.EmbeddedIssuer] = gate
		c.MaxPerAccount = max
		c.IssueEvery = -1
	})
	ctx := context.Background()
	results := make(chan error, n)
	for range n {
		key, err := certtest.NewKey(certtest.ECDSAP256)
		if err != nil {
			t.Fatal(err)
		}
		csr := catest.NewCSR(t, catest.CSROptions{Key: key})
		go func() {
			_, err := f.svc.Enroll(ctx, &enroll.EnrollRequest{Account: svcAlice, CSR: csr})
			results <- err
		}()
	}
	timeout := time.After(time.Minute)
	// While the CA holds the first max requests, every other one is refused.
	for i := range n - max {
		select {
		case err := <-results:
			if !errors.Is(err, storage.ErrLimit) {
				t.Fatalf("request %d while %d are at the CA: %v; want storage.ErrLimit", i, max, err)
			}
		case <-timeout:
			t.Fatal("requests beyond the limit were not answered while the CA was busy")
		}
	}
	close(gate.open)
	for range max {
		if err := <-results; err != nil {
			t.Fatalf("a request that had a slot: %v", err)
		}
	}
	if gate.calls != max {
		t.Fatalf("%d requests reached the CA; want %d", gate.calls, max)
	}
	if revs, err := f.ca.Revocations(ctx); err != nil || len(revs) != 0 {
		t.Fatalf("revocations at the CA: %d, %v; want none (nothing was issued beyond the limit)", len(revs), err)
	}
	if act := f.active(t, svcAlice); len(act) != max {
		t.Fatalf("%d active certificates; want %d", len(act), max)
	}
}

// TestEnrollServiceRateLimit: IssueBurst requests at once, then one every
// IssueEvery; a refused request reaches no CA and says when to try again.
func TestEnrollServiceRateLimit(t *testing.T) {
	f := newSvcFixture(t, func(c *enroll.ServiceConfig, _ *svcFixture) {
		c.MaxPerAccount = 10
		c.IssueBurst = 2
		c.IssueEvery = time.Hour
	})
	ctx := context.Background()
	enrollOne := func() error {
		key, err := certtest.NewKey(certtest.ECDSAP256)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Enroll(ctx, &enroll.EnrollRequest{Account: svcAlice, CSR: catest.NewCSR(t, catest.CSROptions{Key: key})})
		return err
	}
	for i := range 2 {
		if err := enrollOne(); err != nil {
			t.Fatalf("request %d of the burst: %v", i, err)
		}
	}
	before := f.iss.count()
	err := enrollOne()
	if !errors.Is(err, enroll.ErrRateLimited) {
		t.Fatalf("third request at once: %v; want ErrRateLimited", err)
	}
	t.Logf("refused: %v", err)
	if f.iss.count() != before {
		t.Fatal("a rate-limited request reached the CA")
	}
	// Another account is not affected.
	if _, err := f.svc.Enroll(ctx, &enroll.EnrollRequest{Account: jid.MustParse("carol@example.org"), CSR: catest.NewCSR(t, catest.CSROptions{})}); err != nil {
		t.Fatalf("another account: %v", err)
	}
	f.clk.Add(time.Hour)
	if err := enrollOne(); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
	if err := enrollOne(); !errors.Is(err, enroll.ErrRateLimited) {
		t.Fatalf("again at once: %v; want ErrRateLimited", err)
	}
}
