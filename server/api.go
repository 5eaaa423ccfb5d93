package server

import (
	"github.com/saslcert/saslcert/api"
	"github.com/saslcert/saslcert/oauth"
)

// API builds the /v1 organisation API over the service: its life-cycle
// owner, XEP-0257 handler (uploads get its checks), enrolment service,
// live-session registry, store and served domains (the tenants), with
// auth checking every request's access token. Register it with AddRoutes
// before Run. Errors: api.New's.
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
		Logger:    s.log.With("part", "api"),
	})
}
