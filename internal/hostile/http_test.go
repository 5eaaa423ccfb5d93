package hostile

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/stacktest"
)

// loopbackPort returns a port that was free on 127.0.0.1 a moment ago.
func loopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// httpGet sends one request and returns status and body.
func httpDo(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric reads one series' value from the exposition text.
func metric(text, series string) string {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return v
		}
	}
	return ""
}

// TestIntegrationHTTPListenersProcess runs the built "saslcert serve" with
// --http-listen and --metrics-listen next to a real Prosody and sends the
// listeners what an attacker or a careless client would: the answers are
// the documented ones, and the link's metrics follow a Prosody restart.
func TestIntegrationHTTPListenersProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	httpAddr, metricsAddr := "127.0.0.1:"+loopbackPort(t), "127.0.0.1:"+loopbackPort(t)
	base := "http://" + httpAddr
	st := stacktest.Start(t, stacktest.Options{Domain: domain, Process: true, ServeFlags: []string{
		"--http-listen", httpAddr, "--http-public-url", base, "--metrics-listen", metricsAddr,
	}})
	wf := base + "/.well-known/webfinger?resource="
	tests := []struct {
		name, method, url string
		status            int
		contains          string
	}{
		{"alive", "GET", base + "/healthz", 200, `"alive"`},
		{"ready with Prosody", "GET", base + "/readyz", 200, `"ready"`},
		{"webfinger", "GET", wf + "acct:hamlet@" + domain, 200, `"href":"xmpp:` + st.ComponentJID + `"`},
		{"webfinger, nobody by that name", "GET", wf + "acct:nobody@" + domain, 200, `"subject":"acct:nobody@` + domain + `"`},
		{"webfinger, another domain", "GET", wf + "acct:hamlet@evil.example", 404, `"not_found"`},
		{"webfinger, the component's domain", "GET", wf + "acct:hamlet@" + st.ComponentJID, 404, `"not_found"`},
		{"webfinger, no resource", "GET", base + "/.well-known/webfinger", 400, `"invalid_request"`},
		{"webfinger, resource with a JID resource", "GET", wf + "xmpp:hamlet@" + domain + "/castle", 400, `"invalid_request"`},
		{"webfinger, bad encoding", "GET", wf + "acct:ham%zzlet@" + domain, 400, `"invalid_request"`},
		{"webfinger, huge query", "GET", wf + "acct:" + strings.Repeat("h", 64<<10) + "@" + domain, 431, ""},
		{"webfinger, POST", "POST", wf + "acct:hamlet@" + domain, 405, `"method_not_allowed"`},
		{"unknown path", "GET", base + "/admin", 404, `"not_found"`},
		{"metrics are not on the public listener", "GET", base + "/metrics", 404, `"not_found"`},
		{"nothing but /metrics on the metrics listener", "GET", "http://" + metricsAddr + "/healthz", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := httpDo(t, tc.method, tc.url)
			if status != tc.status || !strings.Contains(body, tc.contains) {
				t.Errorf("%s: %d %.300s, want %d with %s", tc.method, status, body, tc.status, tc.contains)
			}
		})
	}

	_, text := httpDo(t, "GET", "http://"+metricsAddr+"/metrics")
	for series, want := range map[string]string{
		"saslcert_component_link_up":                                                  "1",
		"saslcert_component_reconnects_total":                                         "0",
		`saslcert_http_requests_total{code="405",route="unmatched"}`:                  "1",
		`saslcert_http_requests_total{code="404",route="GET /.well-known/webfinger"}`: "2",
	} {
		if got := metric(text, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}

	// Prosody goes away: not ready; it comes back: ready again, one
	// reconnect counted.
	if err := st.RestartProsody(t); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _ := httpDo(t, "GET", base+"/readyz")
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %d 30 s after Prosody came back", status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, text = httpDo(t, "GET", "http://"+metricsAddr+"/metrics")
	if got := metric(text, "saslcert_component_reconnects_total"); got != "1" {
		t.Errorf("reconnects after a Prosody restart = %q, want 1", got)
	}

	// SIGTERM: both listeners are closed when the process has exited.
	if err := st.Comp().Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, a := range []string{httpAddr, metricsAddr} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts after the component stopped", a)
		}
	}
}
