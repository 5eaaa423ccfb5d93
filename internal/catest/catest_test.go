package catest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func pinnedClient(root *x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func TestStartStepCA(t *testing.T) {
	s := StartStepCA(t, StepCAOptions{})
	for _, u := range []string{s.URL, s.CRLURL} {
		if h := must(url.Parse(u)).Hostname(); h != "127.0.0.1" {
			t.Errorf("%s listens on %s, want 127.0.0.1", u, h)
		}
	}
	c := pinnedClient(s.Root)
	resp, err := c.Get(s.URL + "/1.0/provisioners")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Provisioners []struct {
			Name string `json:"name"`
			Type string `json:"type"`
			Key  struct {
				KeyID string `json:"kid"`
			} `json:"key"`
		} `json:"provisioners"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if len(body.Provisioners) != 1 || body.Provisioners[0].Name != s.Provisioner || body.Provisioners[0].Key.KeyID != s.KeyID {
		t.Fatalf("provisioners = %+v, want one JWK %s kid %s", body.Provisioners, s.Provisioner, s.KeyID)
	}
	if len(s.RootFingerprint()) != 64 {
		t.Errorf("RootFingerprint = %q", s.RootFingerprint())
	}
}

func TestCAStartEST(t *testing.T) {
	e := StartEST(t)
	if h := must(url.Parse(e.URL)).Hostname(); h != "127.0.0.1" {
		t.Errorf("EST listens on %s, want 127.0.0.1", h)
	}
	resp, err := pinnedClient(e.Root).Get(e.URL + "/.well-known/est/cacerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/pkcs7-mime") || len(b) == 0 {
		t.Fatalf("cacerts: %s %q, %d bytes", resp.Status, resp.Header.Get("Content-Type"), len(b))
	}
}

// recorder is a testing.TB that records Skipf and Fatalf instead of
// ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Skipf(format string, a ...any)  { r.skipped = fmt.Sprintf(format, a...) }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }

func TestCABinarySkipsOrFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(RequireEnv, "")
	r := &recorder{TB: t}
	Binary(r, "no-such-ca-tool-xyz")
	if !strings.Contains(r.skipped, "scripts/install-ca-tools.sh") {
		t.Errorf("without %s: skipped %q, want a skip", RequireEnv, r.skipped)
	}
	t.Setenv(RequireEnv, "1")
	r = &recorder{TB: t}
	Binary(r, "no-such-ca-tool-xyz")
	if r.skipped != "" || !strings.Contains(r.failed, RequireEnv+" is set") {
		t.Errorf("with %s: skipped %q, failed %q; want a failure", RequireEnv, r.skipped, r.failed)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
