package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/saslcert/saslcert/httpserve"
	"github.com/saslcert/saslcert/webfinger"
)

// HTTP defaults.
const (
	// DefaultMaxBodyBytes bounds a request body on the HTTP listener (a CSR
	// or a certificate in PEM is a few KiB).
	DefaultMaxBodyBytes = 256 << 10
	// DefaultHTTPMaxConns is the connections the HTTP listener serves at
	// once.
	DefaultHTTPMaxConns = 256
	// HTTPShutdownGrace is how long requests under way may finish when the
	// service stops.
	HTTPShutdownGrace = 5 * time.Second
)

// EnrollPathTemplate is the path of an account's enrollment endpoint on the
// HTTP listener (implemented by the /v1 API), as the webfinger links name it:
// {tenant} is the served domain, {account} the bare JID.
const EnrollPathTemplate = "/v1/tenants/{tenant}/accounts/{account}/enroll"

// The configuration errors of the HTTP listener (CheckHTTP wraps them).
var (
	// ErrPlainHTTP: plain HTTP (no TLS certificate) on an address that is
	// not loopback.
	ErrPlainHTTP = errors.New("plain HTTP is allowed on a loopback address only")
	// ErrPublicURL: the public URL is missing, not absolute, not https on a
	// non-loopback host, or has a query or fragment.
	ErrPublicURL = errors.New("invalid public URL")
)

// HTTPConfig configures the HTTP listener (the OAuth2 server, the /v1 API,
// WebFinger, health) and the metrics listener. The zero value runs neither.
type HTTPConfig struct {
	// Listen is the HTTP listener's address (host:port; "": no listener).
	// Without TLSCert it must be a loopback address.
	Listen string
	// TLSCert and TLSKey are PEM files of the listener's certificate chain
	// and key (both or neither). They are read when the service is built,
	// and again after they change (checked every TLSRecheck at a
	// handshake): a renewal needs no restart.
	TLSCert, TLSKey string
	// PublicURL is the listener's public base URL: the OAuth issuer
	// identifier and token audience, the base of WebFinger's links
	// (required with Listen; https unless its host is loopback; no query,
	// no fragment; a trailing slash is removed).
	PublicURL string
	// MetricsListen is the address of the Prometheus listener serving
	// /metrics ("": none). It is separate from Listen so that metrics stay
	// off the public port.
	MetricsListen string
	// MaxBodyBytes bounds every request body (DefaultMaxBodyBytes if zero).
	MaxBodyBytes int64
	// Limits are the listeners' timeouts and connection cap (zero: the
	// httpserve defaults with DefaultHTTPMaxConns).
	Limits httpserve.Limits
	// Routes register the handlers of the other parts (oauth, the /v1 API);
	// see Routes. Service.AddRoutes adds more before Run.
	Routes []Routes
	// CARoot, if set, is the embedded CA's root certificate: served at
	// CARootPath (PEM) and linked from WebFinger.
	CARoot *x509.Certificate
	// CRL, if set, serves the embedded CA's CRL: at CRLPath, linked from
	// WebFinger.
	CRL http.Handler
}

// The paths of the embedded CA's files on the HTTP listener.
const (
	CARootPath = "/ca/root.pem"
	CRLPath    = "/ca/crl"
)

// Enabled reports whether the HTTP listener runs.
func (h HTTPConfig) Enabled() bool { return h.Listen != "" }

// CheckHTTP checks h as New does, without reading the TLS files: plain HTTP
// on a non-loopback address (ErrPlainHTTP), a missing or invalid public URL
// (ErrPublicURL), a certificate without its key, a bad address. The errors
// name the flags of saslcert serve.
func CheckHTTP(h HTTPConfig) error {
	if h.Listen == "" {
		if h.TLSCert != "" || h.TLSKey != "" || h.PublicURL != "" {
			return errors.New("--http-tls-cert, --http-tls-key and --http-public-url need --http-listen")
		}
		return checkListenAddr("--metrics-listen", h.MetricsListen)
	}
	if err := checkListenAddr("--http-listen", h.Listen); err != nil {
		return err
	}
	if err := checkListenAddr("--metrics-listen", h.MetricsListen); err != nil {
		return err
	}
	if (h.TLSCert == "") != (h.TLSKey == "") {
		return errors.New("--http-tls-cert and --http-tls-key go together")
	}
	host, _, _ := net.SplitHostPort(h.Listen)
	if h.TLSCert == "" && !httpserve.IsLoopback(host) {
		return fmt.Errorf("--http-listen %q: %w (127.0.0.1, ::1 or localhost); set --http-tls-cert and --http-tls-key to listen on %q",
			h.Listen, ErrPlainHTTP, host)
	}
	if _, err := PublicBase(h.PublicURL); err != nil {
		return fmt.Errorf("--http-public-url: %w", err)
	}
	return nil
}

// checkListenAddr checks a host:port listen address ("" is allowed: off).
func checkListenAddr(flag, addr string) error {
	if addr == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("%s %q: want host:port, e.g. 127.0.0.1:8443", flag, addr)
	}
	return nil
}

// PublicBase parses a public URL as HTTPConfig.PublicURL requires and
// returns it without a trailing slash. Errors wrap ErrPublicURL.
func PublicBase(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: it is required with an HTTP listener (the OAuth issuer identifier, e.g. https://certs.example.org)", ErrPublicURL)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w %q: %v", ErrPublicURL, s, err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "", u.Opaque != "":
		return "", fmt.Errorf("%w %q: want an absolute https URL such as https://certs.example.org", ErrPublicURL, s)
	case u.Scheme == "http" && !httpserve.IsLoopback(u.Hostname()):
		return "", fmt.Errorf("%w %q: http is allowed for a loopback host only; use https", ErrPublicURL, s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil:
		return "", fmt.Errorf("%w %q: no query, fragment or user info", ErrPublicURL, s)
	}
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s, nil
}

// withHTTPDefaults fills the zero fields of h.
func (h HTTPConfig) withHTTPDefaults() HTTPConfig {
	if h.MaxBodyBytes <= 0 {
		h.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if h.Limits == (httpserve.Limits{}) {
		h.Limits = httpserve.DefaultLimits()
		h.Limits.MaxConns = DefaultHTTPMaxConns
	}
	if b, err := PublicBase(h.PublicURL); err == nil {
		h.PublicURL = b
	}
	return h
}

// loadTLS reads the listener's certificate (renewed files are picked up:
// TLSRecheck); nil without one.
func loadTLS(h HTTPConfig, now func() time.Time, log *slog.Logger) (*tls.Config, error) {
	if h.TLSCert == "" {
		return nil, nil
	}
	files, err := loadCertFiles(h.TLSCert, h.TLSKey, now, log)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: files.get,
		NextProtos:     []string{"http/1.1"},
	}, nil
}

// listeners are the running HTTP and metrics listeners.
type listeners struct {
	http, metrics *httpserve.Server
}

// startHTTP binds (unless Deps gave listeners) and starts the HTTP and
// metrics listeners. On error nothing is left running.
func (s *Service) startHTTP(ctx context.Context) (*listeners, error) {
	h := s.cfg.HTTP
	var ls listeners
	if h.Enabled() {
		ln := s.deps.HTTPListener
		if ln == nil {
			var err error
			if ln, err = listen(ctx, "--http-listen", h.Listen); err != nil {
				return nil, err
			}
		}
		handler, err := s.Handler()
		if err != nil {
			ln.Close()
			return nil, err
		}
		if s.tls != nil {
			ln = tls.NewListener(ln, s.tls)
		}
		srv, err := httpserve.Start(ln, handler, h.Limits, s.log.With("part", "http"))
		if err != nil {
			return nil, err
		}
		ls.http = srv
		s.setAddr(&s.httpAddr, srv.Addr())
		s.log.Info("HTTP listener serving", "addr", srv.Addr().String(), "tls", s.tls != nil, "public_url", h.PublicURL)
	}
	if h.MetricsListen != "" || s.deps.MetricsListener != nil {
		ln := s.deps.MetricsListener
		if ln == nil {
			var err error
			if ln, err = listen(ctx, "--metrics-listen", h.MetricsListen); err != nil {
				ls.stop()
				return nil, err
			}
		}
		srv, err := httpserve.Start(ln, s.metricsHandler(), h.Limits, s.log.With("part", "metrics"))
		if err != nil {
			ls.stop()
			return nil, err
		}
		ls.metrics = srv
		s.setAddr(&s.metricsAddr, srv.Addr())
		s.log.Info("metrics listener serving", "addr", srv.Addr().String(), "path", "/metrics")
		if ta, ok := srv.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
			s.log.Warn("the metrics listener is not on loopback: it is plain HTTP without authentication; let only Prometheus reach it",
				"addr", srv.Addr().String())
		}
	}
	return &ls, nil
}

func listen(ctx context.Context, flag, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return ln, nil
}

// stop shuts the listeners down gracefully (HTTPShutdownGrace).
func (ls *listeners) stop() {
	if ls == nil {
		return
	}
	if ls.http != nil {
		ls.http.Stop(HTTPShutdownGrace)
	}
	if ls.metrics != nil {
		ls.metrics.Stop(HTTPShutdownGrace)
	}
}

func (s *Service) setAddr(p *net.Addr, a net.Addr) {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	*p = a
}

// HTTPAddr is the HTTP listener's address once Run has started it (nil
// before, or without a listener).
func (s *Service) HTTPAddr() net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.httpAddr
}

// MetricsAddr is the metrics listener's address once Run has started it.
func (s *Service) MetricsAddr() net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.metricsAddr
}

// ownRoutes are the service's own routes beside health: WebFinger and the
// embedded CA's files.
func (s *Service) ownHTTPRoutes() []Routes {
	h := s.cfg.HTTP
	wf := webfinger.Config{Domains: s.cfg.Component.ServerDomains, Service: s.cfg.Component.JID, PublicURL: h.PublicURL}
	if s.Enroll != nil {
		wf.EnrollPath = EnrollPathTemplate
	}
	routes := []Routes{}
	if h.CARoot != nil {
		wf.CARootPath = CARootPath
		root := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.CARoot.Raw})
		routes = append(routes, RoutesFunc(func(mux *http.ServeMux) {
			mux.HandleFunc("GET "+CARootPath, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/x-pem-file")
				w.Header().Set("Cache-Control", "max-age=3600")
				_, _ = w.Write(root)
			})
		}))
	}
	if h.CRL != nil {
		wf.CRLPath = CRLPath
		routes = append(routes, RoutesFunc(func(mux *http.ServeMux) { mux.Handle("GET "+CRLPath, h.CRL) }))
	}
	return append(routes, webfinger.New(wf))
}

// metricsHandler serves /metrics (and nothing else) on the metrics
// listener.
func (s *Service) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.Metrics.Handler())
	return mux
}

// CheckHTTPFiles reads the HTTP listener's TLS certificate and key as New
// does (saslcert serve --check).
func CheckHTTPFiles(h HTTPConfig) error {
	_, err := loadTLS(h, time.Now, slog.New(slog.DiscardHandler))
	return err
}

// PublicURL is the HTTP listener's public base URL without a trailing slash
// (HTTPConfig.PublicURL): the OAuth issuer identifier and token audience.
// Empty without an HTTP listener.
func (s *Service) PublicURL() string {
	if !s.cfg.HTTP.Enabled() {
		return ""
	}
	return s.cfg.HTTP.PublicURL
}

// Domains are the served XMPP domains (the tenants of the HTTP API), as
// configured.
func (s *Service) Domains() []string {
	return slices.Clone(s.cfg.Component.ServerDomains)
}
