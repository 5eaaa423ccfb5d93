package component

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/sasl"
)

// Defaults for the zero fields of Config.
const (
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxInFlight    = 1024
	DefaultPingInterval   = 60 * time.Second
	DefaultMinBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultReconcile      = 10 * time.Minute
)

// Config says where the component connects and how it behaves. Zero
// durations and counts take the defaults above.
type Config struct {
	// Addr is the server's component port, e.g. "127.0.0.1:5347".
	Addr string
	// JID is the component's domain, e.g. certs.example.org.
	JID jid.JID
	// Secret is the XEP-0114 shared secret. It is never logged.
	Secret []byte
	// ServerDomains are the XMPP domains (virtual hosts) this component
	// serves, e.g. example.org. They are the only senders of plugin IQs and
	// delegation wrappers, and the only account domains accepted.
	ServerDomains []string
	// RequestTimeout bounds each request (a store call, a plugin round trip,
	// a write, the handshake and a ping). Default 10 s.
	RequestTimeout time.Duration
	// MaxInFlight is how many requests may be processed at once; more get
	// wait/resource-constraint at once. Default 1024: a burst of lookups after
	// the link stalled (Prosody holds them until saslcert_timeout) must not be
	// refused; each one costs a goroutine and a few microseconds.
	MaxInFlight int
	// PingInterval is how often the server is pinged to detect a dead link.
	// Default 60 s.
	PingInterval time.Duration
	// MinBackoff and MaxBackoff bound the delay between reconnection
	// attempts (capped exponential with jitter). Defaults 500 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// ReconcileInterval is how often, besides after every connect, the
	// component asks the server plugin which accounts with certificates (or
	// tombstones) still exist, to revoke the certificates of accounts
	// deleted behind its back (prosodyctl deluser) and lift the tombstones
	// of names registered again. Default 10 min.
	ReconcileInterval time.Duration
	// CacheTTL, if positive, lets the server plugin remember the component's
	// answers for that long (whole seconds): positive SASL EXTERNAL lookups of
	// stored certificates (never beyond the certificate's notAfter, never
	// trusted-roots grants) and XEP-0257 <items/> lists. The component
	// announces it in the <sessions/> query it sends after each connect; the
	// plugin forgets everything when that connection ends and forgets an
	// account whenever the component sends <changed/> or <revoked/> for it.
	// Set it only if every writer of the store reports its changes through
	// NotifyChanged (lifecycle.Effects.Changed; package server wires it)
	// before they are acknowledged; a change made behind the component's back is seen by
	// the plugin only after CacheTTL. Zero (the default): nothing is cached.
	CacheTTL time.Duration
	// Logger receives connection events (Info), failures (Warn/Error) and
	// per-stanza detail (Debug). Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Observer, if set, is told about lookups (metrics).
	Observer Observer
}

// withDefaults validates c and returns a copy with defaults filled in and the
// server domains parsed.
func (c Config) withDefaults() (Config, map[string]jid.JID, error) {
	if c.Addr == "" {
		return c, nil, errors.New("component: Config.Addr is empty (want the server's component port, e.g. 127.0.0.1:5347)")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return c, nil, fmt.Errorf("component: Config.Addr %q is not host:port: %w", c.Addr, err)
	}
	if c.JID.Equal(jid.JID{}) {
		return c, nil, errors.New("component: Config.JID is empty (want the component's domain, e.g. certs.example.org)")
	}
	if c.JID.Localpart() != "" || c.JID.Resourcepart() != "" {
		return c, nil, fmt.Errorf("component: Config.JID %q must be a bare domain (no localpart, no resource)", c.JID)
	}
	if len(c.Secret) == 0 {
		return c, nil, errors.New("component: Config.Secret is empty")
	}
	if len(c.ServerDomains) == 0 {
		return c, nil, errors.New("component: Config.ServerDomains is empty (want at least one served domain, e.g. example.org)")
	}
	domains := make(map[string]jid.JID, len(c.ServerDomains))
	for _, d := range c.ServerDomains {
		j, err := sasl.ParseJID(d)
		if err != nil {
			return c, nil, fmt.Errorf("component: Config.ServerDomains: %q is not a valid domain: %w", d, err)
		}
		if j.Localpart() != "" || j.Resourcepart() != "" {
			return c, nil, fmt.Errorf("component: Config.ServerDomains: %q must be a bare domain (no localpart, no resource)", d)
		}
		if j.Equal(c.JID) {
			return c, nil, fmt.Errorf("component: Config.ServerDomains: %q is the component's own JID", d)
		}
		if _, dup := domains[j.Domainpart()]; dup {
			return c, nil, fmt.Errorf("component: Config.ServerDomains: %q is listed twice", d)
		}
		domains[j.Domainpart()] = j
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"RequestTimeout", &c.RequestTimeout, DefaultRequestTimeout},
		{"PingInterval", &c.PingInterval, DefaultPingInterval},
		{"MinBackoff", &c.MinBackoff, DefaultMinBackoff},
		{"MaxBackoff", &c.MaxBackoff, DefaultMaxBackoff},
		{"ReconcileInterval", &c.ReconcileInterval, DefaultReconcile},
	} {
		if *f.v < 0 {
			return c, nil, fmt.Errorf("component: Config.%s is negative (%v)", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.MinBackoff > c.MaxBackoff {
		return c, nil, fmt.Errorf("component: Config.MinBackoff (%v) is larger than Config.MaxBackoff (%v)", c.MinBackoff, c.MaxBackoff)
	}
	if c.MaxInFlight < 0 {
		return c, nil, fmt.Errorf("component: Config.MaxInFlight is negative (%d)", c.MaxInFlight)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Secret = append([]byte(nil), c.Secret...)
	c.ServerDomains = append([]string(nil), c.ServerDomains...)
	return c, domains, nil
}
