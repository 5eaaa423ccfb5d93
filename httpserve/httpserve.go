// Package httpserve runs saslcert's HTTP listeners (the embedded CA's CRL,
// and every HTTP listener added later) with the same protections: server
// timeouts for every phase of a connection and a cap on open connections, so
// that idle keep-alive or slow clients cannot hold sockets, goroutines and
// file descriptors without bound.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Limits bound what one client connection may hold.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing the response (from the end of the
	// request's headers).
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request before the server closes it.
	IdleTimeout time.Duration
	// MaxConns is the number of connections served at once; more wait in
	// the kernel's accept queue until one closes.
	MaxConns int
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int
}

// DefaultLimits are the limits of saslcert's listeners: they serve small
// documents (a CRL) to a few local servers.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxConns:          64,
		MaxHeaderBytes:    16 << 10,
	}
}

// ErrLimits: a limit is zero or negative.
var ErrLimits = errors.New("httpserve: every limit must be positive")

// Check reports whether every limit is positive (errors wrap ErrLimits).
func (l Limits) Check() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ReadHeaderTimeout", l.ReadHeaderTimeout}, {"ReadTimeout", l.ReadTimeout}, {"WriteTimeout", l.WriteTimeout}, {"IdleTimeout", l.IdleTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("%w: %s is %v", ErrLimits, d.name, d.v)
		}
	}
	if l.MaxConns <= 0 || l.MaxHeaderBytes <= 0 {
		return fmt.Errorf("%w: MaxConns %d, MaxHeaderBytes %d", ErrLimits, l.MaxConns, l.MaxHeaderBytes)
	}
	return nil
}

// Server is a running HTTP listener.
type Server struct {
	srv  *http.Server
	done chan struct{}
	addr net.Addr
}

// Start serves h on ln with the limits l until Stop; ln is wrapped so that at
// most l.MaxConns connections are open at once. Errors: ErrLimits (ln is
// closed then).
func Start(ln net.Listener, h http.Handler, l Limits, log *slog.Logger) (*Server, error) {
	if err := l.Check(); err != nil {
		ln.Close()
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: l.ReadHeaderTimeout,
			ReadTimeout:       l.ReadTimeout,
			WriteTimeout:      l.WriteTimeout,
			IdleTimeout:       l.IdleTimeout,
			MaxHeaderBytes:    l.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		done: make(chan struct{}),
		addr: ln.Addr(),
	}
	limited := netutil.LimitListener(ln, l.MaxConns)
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(limited); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("HTTP listener stopped", "addr", s.addr.String(), "err", err)
		}
	}()
	return s, nil
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.addr }

// Stop stops accepting, waits up to grace for requests under way, then closes
// every connection and returns once the server has stopped.
func (s *Server) Stop(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}

// IsLoopback reports whether host (an address's host part, no port) names
// the loopback interface: "localhost" or a loopback IP (127.0.0.0/8, ::1).
// An empty host (every interface) is not loopback.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
