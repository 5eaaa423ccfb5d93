package oauth

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/storage"
)

// maxForm bounds the body of the token, introspection and revocation
// requests.
const maxForm = 16 << 10

// readForm reads a POST body of application/x-www-form-urlencoded (only the
// body: parameters in the query are ignored) and refuses repeated
// parameters (RFC 6749 §3.2). Errors: invalid_request, payload_too_large.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, httperr.New(httperr.InvalidRequest, "want a body of type application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		if mbe := new(http.MaxBytesError); errors.As(err, &mbe) {
			return nil, httperr.New(httperr.PayloadTooLarge, "request body larger than %d bytes", maxForm)
		}
		return nil, httperr.New(httperr.InvalidRequest, "malformed form body")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, httperr.New(httperr.InvalidRequest, "parameter %s given %d times", k, len(v))
		}
	}
	return r.PostForm, nil
}

// authMethod is how a client authenticated (RFC 7591 names).
type authMethod string

const (
	authBasic authMethod = "client_secret_basic"
	authPost  authMethod = "client_secret_post"
	authJWT   authMethod = "private_key_jwt"
)

// authenticateClient authenticates the client of a token, introspection or
// revocation request by exactly one of client_secret_basic,
// client_secret_post and private_key_jwt, under the failure rate limit.
// Errors: invalid_request (no or several methods), invalid_client (401, with
// a Basic challenge after HTTP Basic), too_many_requests, store errors.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (client *storage.OAuthClient, method authMethod, err error) {
	user, pass, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		user, err1 = url.QueryUnescape(user)
		pass, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, authBasic, &httperr.Error{Code: httperr.InvalidClient, Description: "malformed Basic credentials", Challenge: httperr.Basic}
		}
	}
	assertion, hasAssertion := form["client_assertion"]
	_, hasSecret := form["client_secret"]
	n := 0
	for _, b := range []bool{basic, hasAssertion, hasSecret} {
		if b {
			n++
		}
	}
	if n > 1 {
		return nil, method, httperr.New(httperr.InvalidRequest, "use one client authentication method")
	}
	id := form.Get("client_id")
	method = authPost
	switch {
	case basic:
		if id != "" && id != user {
			return nil, method, httperr.New(httperr.InvalidRequest, "client_id differs from the Basic user")
		}
		id, method = user, authBasic
	case hasAssertion:
		method = authJWT
		if form.Get("client_assertion_type") != AssertionType {
			return nil, method, httperr.New(httperr.InvalidRequest, "client_assertion_type must be %s", AssertionType)
		}
	case hasSecret:
	default:
		return nil, method, httperr.New(httperr.InvalidClient, "client authentication required (client_secret_basic, client_secret_post or private_key_jwt)")
	}
	keys := []string{addrKey(r), idKey(id)}
	if method == authJWT && id == "" {
		keys[1] = idKey(unverifiedIssuer(assertion[0]))
	}
	if blocked, wait := s.fails.blocked(s.cfg.Now(), keys...); blocked {
		return nil, method, &httperr.Error{Code: httperr.TooManyRequests, Description: "too many failed client authentications; wait", RetryAfter: wait}
	}
	if method == authJWT {
		client, err = s.verifyAssertion(ctx, assertion[0], id)
	} else {
		client, err = s.checkSecret(ctx, id, form.Get("client_secret"), pass, method)
	}
	if ce := (*credentialError)(nil); errors.As(err, &ce) {
		s.fails.failed(s.cfg.Now(), keys...)
		s.log.Info("oauth: client authentication failed", "client", id, "method", method, "addr", keys[0], "reason", ce.desc)
		e := &httperr.Error{Code: httperr.InvalidClient, Description: string(method) + ": " + ce.desc}
		if method == authBasic {
			e.Challenge = httperr.Basic
		}
		return nil, method, e
	}
	return client, method, err
}

// checkSecret checks a client secret (from Basic when method is authBasic,
// else from the form). Errors: *credentialError, store errors.
func (s *Server) checkSecret(ctx context.Context, id, formSecret, basicSecret string, method authMethod) (*storage.OAuthClient, error) {
	secret := formSecret
	if method == authBasic {
		secret = basicSecret
	}
	if id == "" {
		return nil, badCredential("client_id missing")
	}
	client, err := s.cfg.Store.FindClient(ctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	hash := dummyHash()
	if client != nil && client.SecretHash != "" {
		hash = client.SecretHash
	}
	ok, herr := CheckSecret(hash, secret)
	switch {
	case client == nil:
		return nil, badCredential("unknown client or wrong secret")
	case client.SecretHash == "":
		return nil, badCredential("client has no secret; use private_key_jwt")
	case herr != nil:
		return nil, herr
	case !ok:
		return nil, badCredential("unknown client or wrong secret")
	}
	return client, nil
}

// unverifiedIssuer is the iss of a JWT, unverified ("" if unreadable): only
// for rate-limit keys and logs.
func unverifiedIssuer(raw string) string {
	tok, err := parseJWS(raw)
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if tok.UnsafeClaimsWithoutVerification(&c) != nil || len(c.Iss) > 256 {
		return ""
	}
	return c.Iss
}
