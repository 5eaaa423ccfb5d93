// Package metrics holds saslcert's Prometheus metrics (client_golang) in one
// registry per service: logins (lookups) by outcome with their latency,
// XEP-0257 uploads and refusals by reason, revocations, the component's link
// to the XMPP server, the store's size, HTTP requests by route and status,
// OAuth token grants and failures. The parts that own each event report it
// through small observer interfaces defined next to them
// (component.Observer, xep0257.UploadObserver, server.HTTPObserver, Tokens
// here for oauth) or are read when Prometheus scrapes (ObserveLink,
// ObserveStore); *Metrics implements all of them and nothing is global.
// Handler serves the registry on /metrics.
//
// docs/OPERATIONS.md lists every metric with its meaning.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "saslcert"

// Metrics is one service's metrics. Use New; a nil *Metrics is valid and
// records nothing. Its methods are safe for concurrent use and quick.
type Metrics struct {
	reg *prometheus.Registry

	lookups       *prometheus.CounterVec
	lookupSeconds prometheus.Histogram
	uploads       *prometheus.CounterVec
	revocations   *prometheus.CounterVec
	httpRequests  *prometheus.CounterVec
	httpSeconds   *prometheus.HistogramVec
	tokens        *prometheus.CounterVec
	tokenFailures *prometheus.CounterVec
}

// latencyBuckets suit answers that take from a millisecond (a cached
// lookup) to seconds (a CA round trip).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns the metrics of one service in a new registry, with the Go
// runtime's and the process's collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{reg: reg}
	m.lookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "lookups_total",
		Help: "SASL EXTERNAL login lookups answered, by outcome (granted, a SASL condition, certificate-needed, undecided, overloaded).",
	}, []string{"outcome"})
	m.lookupSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "lookup_duration_seconds",
		Help: "Time from reading a login lookup to its answer.", Buckets: latencyBuckets,
	})
	m.uploads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "uploads_total",
		Help: "XEP-0257 certificate uploads (<append/>), by result (accepted, refused, failed) and reason.",
	}, []string{"result", "reason"})
	m.revocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "revocations_total",
		Help: "Certificate records revoked, by kind of change and by who asked (xmpp, api, cli, server, other).",
	}, []string{"kind", "by"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "http_requests_total",
		Help: "HTTP requests answered on the HTTP listener, by route pattern and status code.",
	}, []string{"route", "code"})
	m.httpSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "http_request_duration_seconds",
		Help: "Time to answer an HTTP request, by route pattern.", Buckets: latencyBuckets,
	}, []string{"route"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "oauth_tokens_granted_total",
		Help: "OAuth2 access tokens granted, by grant type and client authentication method.",
	}, []string{"grant_type", "client_auth"})
	m.tokenFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "oauth_token_failures_total",
		Help: "OAuth2 token requests refused, by grant type and error code.",
	}, []string{"grant_type", "error"})
	reg.MustRegister(m.lookups, m.lookupSeconds, m.uploads, m.revocations, m.httpRequests, m.httpSeconds, m.tokens, m.tokenFailures)
	return m
}

// Registry is the registry the metrics are in (to add collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Lookup counts one answered login lookup (component.Observer).
func (m *Metrics) Lookup(outcome string, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.lookups.WithLabelValues(outcome).Inc()
	m.lookupSeconds.Observe(elapsed.Seconds())
}

// Upload counts one XEP-0257 upload (xep0257.UploadObserver): result is
// "accepted", "refused" (the request or certificate was refused: reason
// says why) or "failed" (the store was unavailable or an internal error).
func (m *Metrics) Upload(result, reason string) {
	if m == nil {
		return
	}
	m.uploads.WithLabelValues(result, reason).Inc()
}

// Revoked counts n records revoked by one change of kind (a lifecycle.Kind)
// made by actor (an audit actor: a JID, "cli", "api:<client>", ...; only
// its class is a label).
func (m *Metrics) Revoked(kind, actor string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.revocations.WithLabelValues(kind, ActorClass(actor)).Add(float64(n))
}

// ActorClass is the label of an audit actor: "api" (api:<client>), "cli",
// "xmpp" (a user's JID), "server" (server:<domain> ...: the XMPP server's
// account events), "other".
func ActorClass(actor string) string {
	switch {
	case strings.HasPrefix(actor, "api:"):
		return "api"
	case strings.HasPrefix(actor, "server:"):
		return "server"
	case actor == "cli":
		return "cli"
	case strings.Contains(actor, "@"):
		return "xmpp"
	}
	return "other"
}

// HTTPRequest counts one answered HTTP request (server.HTTPObserver).
func (m *Metrics) HTTPRequest(route string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.httpSeconds.WithLabelValues(route).Observe(elapsed.Seconds())
}

// Tokens is what the OAuth2 token endpoint reports; *Metrics implements it.
// Labels must come from small fixed sets (never a client id).
type Tokens interface {
	// TokenGranted: an access token was issued for grantType
	// ("client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer")
	// to a client authenticated by clientAuth ("client_secret_basic",
	// "client_secret_post", "private_key_jwt", "jwt-bearer").
	TokenGranted(grantType, clientAuth string)
	// TokenRefused: a token request was answered with the OAuth error
	// code (httperr's: invalid_client, invalid_grant, ...).
	TokenRefused(grantType, code string)
}

var _ Tokens = (*Metrics)(nil)

// TokenGranted implements Tokens.
func (m *Metrics) TokenGranted(grantType, clientAuth string) {
	if m == nil {
		return
	}
	m.tokens.WithLabelValues(grantType, clientAuth).Inc()
}

// TokenRefused implements Tokens.
func (m *Metrics) TokenRefused(grantType, code string) {
	if m == nil {
		return
	}
	m.tokenFailures.WithLabelValues(grantType, code).Inc()
}
