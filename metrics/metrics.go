// Package metrics holds saslcert's Prometheus metrics (client_golang) in one
// registry per service: logins (lookups) by outcome with their latency,
// XEP-0257 uploads and refusals by reason, revocations, the component's link
// to the XMPP server, the store's size, HTTP requests by route and status,
// OAuth token grants and failures. The parts that own each event report it
// through small observer interfaces defined next to them (sasl, xep0257,
// lifecycle, component, server, oauth); *Metrics implements all of them, so
// no part imports this package except the one that assembles the service,
// and nothing is global. Handler serves the registry on /metrics.
//
// docs/OPERATIONS.md lists every metric with its meaning.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "saslcert"

// Metrics is one service's metrics. The zero value is not usable; use New.
// A nil *Metrics is valid and records nothing.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
}

// New returns the metrics of one service in a new registry, with the Go
// runtime's and the process's collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{reg: reg}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "http_requests_total",
		Help: "HTTP requests answered on the HTTP listener, by route pattern and status code.",
	}, []string{"route", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route pattern.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route"})
	reg.MustRegister(m.httpRequests, m.httpDuration)
	return m
}

// Registry is the registry the metrics are in (to add collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// HTTPRequest counts one answered HTTP request (server.HTTPObserver).
func (m *Metrics) HTTPRequest(route string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(elapsed.Seconds())
}
