package metrics_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/metrics"
	"github.com/saslcert/saslcert/server"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
)

func TestActorClass(t *testing.T) {
	tests := []struct{ actor, want string }{
		{"api:hr", "api"},
		{"cli", "cli"},
		{"alice@example.org/laptop", "xmpp"},
		{"alice@example.org", "xmpp"},
		{"server:example.org (account deleted)", "server"},
		{"enroll", "other"},
		{"", "other"},
		{"api", "other"},
	}
	for _, tc := range tests {
		t.Run(tc.actor, func(t *testing.T) {
			if got := metrics.ActorClass(tc.actor); got != tc.want {
				t.Errorf("ActorClass(%q) = %q, want %q", tc.actor, got, tc.want)
			}
		})
	}
}

// A nil *Metrics records nothing and does not panic (parts built without
// metrics).
func TestNil(t *testing.T) {
	var m *metrics.Metrics
	m.Lookup("granted", time.Millisecond)
	m.Upload("accepted", "")
	m.Revoked("revoked", "cli", 1)
	m.HTTPRequest("GET /healthz", 200, time.Millisecond)
	m.TokenGranted("client_credentials", "private_key_jwt")
	m.TokenRefused("client_credentials", "invalid_client")
	m.ObserveLink(nil)
	m.ObserveStore(nil, nil)
}

// scrape fetches url and returns the exposition text.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// value returns the value of the series (name with its labels, as
// exposed) in text, and whether it is there.
func value(text, series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The store's size is read from a real SQLite store, reused for
// StoreRefresh, then read again.
func TestStoreSize(t *testing.T) {
	db := sqlitetest.Open(t, sqlite.Options{})
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	m := metrics.New()
	m.ObserveStore(db, clk.now)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	add := func(account, name string) {
		c := certtest.New(t, certtest.Options{XMPPAddrs: []string{account}})
		rec := &storage.Cert{Account: account, Name: name, DER: c.DER, Fingerprint: storage.FingerprintOf(c.DER),
			NotBefore: c.Cert.NotBefore, NotAfter: c.Cert.NotAfter, Issuer: c.Cert.Issuer.String(), Source: storage.SourceUpload}
		if err := db.AddCert(t.Context(), rec, storage.AddOptions{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	add("alice@example.org", "a")
	steps := []struct {
		name   string
		before func()
		active float64
	}{
		{"first scrape counts", nil, 1},
		{"within StoreRefresh: the cached count", func() { add("bob@example.org", "b") }, 1},
		{"after StoreRefresh: counted again", func() { clk.add(metrics.StoreRefresh) }, 2},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		text := scrape(t, srv.URL)
		if v, ok := value(text, `saslcert_store_certificates{state="active"}`); !ok || v != s.active {
			t.Errorf("%s: active = %v (present %v), want %v", s.name, v, ok, s.active)
		}
		if v, ok := value(text, `saslcert_store_tombstones`); !ok || v != 0 {
			t.Errorf("%s: tombstones = %v (present %v), want 0", s.name, v, ok)
		}
	}
	// A store that fails: the error is counted, the last counts stay.
	db.Close()
	clk.add(metrics.StoreRefresh)
	text := scrape(t, srv.URL)
	if v, _ := value(text, "saslcert_store_count_errors_total"); v != 1 {
		t.Errorf("count errors = %v, want 1", v)
	}
	if v, _ := value(text, `saslcert_store_certificates{state="active"}`); v != 2 {
		t.Errorf("after a failed count: active = %v, want the last count 2", v)
	}
}

// TestScrapeStack drives a real Prosody stack (logins, uploads, a
// revocation, a Prosody restart) and reads the metrics listener over
// loopback after each step.
func TestScrapeStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prosody (-short)")
	}
	var svc *server.Service
	st := stacktest.Start(t, stacktest.Options{
		HTTP:      server.HTTPConfig{MetricsListen: "127.0.0.1:0"},
		BeforeRun: func(s *server.Service) { svc = s },
	})
	url := "http://" + svc.MetricsAddr().String() + "/metrics"
	st.Register(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	pw, err := st.RawLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	alice := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"alice@" + st.Domain}})
	bobs := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"bob@" + st.Domain}})
	appendIQ := func(name string, c *certtest.Cert) string {
		n, err := pw.IQ("set", "", "<append xmlns='urn:xmpp:saslcert:1'><name>"+name+"</name><x509cert>"+
			base64.StdEncoding.EncodeToString(c.DER)+"</x509cert></append>")
		if err != nil {
			t.Fatal(err)
		}
		return n.Outcome()
	}
	if got := appendIQ("laptop", alice); got != "result" {
		t.Fatalf("append: %s", got)
	}
	if got := appendIQ("bobs", bobs); !strings.HasPrefix(got, "error modify/not-acceptable") {
		t.Fatalf("append of bob's certificate: %s", got)
	}
	if got := appendIQ("laptop", alice); !strings.HasPrefix(got, "error cancel/conflict") {
		t.Fatalf("append again: %s", got)
	}
	ext, err := st.RawLoginCert(ctx, alice, "")
	if err != nil {
		t.Fatalf("EXTERNAL login: %v", err)
	}
	ext.Close()
	if c, err := st.RawLoginCert(ctx, bobs, ""); err == nil {
		c.Close()
		t.Fatal("bob's unstored certificate logged in")
	}
	n, err := pw.IQ("set", "", "<revoke xmlns='urn:xmpp:saslcert:1'><name>laptop</name></revoke>")
	if err != nil || n.Outcome() != "result" {
		t.Fatalf("revoke: %v %v", n, err)
	}
	if c, err := st.RawLoginCert(ctx, alice, ""); err == nil {
		c.Close()
		t.Fatal("the revoked certificate logged in")
	}

	text := scrape(t, url)
	want := []struct {
		series string
		min    float64 // at least (lookups may be repeated by the plugin's prefetch)
		exact  bool
	}{
		{`saslcert_component_link_up`, 1, true},
		{`saslcert_component_reconnects_total`, 0, true},
		{`saslcert_uploads_total{reason="",result="accepted"}`, 1, true},
		{`saslcert_uploads_total{reason="wrong-account",result="refused"}`, 1, true},
		{`saslcert_uploads_total{reason="duplicate",result="refused"}`, 1, true},
		{`saslcert_lookups_total{outcome="granted"}`, 1, false},
		// bob's unstored certificate and alice's revoked one.
		{`saslcert_lookups_total{outcome="not-authorized"}`, 2, false},
		{`saslcert_revocations_total{by="xmpp",kind="revoked"}`, 1, true},
		{`saslcert_store_certificates{state="revoked"}`, 1, true},
		{`saslcert_store_certificates{state="active"}`, 0, true},
		{`saslcert_lookup_duration_seconds_count`, 2, false},
	}
	for _, w := range want {
		v, ok := value(text, w.series)
		if !ok || v < w.min || (w.exact && v != w.min) {
			t.Errorf("%s = %v (present %v), want %v (exact %v)", w.series, v, ok, w.min, w.exact)
		}
	}
	if t.Failed() {
		t.Logf("lookups:\n%s", grep(text, "saslcert_lookups_total"))
	}

	// The link goes down with Prosody and comes back: one reconnect.
	if err := st.RestartProsody(t); err != nil {
		t.Fatal(err)
	}
	text = scrape(t, url)
	if v, _ := value(text, "saslcert_component_reconnects_total"); v != 1 {
		t.Errorf("reconnects after a Prosody restart = %v, want 1", v)
	}
	if v, _ := value(text, "saslcert_component_link_up"); v != 1 {
		t.Errorf("link up after the reconnect = %v, want 1", v)
	}
}

// grep returns the lines of text that contain s.
func grep(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Every metric follows Prometheus' naming conventions (promlint), with
// every labelled series present once.
func TestLint(t *testing.T) {
	m := metrics.New()
	m.Lookup("granted", time.Millisecond)
	m.Upload("accepted", "")
	m.Revoked("revoked", "cli", 1)
	m.HTTPRequest("GET /healthz", 200, time.Millisecond)
	m.TokenGranted("client_credentials", "private_key_jwt")
	m.TokenRefused("client_credentials", "invalid_client")
	m.ObserveStore(sqlitetest.Open(t, sqlite.Options{}), nil)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	problems, err := promlint.New(strings.NewReader(scrape(t, srv.URL))).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
