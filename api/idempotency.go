package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/storage"
)

// MaxIdempotencyKey is the longest Idempotency-Key accepted.
const MaxIdempotencyKey = 255

// ReplayedHeader marks an answer replayed for a retried Idempotency-Key.
const ReplayedHeader = "Idempotent-Replayed"

// idempotent runs rt's handler once per Idempotency-Key of the client (the
// IETF httpapi Idempotency-Key draft's rules):
//   - the first request with the key does the work; its answer (any status
//     below 500) is kept for Config.IdempotencyTTL;
//   - a retry with the same key, method, path and body gets that answer
//     again, with the header Idempotent-Replayed: true, and nothing is done;
//   - the same key with another method, path or body: 422 invalid_request;
//   - the same key while the first request is still being worked on: 409
//     conflict with Retry-After;
//   - an answer of 500 or more is not kept: the key is free for a retry.
func (a *API) idempotent(c *call, rt route, key string) (*reply, error) {
	if len(c.r.Header.Values("Idempotency-Key")) != 1 || !validKey(key) {
		return nil, httperr.New(httperr.InvalidRequest, "Idempotency-Key must be sent once, with 1 to %d printable ASCII characters", MaxIdempotencyKey)
	}
	h := sha256.New()
	h.Write([]byte(c.r.Method + "\x00" + c.r.URL.Path + "\x00"))
	h.Write(c.body)
	claim := storage.IdempotencyClaim{Scope: c.p.ClientID, Key: key, TTL: a.cfg.IdempotencyTTL, PendingTTL: IdempotencyPending}
	h.Sum(claim.Hash[:0])
	old, err := a.idem.ClaimIdempotency(c.ctx, claim)
	switch {
	case err != nil:
		return nil, apiError(err)
	case old != nil && old.Hash != claim.Hash:
		return nil, &httperr.Error{Code: httperr.InvalidRequest, Status: http.StatusUnprocessableEntity,
			Description: "this Idempotency-Key was used for another request (method, path or body); use a new key for a new request"}
	case old != nil && !old.Done:
		return nil, &httperr.Error{Code: httperr.Conflict, RetryAfter: time.Second,
			Description: "a request with this Idempotency-Key is being worked on; retry later"}
	case old != nil:
		return &reply{status: old.Status, contentType: old.ContentType, body: old.Body, replayed: true}, nil
	}
	rp, err := rt.h(c)
	if err != nil {
		rp = a.errorReply(c.r, err)
	}
	// The answer is kept, or the claim released, even if the client went
	// away: the work is done.
	ctx := context.WithoutCancel(c.ctx)
	if rp.status >= 500 {
		if err := a.idem.ReleaseIdempotency(ctx, claim.Scope, key); err != nil {
			a.log.WarnContext(ctx, "api: could not release an Idempotency-Key", "client", claim.Scope, "err", err)
		}
		return rp, nil
	}
	if err := a.idem.CompleteIdempotency(ctx, claim.Scope, key, storage.IdempotentResponse{
		Status: rp.status, ContentType: rp.contentType, Body: rp.body}); err != nil {
		a.log.WarnContext(ctx, "api: could not keep the answer of an Idempotency-Key", "client", claim.Scope, "err", err)
	}
	return rp, nil
}

// validKey: 1 to MaxIdempotencyKey printable ASCII characters.
func validKey(k string) bool {
	if len(k) == 0 || len(k) > MaxIdempotencyKey {
		return false
	}
	for i := range len(k) {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// errorReply renders err as httperr writes it, as a reply that can be kept.
// Internal failures (500 and more) are logged with their cause.
func (a *API) errorReply(r *http.Request, err error) *reply {
	err = apiError(err)
	var he *httperr.Error
	if !errors.As(err, &he) || he.HTTPStatus() >= 500 {
		a.log.WarnContext(r.Context(), "api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	rec := &recorder{header: http.Header{}}
	httperr.Write(rec, err)
	return &reply{status: rec.status, contentType: rec.header.Get("Content-Type"), body: rec.body.Bytes(),
		header: rec.header}
}

// recorder is the http.ResponseWriter errorReply renders into.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

// memIdempotency is storage.Idempotency in memory, for stores without it:
// retries reaching this process do the work once; other instances do not
// see its keys.
type memIdempotency struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[[2]string]*memEntry
}

type memEntry struct {
	resp    storage.IdempotentResponse
	created time.Time
	expires time.Time
}

func newMemIdempotency(now func() time.Time) *memIdempotency {
	return &memIdempotency{now: now, m: map[[2]string]*memEntry{}}
}

func (s *memIdempotency) ClaimIdempotency(_ context.Context, c storage.IdempotencyClaim) (*storage.IdempotentResponse, error) {
	if c.Scope == "" || c.Key == "" || c.TTL <= 0 {
		return nil, storage.ErrInvalid
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, e := range s.m {
		if !now.Before(e.expires) {
			delete(s.m, k)
		}
	}
	k := [2]string{c.Scope, c.Key}
	if e, ok := s.m[k]; ok && (e.resp.Done || c.PendingTTL <= 0 || now.Before(e.created.Add(c.PendingTTL))) {
		r := e.resp
		return &r, nil
	}
	s.m[k] = &memEntry{resp: storage.IdempotentResponse{Hash: c.Hash}, created: now, expires: now.Add(c.TTL)}
	return nil, nil
}

func (s *memIdempotency) CompleteIdempotency(_ context.Context, scope, key string, resp storage.IdempotentResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[[2]string{scope, key}]
	if !ok || e.resp.Done {
		return storage.ErrClaimLost
	}
	resp.Hash, resp.Done = e.resp.Hash, true
	e.resp = resp
	return nil
}

func (s *memIdempotency) ReleaseIdempotency(_ context.Context, scope, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[[2]string{scope, key}]; ok && !e.resp.Done {
		delete(s.m, [2]string{scope, key})
	}
	return nil
}
