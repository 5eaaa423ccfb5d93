package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/storage"
)

// Routes is a part of the service that answers on the HTTP listener (the
// OAuth2 server, the /v1 API, WebFinger). Register adds its handlers to mux
// with Go 1.22 patterns ("GET /oauth2/jwks", "POST /v1/..."); a pattern
// registered twice panics when the handler is built, so each part owns its
// paths. Handlers answer errors with httperr.Write. Every handler runs
// behind the listener's middleware: a recover (500 server_error), a body
// limit (HTTPConfig.MaxBodyBytes; a larger body fails to read with
// *http.MaxBytesError, answer it with httperr.PayloadTooLarge), the access
// log and the request metrics (by pattern and status).
type Routes interface {
	Register(mux *http.ServeMux)
}

// RoutesFunc lets a function be Routes.
type RoutesFunc func(mux *http.ServeMux)

// Register calls f(mux).
func (f RoutesFunc) Register(mux *http.ServeMux) { f(mux) }

// HTTPObserver is told about every request the HTTP listener answered:
// route is the pattern that matched ("unmatched" if none), status the
// status written. metrics.Metrics implements it.
type HTTPObserver interface {
	HTTPRequest(route string, status int, elapsed time.Duration)
}

// AddRoutes adds routes to the HTTP listener; call it after New and before
// Run (parts that need the service, such as the /v1 API over
// Service.Lifecycle, are built between the two).
func (s *Service) AddRoutes(r ...Routes) {
	s.extraRoutes = append(s.extraRoutes, r...)
}

// routes builds the listener's ServeMux: the service's own routes first,
// then the other parts'.
func (s *Service) routes() *http.ServeMux {
	mux := http.NewServeMux()
	// The service's own routes.
	mux.HandleFunc(healthzRoute, s.healthz)
	mux.HandleFunc(readyzRoute, s.readyz)
	for _, r := range s.ownRoutes {
		r.Register(mux)
	}
	// ---- The other parts register here: oauth, the /v1 API (through
	// HTTPConfig.Routes or Service.AddRoutes). Nothing else is added to
	// this function for them. ----
	for _, r := range s.cfg.HTTP.Routes {
		r.Register(mux)
	}
	for _, r := range s.extraRoutes {
		r.Register(mux)
	}
	return mux
}

// Handler returns the HTTP listener's handler: the routes behind the
// middleware. Run serves it; tests may serve it themselves. Call it after
// every AddRoutes. Errors: two parts registered conflicting patterns
// (ServeMux's panic, as an error).
func (s *Service) Handler() (h http.Handler, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("server: HTTP routes: %v", v)
		}
	}()
	return s.middleware(s.routes()), nil
}

// statusWriter records the status and size of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errorCapture catches what ServeMux's own 404 and 405 handlers write, so
// that they can be answered in httperr's shape instead of plain text.
type errorCapture struct {
	header http.Header
	status int
}

func (c *errorCapture) Header() http.Header         { return c.header }
func (c *errorCapture) Write(b []byte) (int, error) { return len(b), nil }
func (c *errorCapture) WriteHeader(code int)        { c.status = code }

// Route labels: requests no pattern matched, and the health probes.
const (
	unmatchedRoute = "unmatched"
	healthzRoute   = "GET /healthz"
	readyzRoute    = "GET /readyz"
)

// middleware wraps the mux: body limit, recover, access log and metrics,
// and httperr's shape for the mux's own 404 and 405.
func (s *Service) middleware(mux *http.ServeMux) http.Handler {
	limit := s.cfg.HTTP.MaxBodyBytes
	log := s.log.With("part", "http")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.deps.Now()
		sw := &statusWriter{ResponseWriter: w}
		r.Body = http.MaxBytesReader(sw, r.Body, limit)
		h, pattern := mux.Handler(r)
		route := pattern
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("HTTP handler panicked", "route", route, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if sw.status == 0 {
					httperr.Write(sw, errors.New("panic"))
				}
			}
			if route == "" {
				route = unmatchedRoute
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := s.deps.Now().Sub(start)
			if s.httpObs != nil {
				s.httpObs.HTTPRequest(route, status, elapsed)
			}
			// The path only: queries may carry addresses (WebFinger).
			// Health probes are logged at Debug.
			level := slog.LevelInfo
			if route == healthzRoute || route == readyzRoute {
				level = slog.LevelDebug
			}
			log.Log(r.Context(), level, "HTTP request", "method", r.Method, "route", route, "path", r.URL.Path, "status", status,
				"bytes", sw.bytes, "duration", elapsed.String(), "remote", r.RemoteAddr)
		}()
		if pattern == "" {
			// No route: ServeMux's own 404 or 405 (with Allow), in
			// httperr's shape.
			c := &errorCapture{header: http.Header{}}
			h.ServeHTTP(c, r)
			if allow := c.header.Get("Allow"); allow != "" {
				sw.Header().Set("Allow", allow)
			}
			switch c.status {
			case http.StatusMethodNotAllowed:
				httperr.Write(sw, httperr.New(httperr.MethodNotAllowed, "%s is not allowed here; see Allow", r.Method))
				return
			case http.StatusNotFound:
				httperr.Write(sw, httperr.New(httperr.NotFound, "no such resource"))
				return
			}
			// A redirect to the cleaned path: the mux's own.
		}
		// ServeHTTP again finds the same handler and sets r.Pattern and
		// r.PathValue for it.
		mux.ServeHTTP(sw, r)
	})
}

// healthz answers 200 while the process serves HTTP (liveness).
func (s *Service) healthz(w http.ResponseWriter, _ *http.Request) {
	writeStatus(w, http.StatusOK, `{"status":"alive"}`)
}

// readyTimeout bounds the store check of /readyz.
const readyTimeout = 2 * time.Second

// readyz answers 200 when the store answers (storage.Pinger, if the
// backend implements it) and the component's stream to the XMPP server is
// up; otherwise 503 temporarily_unavailable naming what is down.
func (s *Service) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.Ready(r.Context()); err != nil {
		httperr.Write(w, &httperr.Error{Code: httperr.Unavailable, Description: err.Error(), RetryAfter: time.Second})
		return
	}
	writeStatus(w, http.StatusOK, `{"status":"ready"}`)
}

func writeStatus(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body + "\n"))
}

// ErrNotReady: the service cannot serve now (Ready's errors wrap it).
var ErrNotReady = errors.New("not ready")

// Ready reports whether the service can serve: the store answers within a
// few seconds (if its backend implements storage.Pinger) and the component
// has its stream to the XMPP server. Errors wrap ErrNotReady and say what is
// down (never the store's error text, which is logged).
func (s *Service) Ready(ctx context.Context) error {
	if p, ok := s.deps.Store.(storage.Pinger); ok {
		ctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			s.log.Warn("readiness: the store does not answer", "err", err)
			return fmt.Errorf("%w: the store does not answer", ErrNotReady)
		}
	}
	select {
	case <-s.Component.Connected():
	default:
		return fmt.Errorf("%w: the XMPP component is not connected to the server", ErrNotReady)
	}
	return nil
}
