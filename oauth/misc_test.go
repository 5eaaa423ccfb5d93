package oauth_test

import (
	"encoding/json"

	"github.com/go-jose/go-jose/v4"

	"github.com/saslcert/saslcert/oauth"
)

// jsonJWKS is the public JWKS of keys.
func jsonJWKS(keys ...*oauth.ClientKey) ([]byte, error) {
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.PublicJWK())
	}
	return json.Marshal(set)
}
