package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/storage"
)

// Defaults of Config.
const (
	DefaultTokenLifetime   = 10 * time.Minute
	MaxTokenLifetime       = time.Hour
	DefaultAssertionMaxAge = 5 * time.Minute
	DefaultLeeway          = 30 * time.Second
	DefaultJWKSMaxAge      = 5 * time.Minute
	DefaultJWKSMinRefetch  = 10 * time.Second
	DefaultKeyRefresh      = 30 * time.Second
	DefaultFailureBurst    = 10
	DefaultFailureEvery    = 6 * time.Second
)

// The endpoints' paths under the issuer.
const (
	TokenPath      = "/oauth2/token"
	JWKSPath       = "/oauth2/jwks"
	IntrospectPath = "/oauth2/introspect"
	RevokePath     = "/oauth2/revoke"
	MetadataPath   = "/.well-known/oauth-authorization-server"
)

// Config configures a Server. Issuer and Store are required; zero values of
// the rest mean their defaults.
type Config struct {
	// Issuer is the issuer identifier (RFC 8414): the public https URL of
	// saslcert's HTTP listener, e.g. https://certs.example.org, without a
	// trailing slash. It is the iss and aud of access tokens and the aud
	// assertions must name (the token endpoint's URL is accepted too).
	Issuer string
	Store  storage.OAuthStore
	// TokenLifetime is how long access tokens live (at most MaxTokenLifetime).
	TokenLifetime time.Duration
	// AssertionMaxAge bounds how far ahead of now an assertion's exp may be.
	AssertionMaxAge time.Duration
	// Leeway is the clock difference allowed on exp, nbf and iat.
	Leeway time.Duration
	// Tenants, if not nil, are the served domains: a token can name only
	// one of them (whatever a client was registered for).
	Tenants []string
	// JWKSMaxAge is how long a key set fetched from a jwks_uri is used
	// before it is fetched again; JWKSMinRefetch is how often at most an
	// unknown kid makes it fetched early.
	JWKSMaxAge, JWKSMinRefetch time.Duration
	// KeyRefresh is how often the signing keys are read from the store
	// (a rotation by another process takes effect within it).
	KeyRefresh time.Duration
	// FailureBurst failed client authentications are allowed per client id
	// and per address, then one more every FailureEvery.
	FailureBurst int
	FailureEvery time.Duration
	// HTTPClient fetches jwks_uri key sets; nil: 5 s timeout, no redirects.
	HTTPClient *http.Client
	// Observer is told about every token request's outcome (metrics);
	// nil: nobody.
	Observer TokenObserver
	Now      func() time.Time
	Logger   *slog.Logger
}

// TokenObserver is told the outcome of token requests; metrics.Metrics
// implements it. Labels come from fixed sets: grantType is
// client_credentials, the jwt-bearer URN or "other"; clientAuth
// client_secret_basic, client_secret_post, private_key_jwt or jwt-bearer;
// code an httperr code.
type TokenObserver interface {
	TokenGranted(grantType, clientAuth string)
	TokenRefused(grantType, code string)
}

type noObserver struct{}

func (noObserver) TokenGranted(string, string) {}
func (noObserver) TokenRefused(string, string) {}

// Server is saslcert's OAuth2 authorization server: the token endpoint,
// its key set and metadata, introspection and revocation.
type Server struct {
	cfg      Config
	tokenURL string
	keys     *keyring
	jwks     *jwksCache
	fails    *failLimiter
	own      *Verifier
	log      *slog.Logger
}

// New checks cfg and returns a Server. It does not touch the store; call
// EnsureSigningKey before serving.
func New(cfg Config) (*Server, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(cfg.Issuer, "/") {
		return nil, fmt.Errorf("oauth: issuer %q: want an absolute http(s) URL without query, fragment or trailing slash", cfg.Issuer)
	}
	if cfg.Store == nil {
		return nil, errors.New("oauth: no store")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.TokenLifetime, DefaultTokenLifetime)
	def(&cfg.AssertionMaxAge, DefaultAssertionMaxAge)
	def(&cfg.Leeway, DefaultLeeway)
	def(&cfg.JWKSMaxAge, DefaultJWKSMaxAge)
	def(&cfg.JWKSMinRefetch, DefaultJWKSMinRefetch)
	def(&cfg.KeyRefresh, DefaultKeyRefresh)
	def(&cfg.FailureEvery, DefaultFailureEvery)
	if cfg.TokenLifetime > MaxTokenLifetime {
		return nil, fmt.Errorf("oauth: token lifetime %v: at most %v", cfg.TokenLifetime, MaxTokenLifetime)
	}
	if cfg.FailureBurst <= 0 {
		cfg.FailureBurst = DefaultFailureBurst
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newFetchClient()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		tokenURL: cfg.Issuer + TokenPath,
		keys:     &keyring{store: cfg.Store, now: cfg.Now, lifetime: cfg.TokenLifetime, refresh: cfg.KeyRefresh},
		jwks:     &jwksCache{client: cfg.HTTPClient, now: cfg.Now, maxAge: cfg.JWKSMaxAge, minInterval: cfg.JWKSMinRefetch},
		fails:    newFailLimiter(rate.Every(cfg.FailureEvery), cfg.FailureBurst),
		log:      cfg.Logger,
	}
	s.own = &Verifier{
		issuer: cfg.Issuer, audience: cfg.Issuer, keys: s.keys, store: cfg.Store,
		tenants: cfg.Tenants, now: cfg.Now, leeway: cfg.Leeway,
	}
	return s, nil
}

// EnsureSigningKey creates the first signing key if the store has none.
func (s *Server) EnsureSigningKey(ctx context.Context) error {
	keys, err := s.cfg.Store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Retired.IsZero() {
			return nil
		}
	}
	k, err := RotateSigningKey(ctx, s.cfg.Store, s.cfg.Now())
	if err == nil {
		s.log.Info("oauth: created a signing key", "kid", k.ID)
	}
	return err
}

// Verifier returns the Authenticator of the access tokens s issues.
func (s *Server) Verifier() *Verifier { return s.own }

// Register adds the endpoints to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle(TokenPath, only(http.MethodPost, s.token))
	mux.Handle(JWKSPath, only(http.MethodGet, s.serveJWKS))
	mux.Handle(MetadataPath, only(http.MethodGet, s.metadata))
	mux.Handle(IntrospectPath, only(http.MethodPost, s.introspect))
	mux.Handle(RevokePath, only(http.MethodPost, s.revoke))
}

// only answers requests of method with h and others with 405.
func only(method string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			httperr.Write(w, httperr.New(httperr.MethodNotAllowed, "use %s", method))
			return
		}
		if err := h(w, r); err != nil {
			httperr.Write(w, err)
		}
	})
}

// fail logs err if it is not an answer to a bad request, and returns it.
func (s *Server) fail(r *http.Request, err error) error {
	var he *httperr.Error
	if !errors.As(err, &he) || he.HTTPStatus() >= 500 {
		s.log.Error("oauth: request failed", "path", r.URL.Path, "err", err)
	}
	if errors.Is(err, storage.ErrUnavailable) && !errors.As(err, &he) {
		return &httperr.Error{Code: httperr.Unavailable, Description: "the store is unavailable; try again", RetryAfter: time.Second, Cause: err}
	}
	return err
}
