package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/saslcert/saslcert/storage"
)

// Link is the component's link to the XMPP server as the metrics read it
// (*component.Component implements it).
type Link interface {
	// Connected is closed while the link is up.
	Connected() <-chan struct{}
	// Connects counts completed handshakes.
	Connects() uint64
}

// ObserveLink adds saslcert_component_link_up (1 while the component has
// its stream to the server) and saslcert_component_reconnects_total
// (handshakes after the first), read from l at every scrape. Call it once.
func (m *Metrics) ObserveLink(l Link) {
	if m == nil || l == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "component_link_up",
		Help: "1 while the component has its authenticated XEP-0114 stream to the XMPP server, else 0.",
	}, func() float64 {
		select {
		case <-l.Connected():
			return 1
		default:
			return 0
		}
	}))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: Namespace, Name: "component_reconnects_total",
		Help: "Handshakes with the XMPP server after the first one (each is a reconnect after the stream ended).",
	}, func() float64 {
		if n := l.Connects(); n > 1 {
			return float64(n - 1)
		}
		return 0
	}))
}

// StoreRefresh is how long the store's counts are reused between scrapes:
// counting may read every record.
const StoreRefresh = time.Minute

// storeTimeout bounds one count.
const storeTimeout = 5 * time.Second

// ObserveStore adds the store's size, read from c at most every
// StoreRefresh (now is the clock): saslcert_store_certificates{state} and
// saslcert_store_tombstones; saslcert_store_count_errors_total counts
// failed counts (the previous values are kept then). Call it once.
func (m *Metrics) ObserveStore(c storage.Counter, now func() time.Time) {
	if m == nil || c == nil {
		return
	}
	if now == nil {
		now = time.Now
	}
	m.reg.MustRegister(&storeCollector{c: c, now: now,
		certs: prometheus.NewDesc(Namespace+"_store_certificates", "Certificate records in the store, by state.", []string{"state"}, nil),
		tombs: prometheus.NewDesc(Namespace+"_store_tombstones", "Deleted accounts whose tombstone the store keeps.", nil, nil),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "store_count_errors_total",
			Help: "Failed counts of the store's records for the size metrics."}),
	})
}

// storeCollector reports the store's counts, cached for StoreRefresh.
type storeCollector struct {
	c            storage.Counter
	now          func() time.Time
	certs, tombs *prometheus.Desc
	errs         prometheus.Counter

	mu     sync.Mutex
	at     time.Time
	counts storage.Counts
	ok     bool
}

func (s *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.certs
	ch <- s.tombs
	s.errs.Describe(ch)
}

func (s *storeCollector) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.now(); !s.ok || t.Sub(s.at) >= StoreRefresh || t.Before(s.at) {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		counts, err := s.c.CountCerts(ctx)
		cancel()
		if err != nil {
			s.errs.Inc()
		} else {
			s.counts, s.ok, s.at = counts, true, t
		}
	}
	s.errs.Collect(ch)
	if !s.ok {
		return
	}
	for _, st := range []storage.State{storage.StateActive, storage.StateDisabled, storage.StateRevoked} {
		ch <- prometheus.MustNewConstMetric(s.certs, prometheus.GaugeValue, float64(s.counts.Certs[st]), string(st))
	}
	ch <- prometheus.MustNewConstMetric(s.tombs, prometheus.GaugeValue, float64(s.counts.Tombstones))
}
