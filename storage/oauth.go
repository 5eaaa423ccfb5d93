package storage

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// OAuthClient is a client registered with saslcert's OAuth2 authorization
// server by the administrator.
type OAuthClient struct {
	ID string // the client_id, unique
	// Tenants are the served domains the client may ask tokens for
	// (tenant:<domain>); at least one.
	Tenants []string
	// Scopes are the action scopes the client may ask for (certs:read, ...).
	Scopes []string
	// SecretHash is the argon2id hash of the client secret in PHC form, ""
	// if the client has no secret.
	SecretHash string
	// JWKS is the client's registered public JSON Web Key Set, nil if none.
	JWKS []byte
	// JWKSURI is where the client publishes its keys, "" if none.
	JWKSURI string
	Created time.Time // set by the store from its clock
}

// Check reports ErrInvalid for a client a store must refuse: an empty ID, no
// tenant, or an empty tenant or scope or one holding white space (lists may
// be stored space-separated). Backends call it in AddClient.
func (c *OAuthClient) Check() error {
	if c.ID == "" || len(c.Tenants) == 0 || hasBlank(c.Tenants) || hasBlank(c.Scopes) {
		return fmt.Errorf("%w: client id, tenants and scopes must be non-empty words", ErrInvalid)
	}
	return nil
}

func hasBlank(l []string) bool {
	for _, s := range l {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return true
		}
	}
	return false
}

// SigningKey is one of saslcert's own keys for signing access tokens.
type SigningKey struct {
	ID      string    // the kid, unique
	Alg     string    // JWS algorithm, e.g. ES256
	Private []byte    // PKCS #8 DER of the private key
	Created time.Time // set by the store from its clock
	// Retired is when a newer key replaced it (zero: it is the current
	// key). A retired key signs nothing but stays published while tokens
	// it signed may be alive.
	Retired time.Time
}

// OAuthStore keeps the OAuth2 authorization server's state: registered
// clients, signing keys, the assertion ids (jti) already used and the
// revoked access tokens. It is an optional interface: a backend that keeps
// it implements it on the same value as Store, and callers find it by a type
// assertion. Its contract suite is storetest.RunOAuth.
//
// The rules of Store apply: safe for concurrent use, durable on a nil error,
// nothing changed on an error, copies in and out, ErrUnavailable when the
// store cannot serve, context errors as in Store.
type OAuthStore interface {
	// AddClient stores c and sets c.Created. Errors: ErrInvalid (empty ID,
	// no tenant), ErrDuplicate (the ID is taken), ErrUnavailable.
	AddClient(ctx context.Context, c *OAuthClient) error
	// FindClient returns the client with that ID. Errors: ErrNotFound,
	// ErrUnavailable.
	FindClient(ctx context.Context, id string) (*OAuthClient, error)
	// ListClients returns every client, ordered by ID. Errors: ErrUnavailable.
	ListClients(ctx context.Context) ([]*OAuthClient, error)
	// RemoveClient deletes the client with that ID. Errors: ErrNotFound,
	// ErrUnavailable.
	RemoveClient(ctx context.Context, id string) error

	// RotateSigningKey makes k the current signing key and retires the
	// current one (Retired = now), in one transaction; it sets k.Created.
	// Errors: ErrInvalid (empty ID, Alg or Private), ErrDuplicate (the kid
	// is taken), ErrUnavailable.
	RotateSigningKey(ctx context.Context, k *SigningKey) error
	// SigningKeys returns every stored signing key, newest first (the
	// current key, if any, first). Errors: ErrUnavailable.
	SigningKeys(ctx context.Context) ([]*SigningKey, error)
	// PruneSigningKeys deletes the keys retired before before and returns
	// how many. The current key is never deleted. Errors: ErrUnavailable.
	PruneSigningKeys(ctx context.Context, before time.Time) (int, error)

	// UseJTI records that client used the assertion id jti, valid until
	// expires. It fails with ErrDuplicate if the same client used it before
	// and that record has not expired (expires after now by the store's
	// clock); records that have expired are deleted in the same
	// transaction. Every process sharing the store sees the record.
	// Errors: ErrInvalid (empty client or jti), ErrDuplicate,
	// ErrUnavailable.
	UseJTI(ctx context.Context, client, jti string, expires time.Time) error

	// RevokeToken records that the access token with id jti is revoked
	// until expires (after which the token is dead anyway and the record
	// is deleted). Revoking it again is not an error. Errors: ErrInvalid
	// (empty jti), ErrUnavailable.
	RevokeToken(ctx context.Context, jti string, expires time.Time) error
	// TokenRevoked reports whether the token with id jti is revoked.
	// Errors: ErrUnavailable.
	TokenRevoked(ctx context.Context, jti string) (bool, error)
}
