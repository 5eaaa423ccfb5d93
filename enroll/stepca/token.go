package stepca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TokenLifetime is how long a one-time token is valid (as the step CLI).
const TokenLifetime = 5 * time.Minute

// KeyID returns the kid step uses for a provisioner key: the base64url
// RFC 7638 SHA-256 thumbprint of the public key.
func KeyID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("stepca: key id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// ParseKey parses a provisioner's private key in JWK form (JSON, not
// encrypted) and returns it with its kid (the JWK's "kid", or the thumbprint
// if it has none).
func ParseKey(data []byte) (crypto.Signer, string, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return nil, "", fmt.Errorf("stepca: provisioner key: %w", err)
	}
	if jwk.IsPublic() {
		return nil, "", errors.New("stepca: provisioner key: a public JWK; the private key is needed to sign tokens")
	}
	s, ok := jwk.Key.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("stepca: provisioner key: unsupported key type %T", jwk.Key)
	}
	kid := jwk.KeyID
	if kid == "" {
		var err error
		if kid, err = KeyID(s.Public()); err != nil {
			return nil, "", err
		}
	}
	return s, kid, nil
}

// algorithm picks the JWS algorithm for key, as step does.
func algorithm(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	case ed25519.PublicKey:
		return jose.EdDSA, nil
	case *rsa.PublicKey:
		return jose.RS256, nil
	}
	return "", fmt.Errorf("stepca: unsupported provisioner key type %T", key.Public())
}

// tokenClaims are the claims of a one-time token beyond the registered ones.
type tokenClaims struct {
	SANs []string    `json:"sans,omitempty"`
	Cnf  *confirmKey `json:"cnf,omitempty"`
}

// confirmKey pins the token to one CSR: the base64url SHA-256 of its DER.
type confirmKey struct {
	Fingerprint string `json:"x5rt#S256"`
}

// mintToken signs a one-time token for the provisioner: iss = provisioner,
// sub, aud, a random jti, nbf = iat = now, exp = now + TokenLifetime, and
// the kid header. A token is minted for each request and never reused
// (step-ca remembers every jti and refuses tokens issued before it started).
func (c *Client) mintToken(sub, aud string, extra tokenClaims, now time.Time) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("stepca: token id: %w", err)
	}
	std := jwt.Claims{
		Issuer:    c.cfg.Provisioner,
		Subject:   sub,
		Audience:  jwt.Audience{aud},
		NotBefore: jwt.NewNumericDate(now),
		IssuedAt:  jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(TokenLifetime)),
		ID:        hex.EncodeToString(jti),
	}
	tok, err := jwt.Signed(c.signer).Claims(std).Claims(extra).Serialize()
	if err != nil {
		return "", fmt.Errorf("stepca: sign token: %w", err)
	}
	return tok, nil
}

// newSigner makes the JWS signer for key with the kid header.
func newSigner(key crypto.Signer, kid string) (jose.Signer, error) {
	alg, err := algorithm(key)
	if err != nil {
		return nil, err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("stepca: token signer: %w", err)
	}
	return s, nil
}
