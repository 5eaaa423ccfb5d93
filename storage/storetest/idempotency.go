package storetest

import (
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// idem returns the store's storage.Idempotency, or skips the test.
func (e *env) idem() storage.Idempotency {
	e.t.Helper()
	s, ok := e.s.(storage.Idempotency)
	if !ok {
		e.t.Skipf("%T does not implement storage.Idempotency", e.s)
	}
	return s
}

// advanceBy moves the clock on by d.
func (c *clock) advanceBy(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testIdempotency(e *env) {
	s := e.idem()
	claim := storage.IdempotencyClaim{Scope: "hr", Key: "k1", Hash: sha256.Sum256([]byte("req")), TTL: time.Hour, PendingTTL: time.Minute}
	if r, err := s.ClaimIdempotency(e.ctx, claim); err != nil || r != nil {
		e.t.Fatalf("first claim: %+v, %v; want nil, nil", r, err)
	}
	r, err := s.ClaimIdempotency(e.ctx, claim)
	if err != nil || r == nil || r.Done || r.Hash != claim.Hash {
		e.t.Fatalf("second claim while pending: %+v, %v; want the pending entry", r, err)
	}
	other := claim
	other.Scope = "crm"
	if r, err := s.ClaimIdempotency(e.ctx, other); err != nil || r != nil {
		e.t.Fatalf("same key in another scope: %+v, %v; want a new claim", r, err)
	}
	resp := storage.IdempotentResponse{Status: 201, ContentType: "application/json", Body: []byte(`{"ok":true}`)}
	if err := s.CompleteIdempotency(e.ctx, "hr", "k1", resp); err != nil {
		e.t.Fatal(err)
	}
	if err := s.CompleteIdempotency(e.ctx, "hr", "k1", resp); !errors.Is(err, storage.ErrClaimLost) {
		e.t.Fatalf("completing twice: %v, want ErrClaimLost", err)
	}
	changed := claim
	changed.Hash = sha256.Sum256([]byte("another request"))
	r, err = s.ClaimIdempotency(e.ctx, changed)
	if err != nil || r == nil || !r.Done || r.Hash != claim.Hash || r.Status != 201 ||
		r.ContentType != resp.ContentType || string(r.Body) != string(resp.Body) {
		e.t.Fatalf("claim of a completed key: %+v, %v; want the stored answer with the first hash", r, err)
	}
	// A completed entry outlives PendingTTL and is not released.
	e.clk.advanceBy(2 * time.Minute)
	if err := s.ReleaseIdempotency(e.ctx, "hr", "k1"); err != nil {
		e.t.Fatal(err)
	}
	if r, _ := s.ClaimIdempotency(e.ctx, claim); r == nil || !r.Done {
		e.t.Fatalf("completed entry after PendingTTL and a release: %+v; want it kept", r)
	}
	// The pending claim in scope crm was abandoned: after PendingTTL it may be claimed again.
	if r, err := s.ClaimIdempotency(e.ctx, other); err != nil || r != nil {
		e.t.Fatalf("claim after PendingTTL: %+v, %v; want a new claim", r, err)
	}
	if err := s.ReleaseIdempotency(e.ctx, "crm", "k1"); err != nil {
		e.t.Fatal(err)
	}
	if r, err := s.ClaimIdempotency(e.ctx, other); err != nil || r != nil {
		e.t.Fatalf("claim after release: %+v, %v; want a new claim", r, err)
	}
	// After TTL every entry is gone.
	e.clk.advanceBy(time.Hour)
	if r, err := s.ClaimIdempotency(e.ctx, changed); err != nil || r != nil {
		e.t.Fatalf("claim after TTL: %+v, %v; want a new claim", r, err)
	}
	for _, bad := range []storage.IdempotencyClaim{{Key: "k", TTL: time.Hour}, {Scope: "s", TTL: time.Hour}, {Scope: "s", Key: "k"}} {
		if _, err := s.ClaimIdempotency(e.ctx, bad); !errors.Is(err, storage.ErrInvalid) {
			e.t.Errorf("ClaimIdempotency(%+v): %v, want ErrInvalid", bad, err)
		}
	}
}

// testIdempotencyConcurrent: of many claims of one key at once, exactly one
// wins.
func testIdempotencyConcurrent(e *env) {
	s := e.idem()
	claim := storage.IdempotencyClaim{Scope: "hr", Key: "race", Hash: sha256.Sum256([]byte("x")), TTL: time.Hour}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 8 {
		wg.Go(func() {
			r, err := s.ClaimIdempotency(e.ctx, claim)
			if err != nil {
				e.t.Error(err)
				return
			}
			if r == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if won != 1 {
		e.t.Fatalf("%d claims won, want 1", won)
	}
}
