package oauth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/saslcert/saslcert/oauth"
)

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "", want: ""},
		{in: "certs:write certs:read certs:read tenant:example.org", want: "certs:read certs:write tenant:example.org"},
		{in: "audit:read  tenant:example.org seat:Alice@Example.org", want: "audit:read tenant:example.org seat:alice@example.org"},
		{in: "seat:alice@example.org", err: "needs tenant:<domain>"},
		{in: "tenant:example.org seat:alice@example.net", err: "not an account of tenant"},
		{in: "tenant:example.org tenant:example.net", err: "two tenants"},
		{in: "tenant:example.org seat:a@example.org seat:b@example.org", err: "two seats"},
		{in: "tenant:", err: "want tenant:<domain>"},
		{in: "tenant:alice@example.org", err: "want tenant:<domain>"},
		{in: "tenant:example.org seat:example.org", err: "want seat:<bare JID>"},
		{in: "tenant:example.org seat:a@example.org/phone", err: "want seat:<bare JID>"},
		{in: "certs:admin", err: `unknown scope "certs:admin"`},
		{in: "openid", err: `unknown scope "openid"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			sc, err := oauth.ParseScope(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("ParseScope: %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil || sc.String() != tc.want {
				t.Errorf("ParseScope = %q, %v; want %q", sc.String(), err, tc.want)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	jwk := func(k jose.JSONWebKey) string { b, _ := json.Marshal(k); return string(b) }
	set := func(keys ...string) []byte { return []byte(`{"keys":[` + strings.Join(keys, ",") + `]}`) }
	pub := jose.JSONWebKey{Key: ec.Public(), KeyID: "a"}
	for _, tc := range []struct {
		name string
		in   []byte
		err  string
	}{
		{"ok", set(jwk(pub)), ""},
		{"no kid", set(jwk(jose.JSONWebKey{Key: ec.Public()})), "no kid"},
		{"kid twice", set(jwk(pub), jwk(pub)), `kid "a" twice`},
		{"private key", set(jwk(jose.JSONWebKey{Key: ec, KeyID: "a"})), "private or symmetric"},
		{"symmetric key", set(jwk(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "a"})), "private or symmetric"},
		{"small RSA", set(jwk(jose.JSONWebKey{Key: small.Public(), KeyID: "a"})), "RSA key of 1024 bits"},
		{"use enc", set(jwk(jose.JSONWebKey{Key: ec.Public(), KeyID: "a", Use: "enc"})), `use "enc"`},
		{"alg HS256", set(jwk(jose.JSONWebKey{Key: ec.Public(), KeyID: "a", Algorithm: "HS256"})), `alg "HS256" not allowed`},
		{"not JSON", []byte("nope"), "JWKS"},
		{"too large", make([]byte, oauth.MaxJWKSSize+1), "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := oauth.ParseJWKS(tc.in)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("ParseJWKS: %v, want %q", err, tc.err)
			}
		})
	}
}

func TestCheckSecret(t *testing.T) {
	secret, hash := oauth.NewSecret()
	if ok, err := oauth.CheckSecret(hash, secret); !ok || err != nil {
		t.Errorf("right secret: %v, %v", ok, err)
	}
	if ok, err := oauth.CheckSecret(hash, secret+"x"); ok || err != nil {
		t.Errorf("wrong secret: %v, %v", ok, err)
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", "$argon2id$v=19$m=99999999,t=2,p=1$c2FsdA$aGFzaA"} {
		if _, err := oauth.CheckSecret(bad, secret); err != oauth.ErrSecretHash {
			t.Errorf("CheckSecret(%q): %v, want ErrSecretHash", bad, err)
		}
	}
}

func TestParseClientKey(t *testing.T) {
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ec384)
	pk8, _ := x509.MarshalPKCS8PrivateKey(ed)
	for _, tc := range []struct {
		name string
		in   []byte
		alg  jose.SignatureAlgorithm
		err  string
	}{
		{"SEC 1 P-384", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), jose.ES384, ""},
		{"PKCS #1 RSA", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}), jose.RS256, ""},
		{"PKCS #8 Ed25519", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8}), jose.EdDSA, ""},
		{"JWK PS256", func() []byte {
			b, _ := json.Marshal(jose.JSONWebKey{Key: rk, KeyID: "k1", Algorithm: "PS256"})
			return b
		}(), jose.PS256, ""},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), "", "want a private key"},
		{"public JWK", func() []byte { b, _ := json.Marshal(jose.JSONWebKey{Key: rk.Public()}); return b }(), "", "public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := oauth.ParseClientKey(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("ParseClientKey: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || k.Alg != tc.alg || k.KeyID == "" {
				t.Errorf("ParseClientKey = %+v, %v; want alg %s", k, err, tc.alg)
			}
		})
	}
}
