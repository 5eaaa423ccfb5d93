// Package server builds the running saslcert service in one place: from its
// configuration and dependencies (store, clock, logger, the enrolment
// service's issuers and policies) it wires the certificate life-cycle owner
// (lifecycle.Manager), the XEP-0257 handler, the SASL EXTERNAL authorizer,
// the XEP-0114 component and the background jobs (audit watch, prune,
// renewal), and runs and stops them together. saslcert serve, the test
// stacks and the benchmarks use it; nothing else calls component.New.
//
// A new long-running part of the service (an HTTP listener, another
// watcher) is started in Service.Run and stopped before Run returns.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/saslcert/saslcert/component"
	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/lifecycle"
	"github.com/saslcert/saslcert/metrics"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// Defaults of the service's own settings (the parts' defaults live in their
// packages: component.Default*, xep0257.DefaultLimits, sasl.DefaultPolicy).
const (
	// DefaultAppendsPerHour is the XEP-0257 uploads per account and hour.
	DefaultAppendsPerHour = 30
	// DefaultAuditRetention is how long audit entries are kept.
	DefaultAuditRetention = 90 * 24 * time.Hour
	// MinAuditRetention is the smallest AuditRetention accepted.
	MinAuditRetention = 24 * time.Hour
	// DefaultAdminWatch is how often the audit log is read for other
	// writers' changes.
	DefaultAdminWatch = time.Second
	// DefaultRenewInterval is how often issued certificates are checked
	// for renewal.
	DefaultRenewInterval = 10 * time.Minute
	// DefaultPluginCacheTTL is how long saslcert serve lets the server
	// plugin reuse a login decision or an <items/> list
	// (component.Config.CacheTTL; the component's own default is 0).
	DefaultPluginCacheTTL = time.Minute
	// PruneInterval is how often the store is pruned.
	PruneInterval = time.Hour
)

// Config is the service's configuration. Zero fields take the defaults
// named on them.
type Config struct {
	// Component is the XEP-0114 component's configuration (Logger and Now
	// are set from Deps unless set).
	Component component.Config
	// Policy applies to uploads and logins (zero: sasl.DefaultPolicy()).
	Policy sasl.Policy
	// Limits bound XEP-0257 requests (zero: xep0257.DefaultLimits()).
	Limits xep0257.Limits
	// AppendsPerHour limits XEP-0257 uploads per account (0: no limit).
	AppendsPerHour int
	// AdminWatch is how often the audit log is read for changes of other
	// writers, which are then passed on to the server (0: never). With a
	// store several processes share (storage.ChangeFeed), the log is also
	// read as soon as any of them wrote.
	AdminWatch time.Duration
	// Instance names this process among several serving one shared store:
	// its mark of how far it passed the audit log on (Store.MarkPassedOn).
	// "" means the component's JID.
	Instance string
	// AuditRetention: audit entries older than this are pruned every
	// PruneInterval, with expired history (0: no pruning).
	AuditRetention time.Duration
	// Enroll, if set, enables enrolment (the XEP-0050 commands, renewal,
	// revocation at the CA, trusted-root logins). Its Store, Now, Logger
	// and Component are set by New; MaxPerAccount and MaxNameLen from
	// Limits unless set.
	Enroll *enroll.ServiceConfig
	// RenewInterval is how often issued certificates are renewed
	// (DefaultRenewInterval if zero; with Enroll only).
	RenewInterval time.Duration
	// HTTP configures the HTTP listener (OAuth2, /v1 API, WebFinger,
	// health) and the metrics listener; the zero value runs neither.
	HTTP HTTPConfig
}

// Deps are the service's dependencies.
type Deps struct {
	// Store keeps the certificates (required). The service does not close it.
	Store storage.Store
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Logger receives the service's log (nothing is logged if nil).
	Logger *slog.Logger
	// WrapStore, if set, wraps the store the service's writers use, inside
	// the life-cycle owner (tests: slow or failing writes).
	WrapStore func(storage.Store) storage.Store
	// Metrics receives the service's metrics (a new metrics.New() if nil;
	// one per service: New registers collectors in it); the metrics
	// listener serves it.
	Metrics *metrics.Metrics
	// HTTPListener and MetricsListener, if set, are used instead of
	// binding HTTPConfig.Listen and MetricsListen (tests: port 0). Run
	// closes them. A MetricsListener runs the metrics listener even
	// without MetricsListen.
	HTTPListener, MetricsListener net.Listener
}

// Service is the assembled service. Its fields are for callers that
// inspect it (tests, the benchmarks); do not change them.
type Service struct {
	Component *component.Component
	Lifecycle *lifecycle.Manager
	Certs     *xep0257.Handler
	Auth      *sasl.Authorizer
	Enroll    *enroll.Service // nil without enrolment

	// Metrics are the service's metrics (Deps.Metrics or a new set).
	Metrics *metrics.Metrics

	cfg  Config
	deps Deps
	log  *slog.Logger
	ran  sync.Once

	tls         *tls.Config // the HTTP listener's, nil for plain HTTP
	httpObs     HTTPObserver
	ownRoutes   []Routes // the service's own parts: WebFinger, the CA's files
	extraRoutes []Routes // AddRoutes
	addrMu      sync.Mutex
	httpAddr    net.Addr
	metricsAddr net.Addr
}

// New assembles the service; nothing runs until Run. Errors: a missing
// store, an invalid component configuration, an invalid enrolment
// configuration.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Store == nil {
		return nil, errors.New("server: no store")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Policy == (sasl.Policy{}) {
		cfg.Policy = sasl.DefaultPolicy()
	}
	if cfg.Limits == (xep0257.Limits{}) {
		cfg.Limits = xep0257.DefaultLimits()
	}
	if cfg.Component.RequestTimeout == 0 {
		cfg.Component.RequestTimeout = component.DefaultRequestTimeout
	}
	if cfg.Component.Logger == nil {
		cfg.Component.Logger = deps.Logger.With("part", "component")
	}
	if cfg.Component.Now == nil {
		cfg.Component.Now = deps.Now
	}
	if cfg.HTTP.Enabled() || cfg.HTTP.MetricsListen != "" {
		if err := CheckHTTP(cfg.HTTP); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	cfg.HTTP = cfg.HTTP.withHTTPDefaults()
	if deps.Metrics == nil {
		deps.Metrics = metrics.New()
	}
	if cfg.Component.Observer == nil {
		cfg.Component.Observer = deps.Metrics
	}
	if cfg.Instance == "" {
		cfg.Instance = cfg.Component.JID.String()
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Logger, Metrics: deps.Metrics, httpObs: deps.Metrics}
	if cfg.HTTP.Enabled() {
		var err error
		if s.tls, err = loadTLS(cfg.HTTP, deps.Now, deps.Logger.With("part", "http")); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	writes := deps.Store
	if deps.WrapStore != nil {
		writes = deps.WrapStore(writes)
	}
	s.Lifecycle = lifecycle.New(writes, deps.Logger.With("part", "lifecycle"))
	s.Certs = &xep0257.Handler{
		Store:   s.Lifecycle,
		Policy:  cfg.Policy,
		Limits:  cfg.Limits,
		Now:     deps.Now,
		Logger:  deps.Logger.With("part", "xep0257"),
		Timeout: cfg.Component.RequestTimeout,
		Uploads: deps.Metrics,
	}
	if cfg.AppendsPerHour > 0 {
		s.Certs.AppendRate = xep0257.NewRateLimit(cfg.AppendsPerHour, time.Hour/time.Duration(cfg.AppendsPerHour), deps.Now)
	}
	s.Auth = &sasl.Authorizer{Store: deps.Store, Now: deps.Now, Policy: cfg.Policy}
	if cfg.Enroll != nil {
		ec := *cfg.Enroll
		ec.Store, ec.Now, ec.Component = s.Lifecycle, deps.Now, cfg.Component.JID
		if ec.Logger == nil {
			ec.Logger = deps.Logger.With("part", "enroll")
		}
		if ec.MaxPerAccount == 0 {
			ec.MaxPerAccount = cfg.Limits.MaxPerAccount
		}
		if ec.MaxNameLen == 0 {
			ec.MaxNameLen = cfg.Limits.MaxNameLen
		}
		svc, err := enroll.NewService(ec)
		if err != nil {
			return nil, err
		}
		s.Enroll = svc
		s.Certs.CheckAppend = svc.CheckAppend
		s.Auth.Trusted = svc.Trusted
		s.Auth.IsRevoked = svc.IsRevoked
		s.Auth.IssuerRevoked = svc.IssuerRevoked
	}
	comp, err := component.New(cfg.Component, s.Certs, s.Auth)
	if err != nil {
		return nil, err
	}
	s.Component = comp
	// <items/> lists the live sessions of each certificate.
	s.Certs.Sessions = comp.Sessions()
	if s.Enroll != nil {
		comp.EnableEnrollment(exclusiveSweep{Enrollment: s.Enroll, store: deps.Store})
	}
	// The order of the side effects is lifecycle.Effects': the plugin
	// forgets its caches, then closes the sessions of a revoked
	// certificate, then the CA is told.
	effects := lifecycle.Effects{
		Changed: func(ctx context.Context, account string) { _ = comp.NotifyChanged(ctx, account) },
		Revoked: comp.NotifyRevoked,
	}
	if s.Enroll != nil {
		effects.RevokeAtCA = s.revokeAtCA
	}
	s.Lifecycle.Register(effects)
	s.observe()
	if cfg.HTTP.Enabled() {
		s.ownRoutes = s.ownHTTPRoutes()
	}
	return s, nil
}

// observe connects the metrics to what is read at scrape time (the link,
// the store's size) and to the life-cycle owner's revocations.
func (s *Service) observe() {
	m := s.Metrics
	m.ObserveLink(s.Component)
	if c, ok := s.deps.Store.(storage.Counter); ok {
		m.ObserveStore(c, s.deps.Now)
	}
	s.Lifecycle.Register(lifecycle.Effects{Notice: func(_ context.Context, ch lifecycle.Change) {
		m.Revoked(string(ch.Kind), ch.Actor, len(ch.Revoked))
	}})
}

// revokeAtCA tells the CA of an enrolled certificate that it was revoked. A
// failure is logged and retried by the renewal sweep.
func (s *Service) revokeAtCA(ctx context.Context, c *storage.Cert) {
	if c == nil || c.Source != storage.SourceEnrolled {
		return
	}
	switch err := s.Enroll.RevokeAtCA(ctx, c); {
	case err == nil:
	case errors.Is(err, enroll.ErrNotSupported):
		s.log.Warn("the certificate's CA cannot be told about the revocation (EST, or a CA no longer configured); revoke it there by other means",
			"account", c.Account, "name", c.Name, "fingerprint", c.Fingerprint.String(), "err", err)
	default:
		s.log.Warn("could not revoke the certificate at its CA now; the renewal sweep retries", "account", c.Account,
			"name", c.Name, "fingerprint", c.Fingerprint.String(), "err", err)
	}
}

// Run runs the component and the background jobs until ctx is done, then
// stops them all and returns (nil after a clean stop). The jobs are: the
// audit watch (Config.AdminWatch), the prune job (Config.AuditRetention),
// renewal (with enrolment), the HTTP and metrics listeners (Config.HTTP;
// bound first: an address that cannot be bound is Run's error, and the
// listeners are shut down gracefully before Run returns). Run may be
// called once.
func (s *Service) Run(ctx context.Context) error {
	first := false
	s.ran.Do(func() { first = true })
	if !first {
		return errors.New("server: Run called more than once")
	}
	ls, err := s.startHTTP(ctx)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	// The listeners stop first when ctx ends (no new API requests while
	// the component drains), and have stopped when Run returns.
	httpCtx, stopHTTP := context.WithCancel(ctx)
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		<-httpCtx.Done()
		ls.stop()
	}()
	defer func() {
		stopHTTP()
		<-httpDone
	}()
	jobs, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	start := func(job func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job(jobs)
		}()
	}
	if s.cfg.AdminWatch > 0 {
		start(func(ctx context.Context) {
			opts := lifecycle.WatchOptions{Interval: s.cfg.AdminWatch, Watcher: s.cfg.Instance}
			if feed, ok := s.deps.Store.(storage.ChangeFeed); ok {
				opts.Wake = feed.Changes(ctx)
			}
			s.Lifecycle.Watch(ctx, opts)
		})
	}
	if s.cfg.AuditRetention > 0 {
		start(func(ctx context.Context) {
			Prune(ctx, s.deps.Store, s.cfg.AuditRetention, s.deps.Now, s.log.With("part", "prune"))
		})
	}
	if s.Enroll != nil {
		interval := s.cfg.RenewInterval
		if interval <= 0 {
			interval = DefaultRenewInterval
		}
		start(func(ctx context.Context) { s.Component.RunRenewal(ctx, interval) })
	}
	err = s.Component.Run(ctx)
	stop()
	wg.Wait()
	return err
}
