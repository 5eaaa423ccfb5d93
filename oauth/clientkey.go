package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ClientKey is a client's private key for signing assertions: what
// `saslcert api assertion` and `saslcert api jwks` read.
type ClientKey struct {
	Signer crypto.Signer
	Alg    jose.SignatureAlgorithm
	KeyID  string // the RFC 7638 thumbprint of the public key unless the file named one
}

// ParseClientKey reads a private key: PEM (PKCS #8, SEC 1 "EC PRIVATE KEY"
// or PKCS #1 "RSA PRIVATE KEY") or a private JWK. The algorithm follows the
// key: ES256/ES384 by curve, RS256 for RSA (PS256 if alg says so in a JWK),
// EdDSA for Ed25519.
func ParseClientKey(b []byte) (*ClientKey, error) {
	var key any
	var kid, alg string
	if blk, _ := pem.Decode(b); blk != nil {
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		default:
			return nil, fmt.Errorf("PEM block %q: want a private key", blk.Type)
		}
		if err != nil {
			return nil, err
		}
	} else {
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(b, &jwk); err != nil {
			return nil, errors.New("want a PEM private key or a private JWK")
		}
		if jwk.IsPublic() {
			return nil, errors.New("the JWK is a public key; want the private key")
		}
		key, kid, alg = jwk.Key, jwk.KeyID, jwk.Algorithm
	}
	ck := &ClientKey{KeyID: kid}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			ck.Alg = jose.ES256
		case elliptic.P384():
			ck.Alg = jose.ES384
		default:
			return nil, fmt.Errorf("EC curve %s not supported (P-256, P-384)", k.Curve.Params().Name)
		}
		ck.Signer = k
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits; want at least 2048", k.N.BitLen())
		}
		ck.Signer, ck.Alg = k, jose.RS256
		if alg == string(jose.PS256) {
			ck.Alg = jose.PS256
		}
	case ed25519.PrivateKey:
		ck.Signer, ck.Alg = k, jose.EdDSA
	default:
		return nil, fmt.Errorf("key type %T not supported", key)
	}
	if ck.KeyID == "" {
		tp, err := (&jose.JSONWebKey{Key: ck.Signer.Public()}).Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, err
		}
		ck.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	}
	return ck, nil
}

// PublicJWK is the key's public JWK (kid, alg, use sig).
func (k *ClientKey) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Signer.Public(), KeyID: k.KeyID, Algorithm: string(k.Alg), Use: "sig"}
}

// SignAssertion returns an RFC 7523 assertion: iss = sub = client, aud =
// audience (the issuer identifier), a random jti, iat now and exp now +
// lifetime.
func (k *ClientKey) SignAssertion(client, audience string, now time.Time, lifetime time.Duration) (string, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: jose.JSONWebKey{Key: k.Signer, KeyID: k.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	return jwt.Signed(s).Claims(jwt.Claims{
		Issuer: client, Subject: client, Audience: jwt.Audience{audience}, ID: newJTI(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(lifetime)),
	}).Serialize()
}

// PublicJWKS is the indented JSON of the public JWKS of keys.
func PublicJWKS(keys ...*ClientKey) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.PublicJWK())
	}
	return json.MarshalIndent(set, "", "  ")
}
