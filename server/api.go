package server

import (
	"crypto/hmac"
	"crypto/sha256"

	"github.com/saslcert/saslcert/api"
	"github.com/saslcert/saslcert/oauth"
)

// API builds the /v1 organisation API over the service: its life-cycle
// owner, XEP-0257 handler (uploads get its checks), enrolment service,
// live-session registry, store and served domains (the tenants), with
// auth checking every request's access token. Register it with AddRoutes
// before Run. Pagination cursors are authenticated with a key derived from
// the component secret, so that every instance of one deployment accepts
// the others' cursors. Errors: api.New's.
func (s *Service) API(auth oauth.Authenticator) (*api.API, error) {
	maxBody := int64(0) // api.DefaultMaxBody
	if b := s.cfg.HTTP.MaxBodyBytes; b > 0 && b < api.DefaultMaxBody {
		maxBody = b // the listener's smaller limit, so that 413 names it
	}
	return api.New(api.Config{
		Auth:      auth,
		Store:     s.deps.Store,
		Lifecycle: s.Lifecycle,
		Certs:     s.Certs,
		Enroll:    s.Enroll,
		Sessions:  s.Component.Sessions(),
		Tenants:   s.cfg.Component.ServerDomains,
		Policy:    s.cfg.Policy,
		Now:       s.deps.Now,
		MaxBody:   maxBody,
		CursorKey: cursorKey(s.cfg.Component.Secret),
		Logger:    s.log.With("part", "api"),
	})
}

// cursorKey derives the API's cursor key from the component secret (nil
// without one: api.New then picks a random key).
func cursorKey(secret []byte) []byte {
	if len(secret) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("saslcert /v1 pagination cursors"))
	return m.Sum(nil)
}
