package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/saslcert/saslcert/storage"
)

// NewSigningKey returns a new ES256 (P-256) access-token signing key whose
// kid is its RFC 7638 thumbprint, ready for storage.OAuthStore.RotateSigningKey.
func NewSigningKey() (*storage.SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	jwk := jose.JSONWebKey{Key: priv.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &storage.SigningKey{ID: base64.RawURLEncoding.EncodeToString(tp), Alg: string(jose.ES256), Private: der}, nil
}

// RotateSigningKey makes a new signing key current in store and returns it;
// the previous key keeps being published (and accepted) until the tokens it
// signed have expired. Keys retired longer ago than MaxTokenLifetime (plus a
// minute) are deleted: no token they signed can be alive.
func RotateSigningKey(ctx context.Context, store storage.OAuthStore, now time.Time) (*storage.SigningKey, error) {
	k, err := NewSigningKey()
	if err != nil {
		return nil, err
	}
	if err := store.RotateSigningKey(ctx, k); err != nil {
		return nil, err
	}
	if _, err := store.PruneSigningKeys(ctx, now.Add(-MaxTokenLifetime-time.Minute)); err != nil {
		return k, fmt.Errorf("oauth: new key %s is current, but pruning old keys failed: %w", k.ID, err)
	}
	return k, nil
}

// ErrNoSigningKey: the store holds no current signing key.
var ErrNoSigningKey = errors.New("oauth: no current signing key")

// keyring is saslcert's own signing keys as read from the store: the
// current one signs, the current and the retired ones still published
// verify. It reads the store again every refresh, or (at most once a
// second) when a kid it does not know is asked for, so that a rotation by
// another process takes effect without a restart.
type keyring struct {
	store    storage.OAuthStore
	now      func() time.Time
	lifetime time.Duration // token lifetime: how long a retired key stays published
	refresh  time.Duration

	mu      sync.Mutex
	loaded  time.Time
	tried   time.Time
	current *loadedKey
	public  jose.JSONWebKeySet // current first, then the retired still published
}

type loadedKey struct {
	id     string
	alg    jose.SignatureAlgorithm
	signer jose.Signer
}

// load reads the keys from the store if they are older than the refresh
// interval, or if force and the last read was over a second ago.
func (kr *keyring) load(ctx context.Context, force bool) error {
	now := kr.now()
	if !kr.loaded.IsZero() && now.Sub(kr.loaded) < kr.refresh && (!force || now.Sub(kr.tried) < time.Second) {
		return nil
	}
	kr.tried = now
	keys, err := kr.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	var cur *loadedKey
	var pub jose.JSONWebKeySet
	for _, k := range keys {
		if !k.Retired.IsZero() && now.Sub(k.Retired) > kr.lifetime+time.Minute {
			continue
		}
		priv, err := x509.ParsePKCS8PrivateKey(k.Private)
		if err != nil {
			return fmt.Errorf("oauth: signing key %s: %w", k.ID, err)
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return fmt.Errorf("oauth: signing key %s: %T is not a signer", k.ID, priv)
		}
		pub.Keys = append(pub.Keys, jose.JSONWebKey{Key: signer.Public(), KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
		if k.Retired.IsZero() && cur == nil {
			alg := jose.SignatureAlgorithm(k.Alg)
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: signer, KeyID: k.ID}},
				(&jose.SignerOptions{}).WithType("at+jwt"))
			if err != nil {
				return fmt.Errorf("oauth: signing key %s: %w", k.ID, err)
			}
			cur = &loadedKey{id: k.ID, alg: alg, signer: s}
		}
	}
	kr.current, kr.public, kr.loaded = cur, pub, now
	return nil
}

// signer returns the current signing key. Errors: ErrNoSigningKey, store errors.
func (kr *keyring) signer(ctx context.Context) (*loadedKey, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if err := kr.load(ctx, false); err != nil && kr.current == nil {
		return nil, err
	}
	if kr.current == nil {
		return nil, ErrNoSigningKey
	}
	return kr.current, nil
}

// key returns the published key kid. Errors: ErrUnknownKey, store errors.
func (kr *keyring) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	err := kr.load(ctx, false)
	if k := findKey(&kr.public, kid); k != nil {
		return k, nil
	}
	if err == nil {
		err = kr.load(ctx, true)
	}
	if k := findKey(&kr.public, kid); k != nil {
		return k, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
}

// jwks returns the published key set.
func (kr *keyring) jwks(ctx context.Context) (jose.JSONWebKeySet, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if err := kr.load(ctx, false); err != nil && kr.loaded.IsZero() {
		return jose.JSONWebKeySet{}, err
	}
	return kr.public, nil
}
