// Package api is saslcert's organisation API (/v1): JSON over HTTP for the
// systems of an organisation (an HR system, a help desk) that manage the
// certificates of their people. Tenants are the served XMPP domains, each
// with its policy; a seat is one account (bare JID) of a tenant.
//
// Every request is authenticated by an oauth.Authenticator (a bearer access
// token) and authorised with its oauth.Principal: the token's tenant (a
// token of tenant A gets 404 for everything of tenant B, as if it did not
// exist), its seat if any (only that account), and the action scope each
// route needs. The handlers translate requests into calls of the
// certificate life-cycle owner (lifecycle.Manager), audited as
// Principal.Actor() ("api:<client id>"); uploads go through the XEP-0257
// handler's checks (xep0257.Handler.AppendAs) and enrolment through
// enroll.Service, so that the API refuses what XMPP refuses, with the same
// words. Errors are httperr's. The routes, their scopes and statuses are in
// routes.go and in the OpenAPI document (docs/openapi.json, served at
// GET /v1/openapi.json), which a test keeps in step.
package api

import (
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/lifecycle"
	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// Defaults of Config.
const (
	DefaultMaxBody        = 64 << 10
	DefaultPageSize       = 50
	MaxPageSize           = 500
	DefaultIdempotencyTTL = 24 * time.Hour
	// IdempotencyPending is how long a retry waits for a request with the
	// same key that is still being worked on (or whose process died)
	// before the key may be claimed again.
	IdempotencyPending = 2 * time.Minute
)

// Config is what the API needs. Auth, Store, Lifecycle, Certs and Tenants
// are required.
type Config struct {
	// Auth checks every request's access token.
	Auth oauth.Authenticator
	// Store is the bare store (not the Manager): reads, and its optional
	// storage.Searcher and storage.Idempotency.
	Store storage.Store
	// Lifecycle commits every change and runs its side effects (plugin
	// caches, closing sessions, the CA).
	Lifecycle *lifecycle.Manager
	// Certs is the XEP-0257 handler whose checks uploads go through.
	Certs *xep0257.Handler
	// Enroll issues certificates (nil: enroll answers 409, not offered).
	Enroll *enroll.Service
	// Sessions reports live sessions per certificate (nil: not reported).
	Sessions xep0257.Sessions
	// Tenants are the served domains.
	Tenants []string
	// Policy is the key and validity policy (zero: sasl.DefaultPolicy()),
	// reported with each tenant.
	Policy sasl.Policy
	// CursorKey authenticates pagination cursors (nil: a random key, so
	// cursors are good for this process only; instances behind one name
	// share a key).
	CursorKey []byte
	// MaxBody bounds a request body (DefaultMaxBody if 0).
	MaxBody int64
	// IdempotencyTTL is how long an Idempotency-Key is remembered
	// (DefaultIdempotencyTTL if 0).
	IdempotencyTTL time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
}

// API serves /v1. It is safe for concurrent use.
type API struct {
	cfg    Config
	log    *slog.Logger
	idem   storage.Idempotency
	routes []route
}

// New checks cfg and returns the API. Errors name the missing part.
func New(cfg Config) (*API, error) {
	switch {
	case cfg.Auth == nil:
		return nil, errors.New("api: no Authenticator")
	case cfg.Store == nil:
		return nil, errors.New("api: no Store")
	case cfg.Lifecycle == nil:
		return nil, errors.New("api: no lifecycle.Manager")
	case cfg.Certs == nil:
		return nil, errors.New("api: no XEP-0257 handler")
	case len(cfg.Tenants) == 0:
		return nil, errors.New("api: no tenants (served domains)")
	}
	if cfg.Policy == (sasl.Policy{}) {
		cfg.Policy = sasl.DefaultPolicy()
	}
	if len(cfg.CursorKey) == 0 {
		cfg.CursorKey = make([]byte, 32)
		rand.Read(cfg.CursorKey)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Tenants = slices.Clone(cfg.Tenants)
	slices.Sort(cfg.Tenants)
	a := &API{cfg: cfg, log: cfg.Logger}
	if s, ok := cfg.Store.(storage.Idempotency); ok {
		a.idem = s
	} else {
		a.idem = newMemIdempotency(cfg.Now)
	}
	a.routes = a.table()
	return a, nil
}

// Register adds every route of the API to mux (Go 1.22 patterns with a
// method, e.g. "GET /v1/tenants").
func (a *API) Register(mux *http.ServeMux) {
	for _, rt := range a.routes {
		mux.Handle(rt.method+" "+rt.path, a.serve(rt))
	}
}

// Handler returns a mux with only the API's routes (tests; a listener that
// serves nothing else).
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}

// served reports whether domain is a tenant.
func (a *API) served(domain string) bool {
	_, ok := slices.BinarySearch(a.cfg.Tenants, domain)
	return ok
}
