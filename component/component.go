package component

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/enrollcmd"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// certService is the part of *xep0257.Handler the component uses. MayManage
// is the one decision on management rights, for XEP-0257 (inside Process)
// and enrollment alike.
type certService interface {
	Process(ctx context.Context, from jid.JID, auth xep0257.Auth, req xep0257.Request) (xml.TokenReader, error)
	MayManage(ctx context.Context, from jid.JID, auth xep0257.Auth) error
}

// authService is the part of *sasl.Authorizer the component uses.
type authService interface {
	Authorize(ctx context.Context, req sasl.Request) (sasl.Grant, error)
}

// certFinder looks certificates up for the revocation sweep after a connect.
type certFinder interface {
	FindCertByFingerprint(ctx context.Context, fp storage.Fingerprint) (*storage.Cert, error)
}

// Component is the saslcert XEP-0114 component: it keeps a connection to the
// XMPP server, serves XEP-0257 requests (delegated by the server or addressed
// to the component), answers the server plugin's SASL EXTERNAL lookups and
// session notices, and tells the plugin about revocations.
type Component struct {
	cfg     Config
	domains map[string]jid.JID // served domains by domainpart
	primary jid.JID            // the first served domain: pinged
	log     *slog.Logger

	certs certService
	auth  authService
	store certFinder // nil: no revocation sweep after connect
	// accounts revokes the certificates of deleted accounts (nil: no store).
	accounts storage.Store
	deleting sync.Map // bare JID -> struct{}: accounts whose certificates are being revoked
	inflight inflight // numbers dispatched requests (accounts.go)
	decode   func(typ stanza.IQType, start xml.StartElement, r xml.TokenReader) (xep0257.Request, error)
	reg      *Registry
	order    boundOrder         // which sessions bound before a change reached the plugin (boundorder.go)
	jitter   func() float64     // in [0, 1)
	enroll   Enrollment         // nil: no ad-hoc commands, no renewal
	commands *enrollcmd.Handler // the ad-hoc commands (commands.go), with enroll

	work      tracker
	drainOnce sync.Once
	running   atomic.Bool

	mu        sync.Mutex
	cur       *link         // the live link, nil while disconnected
	connected chan struct{} // closed while cur != nil
	connects  uint64
}

// New returns a component serving certs and auth. It does not change certs:
// the caller wires certs.Sessions to the component's registry (Sessions) so
// that <items/> lists live sessions, and runs the component's notices
// (NotifyChanged, NotifyRevoked) after every committed change — package
// server does both through the life-cycle owner (lifecycle.Manager), which
// certs.Store should be. Management rights come from each request's auth
// stamp (stamp.go), never from the registry. Wire it before calling Run and
// do not change certs afterwards.
func New(cfg Config, certs *xep0257.Handler, auth *sasl.Authorizer) (*Component, error) {
	if certs == nil {
		return nil, errors.New("component: nil *xep0257.Handler")
	}
	if auth == nil {
		return nil, errors.New("component: nil *sasl.Authorizer")
	}
	c, err := newComponent(cfg, certs, auth)
	if err != nil {
		return nil, err
	}
	if certs.Store != nil {
		c.store = certs.Store
		c.accounts = certs.Store
	}
	c.decode = certs.Limits.Decode
	return c, nil
}

func newComponent(cfg Config, certs certService, auth authService) (*Component, error) {
	cfg, domains, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Component{
		cfg:       cfg,
		domains:   domains,
		log:       cfg.Logger,
		certs:     certs,
		auth:      auth,
		decode:    xep0257.Decode,
		reg:       NewRegistry(),
		jitter:    rand.Float64,
		connected: make(chan struct{}),
	}
	c.primary, _ = jid.Parse(cfg.ServerDomains[0]) // validated by withDefaults
	c.work.max = cfg.MaxInFlight
	return c, nil
}

// Sessions returns the registry of live certificate sessions (an
// xep0257.Sessions).
func (c *Component) Sessions() *Registry { return c.reg }

// Connected returns a channel that is closed while the component has an
// authenticated stream to the server; while it is disconnected, the channel
// returned is closed at the next successful connect.
func (c *Component) Connected() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// Connects returns how many times the component has completed the handshake
// with the server since Run started.
func (c *Component) Connects() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connects
}

// InFlight returns how many requests read from the server are being
// processed or answered.
func (c *Component) InFlight() int { return c.work.count() }

func (c *Component) current() *link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

func (c *Component) setCurrent(l *link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case l != nil && c.cur == nil:
		c.connects++
		close(c.connected)
	case l == nil && c.cur != nil:
		c.connected = make(chan struct{})
	}
	c.cur = l
}

// served returns the configured server domain j is, if j is exactly a bare
// served domain.
func (c *Component) served(j jid.JID) (jid.JID, bool) {
	if j.Localpart() != "" || j.Resourcepart() != "" {
		return jid.JID{}, false
	}
	d, ok := c.domains[j.Domainpart()]
	return d, ok
}

// Run connects to the server and serves until ctx is cancelled, reconnecting
// with capped exponential backoff and jitter whenever the stream ends (the
// backoff starts again from Config.MinBackoff after a session that lasted more
// than a minute). When ctx is cancelled it stops taking new requests (they get
// wait/resource-constraint), waits up to Config.RequestTimeout for the ones in
// flight, closes the stream and the connection and returns nil. Run may be
// called once.
func (c *Component) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("component: Run called more than once")
	}
	// Requests keep running on workCtx while ctx is being shut down; it is
	// cancelled only when the drain takes too long.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	c.log.Info("component starting", "addr", c.cfg.Addr, "jid", c.cfg.JID.String(), "domains", c.cfg.ServerDomains)
	attempt := 0
	for {
		if ctx.Err() != nil {
			break
		}
		began, err := c.runOnce(ctx, workCtx, cancelWork)
		if ctx.Err() != nil {
			break
		}
		if !began.IsZero() && c.cfg.Now().Sub(began) > time.Minute {
			attempt = 0
		}
		delay := backoff(c.cfg.MinBackoff, c.cfg.MaxBackoff, attempt, c.jitter)
		attempt++
		if began.IsZero() {
			c.log.Warn("cannot connect to the server", "addr", c.cfg.Addr, "err", err, "retry_in", delay)
		} else {
			c.log.Warn("stream to the server ended", "addr", c.cfg.Addr, "err", err, "reconnect_in", delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	// Requests still running (from a link that died just before ctx was
	// cancelled) get the same bounded grace.
	c.drain(cancelWork)
	c.log.Info("component stopped")
	return nil
}

// backoff returns the delay before attempt (0-based): min·2^attempt capped at
// max, of which the upper half is random ("equal jitter").
func backoff(minD, maxD time.Duration, attempt int, jitter func() float64) time.Duration {
	d := maxD
	if attempt < 32 {
		if e := minD << attempt; e > 0 && e < maxD {
			d = e
		}
	}
	return d/2 + time.Duration(jitter()*float64(d-d/2))
}

// runOnce dials, negotiates and serves one stream. began is when the stream
// became ready (zero if it never did). It returns when the stream ends, or
// after a graceful shutdown when ctx is cancelled.
func (c *Component) runOnce(ctx, workCtx context.Context, cancelWork context.CancelFunc) (began time.Time, err error) {
	d := net.Dialer{Timeout: c.cfg.RequestTimeout, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3,
	}}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return began, err
	}
	// The handshake is bounded by our own deadline rather than by a context
	// handed to mellium: mellium resets the deadline from a goroutine when
	// its context ends, which can race with later reads.
	_ = conn.SetDeadline(time.Now().Add(c.cfg.RequestTimeout))
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	sess, err := component.NewSession(context.Background(), c.cfg.JID, c.cfg.Secret, conn)
	if !stop() {
		conn.Close()
		return began, ctx.Err()
	}
	if err != nil {
		conn.Close()
		return began, fmt.Errorf("handshake: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	began = c.cfg.Now()

	l := newLink(c, sess, conn, workCtx)
	// Current before serving, so that the first replies find their link.
	c.setCurrent(l)
	served := make(chan error, 1)
	// guard, not the mux, so that no stanza can end the stream.
	go func() { served <- sess.Serve(guard{l: l, next: l.mux}) }()
	c.log.Info("connected to the server", "addr", c.cfg.Addr, "jid", c.cfg.JID.String())
	l.start()

	select {
	case err = <-served:
		c.setCurrent(nil)
		l.end()
		return began, err
	case <-ctx.Done():
	}
	c.log.Info("shutting down: finishing requests in flight")
	c.drain(cancelWork)
	c.setCurrent(nil)
	l.closeStream(served)
	l.end()
	return began, nil
}

// drain stops new requests and waits for the ones in flight: up to
// RequestTimeout, then cancels them and waits one more second. Only the first
// call does anything.
func (c *Component) drain(cancelWork context.CancelFunc) {
	c.drainOnce.Do(func() { c.drainNow(cancelWork) })
}

func (c *Component) drainNow(cancelWork context.CancelFunc) {
	idle := c.work.close()
	t := time.NewTimer(c.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case <-idle:
		return
	case <-t.C:
	}
	c.log.Warn("requests still running after the shutdown grace period; cancelling them", "in_flight", c.work.count())
	cancelWork()
	t.Reset(time.Second)
	select {
	case <-idle:
	case <-t.C:
	}
}

// tracker bounds and counts requests in flight and refuses new ones once
// closed. A request holds a processing slot (bounded by max) until its work
// is done, and stays counted (for the drain) until its reply is written, so
// that a client that got its answer never finds the slot still taken.
type tracker struct {
	mu      sync.Mutex
	max     int
	working int // requests holding a slot
	n       int // requests not yet answered
	closed  bool
	idle    chan struct{} // made by close, closed when n reaches 0
}

// errBusy and errDraining say why tracker.acquire refused.
var (
	errBusy     = errors.New("too many requests in flight")
	errDraining = errors.New("shutting down")
)

func (t *tracker) acquire() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return errDraining
	case t.working >= t.max:
		return errBusy
	}
	t.working++
	t.n++
	return nil
}

// worked gives the processing slot back.
func (t *tracker) worked() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.working--
}

// release ends the request.
func (t *tracker) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.closed && t.n == 0 {
		close(t.idle)
	}
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// close refuses new requests from now on and returns a channel closed once
// none are in flight.
func (t *tracker) close() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		t.idle = make(chan struct{})
		if t.n == 0 {
			close(t.idle)
		}
	}
	return t.idle
}
