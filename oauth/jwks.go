package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// SignatureAlgs are the JWS algorithms accepted on assertions and external
// access tokens: asymmetric only (never none, never HMAC, so a public key
// can never serve as an HMAC secret).
var SignatureAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256, jose.EdDSA}

// MaxJWKSSize bounds a JWKS document, registered or fetched.
const MaxJWKSSize = 64 << 10

// ParseJWKS parses a JSON Web Key Set of public signing keys. Every key must
// be an EC, RSA (at least 2048 bits) or Ed25519 public key with a kid, unique
// in the set, with "use" absent or "sig" and "alg" absent or one of
// SignatureAlgs; private keys and symmetric keys are refused.
func ParseJWKS(b []byte) (*jose.JSONWebKeySet, error) {
	if len(b) > MaxJWKSSize {
		return nil, fmt.Errorf("JWKS larger than %d bytes", MaxJWKSSize)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	seen := map[string]bool{}
	for i, k := range set.Keys {
		if k.KeyID == "" {
			return nil, fmt.Errorf("JWKS key %d: no kid", i)
		}
		if seen[k.KeyID] {
			return nil, fmt.Errorf("JWKS: kid %q twice", k.KeyID)
		}
		seen[k.KeyID] = true
		if !k.IsPublic() {
			return nil, fmt.Errorf("JWKS key %q: a private or symmetric key; publish public keys only", k.KeyID)
		}
		switch pk := k.Key.(type) {
		case *ecdsa.PublicKey, ed25519.PublicKey:
		case *rsa.PublicKey:
			if pk.N.BitLen() < 2048 {
				return nil, fmt.Errorf("JWKS key %q: RSA key of %d bits, want at least 2048", k.KeyID, pk.N.BitLen())
			}
		default:
			return nil, fmt.Errorf("JWKS key %q: unsupported key type %T", k.KeyID, k.Key)
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, fmt.Errorf("JWKS key %q: use %q, want sig", k.KeyID, k.Use)
		}
		if k.Algorithm != "" && !slices.Contains(SignatureAlgs, jose.SignatureAlgorithm(k.Algorithm)) {
			return nil, fmt.Errorf("JWKS key %q: alg %q not allowed", k.KeyID, k.Algorithm)
		}
	}
	return &set, nil
}

// CheckJWKSURI checks a jwks_uri: https, or http to a loopback address only.
func CheckJWKSURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("JWKS URL %q: want an absolute https URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() || u.Hostname() == "localhost" {
			return nil
		}
	}
	return fmt.Errorf("JWKS URL %q: want https (http only to a loopback address)", s)
}

// ErrUnknownKey: no key of the set has the kid, even after a refetch.
var ErrUnknownKey = errors.New("oauth: unknown key id")

// jwksCache holds key sets fetched from URLs. A set is fetched again when it
// is older than maxAge or, at most once per minInterval, when a kid it does
// not hold is asked for: a publisher that rotates its keys keeps working, and
// a key it removed stops working at the next fetch.
type jwksCache struct {
	client      *http.Client
	now         func() time.Time
	maxAge      time.Duration
	minInterval time.Duration

	mu   sync.Mutex
	sets map[string]*jwksEntry
}

type jwksEntry struct {
	mu      sync.Mutex // one fetch at a time per URL
	set     *jose.JSONWebKeySet
	fetched time.Time // when set was fetched
	tried   time.Time // last fetch attempt
}

func (c *jwksCache) entry(uri string) *jwksEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sets == nil {
		c.sets = map[string]*jwksEntry{}
	}
	e := c.sets[uri]
	if e == nil {
		e = &jwksEntry{}
		c.sets[uri] = e
	}
	return e
}

// key returns the key kid of the set at uri. Errors: ErrUnknownKey, or a
// fetch error (when nothing usable is cached).
func (c *jwksCache) key(ctx context.Context, uri, kid string) (*jose.JSONWebKey, error) {
	e := c.entry(uri)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.now()
	stale := e.set == nil || now.Sub(e.fetched) >= c.maxAge
	var k *jose.JSONWebKey
	if !stale {
		k = findKey(e.set, kid)
	}
	if k != nil {
		return k, nil
	}
	if !stale && now.Sub(e.tried) < c.minInterval {
		return nil, fmt.Errorf("%w %q (key set fetched %s ago)", ErrUnknownKey, kid, now.Sub(e.fetched).Round(time.Second))
	}
	e.tried = now
	set, err := c.fetch(ctx, uri)
	if err != nil {
		if e.set != nil && now.Sub(e.fetched) < 2*c.maxAge {
			// Keep serving the last set for a while if the publisher is down.
			if k := findKey(e.set, kid); k != nil {
				return k, nil
			}
		}
		return nil, err
	}
	e.set, e.fetched = set, now
	if k := findKey(set, kid); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
}

// fetch gets and parses the key set at uri, within the client's timeout
// and MaxJWKSSize.
func (c *jwksCache) fetch(ctx context.Context, uri string) (*jose.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("oauth: fetch JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oauth: fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("oauth: fetch JWKS %s: status %s", uri, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("oauth: fetch JWKS %s: %w", uri, err)
	}
	set, err := ParseJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("oauth: fetch JWKS %s: %w", uri, err)
	}
	return set, nil
}

// findKey returns the key of set with kid, nil if none.
func findKey(set *jose.JSONWebKeySet, kid string) *jose.JSONWebKey {
	if set == nil {
		return nil
	}
	for i := range set.Keys {
		if set.Keys[i].KeyID == kid {
			return &set.Keys[i]
		}
	}
	return nil
}

// newFetchClient returns the HTTP client for key sets: a short timeout, no
// redirects (a key set moves by re-registering its URL).
func newFetchClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
