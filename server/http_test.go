package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/server"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
)

func TestCheckHTTP(t *testing.T) {
	tests := []struct {
		name string
		cfg  server.HTTPConfig
		want error  // errors.Is target, nil: any error or none per msg
		msg  string // substring of the error; "" for no error
	}{
		{"off", server.HTTPConfig{}, nil, ""},
		{"metrics only", server.HTTPConfig{MetricsListen: "127.0.0.1:9257"}, nil, ""},
		{"loopback plain", server.HTTPConfig{Listen: "127.0.0.1:8080", PublicURL: "http://127.0.0.1:8080"}, nil, ""},
		{"localhost plain", server.HTTPConfig{Listen: "localhost:8080", PublicURL: "https://certs.example.org/"}, nil, ""},
		{"ipv6 loopback plain", server.HTTPConfig{Listen: "[::1]:8080", PublicURL: "https://certs.example.org"}, nil, ""},
		{"tls anywhere", server.HTTPConfig{Listen: ":8443", TLSCert: "c.pem", TLSKey: "k.pem", PublicURL: "https://certs.example.org"}, nil, ""},
		{"error/plain on every interface", server.HTTPConfig{Listen: ":8080", PublicURL: "https://certs.example.org"},
			server.ErrPlainHTTP, `--http-listen ":8080": plain HTTP is allowed on a loopback address only`},
		{"error/plain on a public address", server.HTTPConfig{Listen: "192.0.2.1:80", PublicURL: "https://certs.example.org"},
			server.ErrPlainHTTP, "set --http-tls-cert and --http-tls-key"},
		{"error/plain on 0.0.0.0", server.HTTPConfig{Listen: "0.0.0.0:80", PublicURL: "https://certs.example.org"}, server.ErrPlainHTTP, "loopback"},
		{"error/cert without key", server.HTTPConfig{Listen: ":8443", TLSCert: "c.pem", PublicURL: "https://certs.example.org"}, nil, "go together"},
		{"error/no public URL", server.HTTPConfig{Listen: "127.0.0.1:8080"}, server.ErrPublicURL, "required"},
		{"error/http public URL", server.HTTPConfig{Listen: "127.0.0.1:8080", PublicURL: "http://certs.example.org"}, server.ErrPublicURL, "use https"},
		{"error/relative public URL", server.HTTPConfig{Listen: "127.0.0.1:8080", PublicURL: "certs.example.org"}, server.ErrPublicURL, "absolute"},
		{"error/public URL with query", server.HTTPConfig{Listen: "127.0.0.1:8080", PublicURL: "https://certs.example.org/?a=b"}, server.ErrPublicURL, "no query"},
		{"error/public URL with fragment", server.HTTPConfig{Listen: "127.0.0.1:8080", PublicURL: "https://certs.example.org/#x"}, server.ErrPublicURL, "fragment"},
		{"error/public URL with user", server.HTTPConfig{Listen: "127.0.0.1:8080", PublicURL: "https://u:p@certs.example.org"}, server.ErrPublicURL, "user info"},
		{"error/listen without port", server.HTTPConfig{Listen: "127.0.0.1", PublicURL: "https://certs.example.org"}, nil, "want host:port"},
		{"error/bad metrics address", server.HTTPConfig{MetricsListen: "9257"}, nil, "--metrics-listen"},
		{"error/tls without listener", server.HTTPConfig{TLSCert: "c.pem", TLSKey: "k.pem"}, nil, "need --http-listen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := server.CheckHTTP(tc.cfg)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("CheckHTTP: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("CheckHTTP: %v, want an error containing %q", err, tc.msg)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("CheckHTTP: %v is not %v", err, tc.want)
			}
		})
	}
}

// listenLoopback returns a listener on a free loopback port.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// runHTTP runs a service with HTTP and metrics listeners on loopback (the
// component never connects: its server address refuses) and returns their
// base URLs.
func runHTTP(t *testing.T, cfg server.Config, routes ...server.Routes) (svc *server.Service, base, metricsBase string) {
	t.Helper()
	httpLn, metricsLn := listenLoopback(t), listenLoopback(t)
	cfg.HTTP.Listen = httpLn.Addr().String()
	cfg.HTTP.PublicURL = "http://" + httpLn.Addr().String()
	svc, err := server.New(cfg, server.Deps{Store: sqlitetest.Open(t, sqlite.Options{}), HTTPListener: httpLn, MetricsListener: metricsLn})
	if err != nil {
		t.Fatal(err)
	}
	svc.AddRoutes(routes...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		// Both listeners are closed once Run has returned.
		for _, a := range []string{httpLn.Addr().String(), metricsLn.Addr().String()} {
			if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
				c.Close()
				t.Errorf("%s still accepts after Run returned", a)
			}
		}
	})
	return svc, "http://" + httpLn.Addr().String(), "http://" + metricsLn.Addr().String()
}

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// errorCode reads httperr's shape and returns its code ("" if the body is
// not in that shape).
func errorCode(a answer) string {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if a.header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(a.body), &e) != nil {
		return ""
	}
	return e.Error
}

// The listener on real loopback sockets: health, readiness, httperr's shape
// for unknown paths, wrong methods, panics and oversized bodies, and the
// request metrics on the separate metrics listener.
func TestHTTPListener(t *testing.T) {
	cfg := config()
	cfg.HTTP.MaxBodyBytes = 1024
	extra := server.RoutesFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("GET /test/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
		mux.HandleFunc("POST /test/echo", func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				httperr.Write(w, httperr.New(httperr.PayloadTooLarge, "at most %d bytes", tooBig.Limit))
				return
			}
			_, _ = w.Write(b)
		})
	})
	svc, base, metricsBase := runHTTP(t, cfg, extra)
	if svc.PublicURL() != base || !slices.Equal(svc.Domains(), []string{"example.org"}) {
		t.Errorf("PublicURL %q, Domains %v", svc.PublicURL(), svc.Domains())
	}

	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		status   int
		code     string // httperr code, "" for a success body
		contains string
		allow    string
	}{
		{"healthz", "GET", "/healthz", "", 200, "", `"alive"`, ""},
		{"readyz without the XMPP link", "GET", "/readyz", "", 503, httperr.Unavailable, "not connected", ""},
		{"unknown path", "GET", "/nope", "", 404, httperr.NotFound, "no such resource", ""},
		{"method not allowed", "DELETE", "/healthz", "", 405, httperr.MethodNotAllowed, "DELETE is not allowed", "GET, HEAD"},
		{"panic", "GET", "/test/panic", "", 500, httperr.ServerError, "internal error", ""},
		{"body within the limit", "POST", "/test/echo", strings.Repeat("a", 1024), 200, "", "aaaa", ""},
		{"body over the limit", "POST", "/test/echo", strings.Repeat("a", 1025), 413, httperr.PayloadTooLarge, "at most 1024 bytes", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, tc.method, base+tc.path, strings.NewReader(tc.body))
			if a.status != tc.status {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, a.status, a.body, tc.status)
			}
			if got := errorCode(a); got != tc.code {
				t.Errorf("error code %q, want %q (body %s)", got, tc.code, a.body)
			}
			if !strings.Contains(a.body, tc.contains) {
				t.Errorf("body %q does not contain %q", a.body, tc.contains)
			}
			if tc.allow != "" && a.header.Get("Allow") != tc.allow {
				t.Errorf("Allow %q, want %q", a.header.Get("Allow"), tc.allow)
			}
		})
	}

	// A request line over MaxHeaderBytes is refused by net/http before any
	// handler runs.
	a := do(t, "GET", base+"/healthz?q="+strings.Repeat("x", 64<<10), nil)
	if a.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("huge query: %d, want 431", a.status)
	}

	// The metrics listener counts by route pattern and status; the
	// public listener does not serve /metrics.
	m := do(t, "GET", metricsBase+"/metrics", nil)
	for _, want := range []string{
		`saslcert_http_requests_total{code="200",route="GET /healthz"} 1`,
		`saslcert_http_requests_total{code="503",route="GET /readyz"} 1`,
		`saslcert_http_requests_total{code="404",route="unmatched"} 1`,
		`saslcert_http_requests_total{code="405",route="unmatched"} 1`,
		`saslcert_http_requests_total{code="500",route="GET /test/panic"} 1`,
		`saslcert_http_requests_total{code="413",route="POST /test/echo"} 1`,
	} {
		if !strings.Contains(m.body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if a := do(t, "GET", base+"/metrics", nil); a.status != 404 {
		t.Errorf("/metrics on the public listener: %d, want 404", a.status)
	}
	// Paths a caller chooses never become label values (bounded series).
	for i := range 20 {
		do(t, "GET", base+"/probe-"+strconv.Itoa(i), nil)
	}
	m = do(t, "GET", metricsBase+"/metrics", nil)
	if strings.Contains(m.body, "probe-") || !strings.Contains(m.body, `saslcert_http_requests_total{code="404",route="unmatched"} 22`) {
		t.Errorf("unmatched paths are not folded into one series:\n%s", m.body)
	}
}

// Plain HTTP on a non-loopback address is refused by New, with the reason.
func TestNewRefusesPlainHTTP(t *testing.T) {
	cfg := config()
	cfg.HTTP = server.HTTPConfig{Listen: "0.0.0.0:0", PublicURL: "https://certs.example.org"}
	_, err := server.New(cfg, server.Deps{Store: sqlitetest.Open(t, sqlite.Options{})})
	if !errors.Is(err, server.ErrPlainHTTP) {
		t.Fatalf("New: %v, want ErrPlainHTTP", err)
	}
}

// A TLS file that cannot be read fails New, naming the flags.
func TestNewTLSFiles(t *testing.T) {
	cfg := config()
	dir := t.TempDir()
	cfg.HTTP = server.HTTPConfig{Listen: "127.0.0.1:0", TLSCert: dir + "/missing.pem", TLSKey: dir + "/missing.key", PublicURL: "https://certs.example.org"}
	_, err := server.New(cfg, server.Deps{Store: sqlitetest.Open(t, sqlite.Options{})})
	if err == nil || !strings.Contains(err.Error(), "--http-tls-cert/--http-tls-key") {
		t.Fatalf("New: %v, want an error naming the TLS flags", err)
	}
}

// WebFinger and the embedded CA's files on the real listener, behind the
// middleware.
func TestWebFingerOnListener(t *testing.T) {
	dir := t.TempDir()
	if err := localca.Init(dir, localca.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	ca, err := localca.Load(dir, localca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config()
	cfg.HTTP.CARoot, cfg.HTTP.CRL = ca.Root(), ca.CRLHandler()
	_, base, _ := runHTTP(t, cfg)

	a := do(t, "GET", base+"/.well-known/webfinger?resource=acct:alice@example.org", nil)
	if a.status != 200 || a.header.Get("Content-Type") != "application/jrd+json" {
		t.Fatalf("webfinger: %d %s %s", a.status, a.header.Get("Content-Type"), a.body)
	}
	for _, want := range []string{`"xmpp:certs.example.org"`, base + `/ca/root.pem"`, base + `/ca/crl"`, `"href":"` + base + `"`} {
		if !strings.Contains(a.body, want) {
			t.Errorf("JRD %s lacks %s", a.body, want)
		}
	}
	if strings.Contains(a.body, "/enroll") {
		t.Errorf("JRD links an enrollment endpoint without enrollment: %s", a.body)
	}
	a = do(t, "POST", base+"/.well-known/webfinger?resource=acct:alice@example.org", nil)
	if a.status != 405 || errorCode(a) != httperr.MethodNotAllowed || a.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST webfinger: %d %s Allow %q", a.status, a.body, a.header.Get("Allow"))
	}

	a = do(t, "GET", base+server.CARootPath, nil)
	block, _ := pem.Decode([]byte(a.body))
	if a.status != 200 || block == nil || !bytes.Equal(block.Bytes, ca.Root().Raw) {
		t.Errorf("root: %d, PEM block %v, not the CA's root", a.status, block != nil)
	}
	a = do(t, "GET", base+server.CRLPath, nil)
	crl, err := x509.ParseRevocationList([]byte(a.body))
	if a.status != 200 || err != nil {
		t.Fatalf("CRL: %d %v", a.status, err)
	}
	if err := crl.CheckSignatureFrom(ca.Cert()); err != nil {
		t.Errorf("CRL signature: %v", err)
	}
}

// /readyz is 200 while the component is connected to a real Prosody.
func TestReadyWithProsody(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prosody (-short)")
	}
	var svc *server.Service
	stacktest.Start(t, stacktest.Options{
		HTTP:      server.HTTPConfig{Listen: "127.0.0.1:0", PublicURL: "https://certs.example.org"},
		BeforeRun: func(s *server.Service) { svc = s },
	})
	a := do(t, "GET", "http://"+svc.HTTPAddr().String()+"/readyz", nil)
	if a.status != 200 || !strings.Contains(a.body, `"ready"`) {
		t.Fatalf("readyz: %d %s", a.status, a.body)
	}
}

// With a certificate the listener speaks TLS only (and may then listen
// anywhere; here loopback), and picks up renewed files without a restart.
func TestHTTPListenerTLS(t *testing.T) {
	newCert := func() *certtest.Cert {
		return certtest.New(t, certtest.Options{CommonName: "localhost", DNSNames: []string{"localhost"},
			EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(c *certtest.Cert, keyPEM []byte) {
		t.Helper()
		mtime = mtime.Add(time.Hour)
		for _, f := range []struct {
			name string
			data []byte
		}{{certFile, c.CertPEM()}, {keyFile, keyPEM}} {
			if err := os.WriteFile(f.name, f.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(f.name, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := newCert()
	write(first, first.KeyPEM(t))
	clk := &fakeClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	ln := listenLoopback(t)
	cfg := config()
	cfg.HTTP = server.HTTPConfig{Listen: ln.Addr().String(), TLSCert: certFile, TLSKey: keyFile, PublicURL: "https://certs.example.org"}
	svc, err := server.New(cfg, server.Deps{Store: sqlitetest.Open(t, sqlite.Options{}), HTTPListener: ln, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// served dials a new TLS connection and returns the certificate the
	// listener presented.
	served := func() *x509.Certificate {
		t.Helper()
		conn, err := tls.Dial("tcp", "localhost:"+port, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}

	pool := x509.NewCertPool()
	pool.AddCert(first.Cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://localhost:" + port + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("https healthz: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	// Plain HTTP to the TLS port gets no answer of ours.
	resp, err = http.Get("http://" + ln.Addr().String() + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the TLS listener")
		}
	}

	renewed := newCert()
	steps := []struct {
		name    string
		change  func()
		advance time.Duration
		want    *certtest.Cert
	}{
		{"renewed, not checked yet", func() { write(renewed, renewed.KeyPEM(t)) }, server.TLSRecheck / 2, first},
		{"renewed and checked", nil, server.TLSRecheck, renewed},
		{"half-written renewal keeps the loaded pair", func() { write(newCert(), first.KeyPEM(t)) }, server.TLSRecheck, renewed},
		{"files removed: the loaded pair stays", func() { os.Remove(certFile) }, server.TLSRecheck, renewed},
	}
	for _, step := range steps {
		if step.change != nil {
			step.change()
		}
		clk.add(step.advance)
		if got := served(); !got.Equal(step.want.Cert) {
			t.Errorf("%s: served %s, want %s", step.name, got.SerialNumber, step.want.Cert.SerialNumber)
		}
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Two parts registering the same pattern: Run fails with an error naming
// it, and nothing is left listening.
func TestRoutesConflict(t *testing.T) {
	ln := listenLoopback(t)
	cfg := config()
	cfg.HTTP = server.HTTPConfig{Listen: ln.Addr().String(), PublicURL: "http://" + ln.Addr().String()}
	svc, err := server.New(cfg, server.Deps{Store: sqlitetest.Open(t, sqlite.Options{}), HTTPListener: ln})
	if err != nil {
		t.Fatal(err)
	}
	noop := func(http.ResponseWriter, *http.Request) {}
	svc.AddRoutes(server.RoutesFunc(func(mux *http.ServeMux) { mux.HandleFunc("GET /healthz", noop) }))
	err = svc.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "GET /healthz") {
		t.Fatalf("Run: %v, want the conflict", err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts")
	}
}
