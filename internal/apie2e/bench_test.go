package apie2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
)

// BenchmarkIntegrationRevokeAll measures the leaver's revoke-all through
// the API on a real Prosody: from sending the request to the live EXTERNAL
// session's stream being closed by the server (closed-ms), and to the API's
// answer (answered-ms). Each iteration uploads a certificate, logs in with
// it (untimed), then revokes the account. Run it with a fixed count, e.g.
// -benchtime=100x (accounts keep at most 50 revoked certificates, spread
// over 5 accounts here).
func BenchmarkIntegrationRevokeAll(b *testing.B) {
	st := startAPIStack(b)
	hr := st.token(b, "hr", st.client(b, "hr", allScopes...), "tenant:"+domain, "certs:write")
	const users = 5
	for i := range users {
		st.Register(b, fmt.Sprintf("leaver%d", i))
	}
	var closed, answered []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		user := fmt.Sprintf("leaver%d", i%users)
		c := stacktest.NewCert(b, certtest.Options{XMPPAddrs: []string{user + "@" + domain}})
		body, _ := json.Marshal(map[string]string{"name": fmt.Sprintf("c%d", i), "pem": string(c.CertPEM())})
		if s := st.call(b, hr, "POST", "/v1/tenants/"+domain+"/accounts/"+user+"@"+domain+"/certs", string(body), nil); s != http.StatusCreated {
			b.Fatalf("upload: %d", s)
		}
		ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
		live, err := st.RawLoginCert(ctx, c, "")
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if s := st.call(b, hr, "POST", "/v1/tenants/"+domain+"/accounts/"+user+"@"+domain+"/revoke-all", "", nil); s != http.StatusOK {
			b.Fatalf("revoke-all: %d", s)
		}
		answered = append(answered, time.Since(start))
		if _, err := live.WaitClosed(time.Minute); err != nil {
			b.Fatal(err)
		}
		closed = append(closed, time.Since(start))
		b.StopTimer()
		live.Close()
		b.StartTimer()
	}
	b.StopTimer()
	report := func(name string, ds []time.Duration) {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		ms := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000 }
		b.ReportMetric(ms(0.5), name+"-p50-ms")
		b.ReportMetric(ms(0.99), name+"-p99-ms")
	}
	report("closed", closed)
	report("answered", answered)
}
