package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"
)

// IdempotencyClaim asks Idempotency.ClaimIdempotency for a key.
type IdempotencyClaim struct {
	// Scope separates the keys of different callers (the API's client id):
	// the same Key in two scopes is two keys.
	Scope, Key string
	// Hash identifies the request (method, path, body): a retry must send
	// the same one.
	Hash [sha256.Size]byte
	// TTL is how long the key is kept after the claim (the store's clock).
	TTL time.Duration
	// PendingTTL is how long a claim whose work never completed (the
	// process died) blocks the key; after it the key may be claimed again.
	PendingTTL time.Duration
}

// IdempotentResponse is the stored answer of a completed request, or the
// state of a claim.
type IdempotentResponse struct {
	Hash        [sha256.Size]byte
	Done        bool // false: the work is in progress (or was abandoned within PendingTTL)
	Status      int
	ContentType string
	Body        []byte
}

// ErrClaimLost: CompleteIdempotency found no pending claim of the key (it
// expired and was claimed again, or was released).
var ErrClaimLost = errors.New("storage: idempotency claim lost")

// Idempotency is an optional interface of a Store: it keeps the answers of
// requests retried with the same key (the API's Idempotency-Key header), so
// that the work is done once. Every instance sharing the store sees the same
// keys. Entries live TTL, then are deleted by later claims.
type Idempotency interface {
	// ClaimIdempotency claims c.Key in c.Scope: if the key is free (never
	// used, expired, or pending for longer than PendingTTL) it is recorded
	// as pending with c.Hash and (nil, nil) returned: the caller does the
	// work and calls Complete or Release. Otherwise the key's entry is
	// returned (Done false while another claim is in progress), whatever
	// its Hash (the caller compares). Errors: ErrInvalid (empty scope or
	// key, TTL <= 0), ErrUnavailable.
	ClaimIdempotency(ctx context.Context, c IdempotencyClaim) (*IdempotentResponse, error)
	// CompleteIdempotency stores the answer of the pending claim of key in
	// scope (resp.Hash is ignored; the claim's is kept). Errors:
	// ErrClaimLost, ErrUnavailable.
	CompleteIdempotency(ctx context.Context, scope, key string, resp IdempotentResponse) error
	// ReleaseIdempotency deletes the pending claim of key in scope (the
	// work failed and may be retried); a completed entry is kept. Errors:
	// ErrUnavailable.
	ReleaseIdempotency(ctx context.Context, scope, key string) error
}
