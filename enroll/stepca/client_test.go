package stepca

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
)

var alice = jid.MustParse("alice@example.org")

// fakeCA is an httptest TLS server standing in for step-ca; it counts
// requests and answers each with status and body.
func fakeCA(t *testing.T, status int, body string) (*Client, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	c, err := New(Config{URL: ts.URL, Provisioner: "ra", Key: certtest.Key(t, certtest.ECDSAP256), Root: ts.Certificate(),
		Now: func() time.Time { return certtest.Now }})
	if err != nil {
		t.Fatal(err)
	}
	return c, &n
}

func TestEnrollStepCARefusesBeforeSending(t *testing.T) {
	c, n := fakeCA(t, http.StatusCreated, `{}`)
	forged := catest.NewCSR(t, catest.CSROptions{})
	forged.Signature = append([]byte(nil), forged.Signature...)
	forged.Signature[len(forged.Signature)-1] ^= 0xff
	upn := certtest.SAN([]certtest.OtherName{certtest.UTF8OtherName(certtest.OIDMicrosoftUPN, "alice@example.org")}, nil)
	tests := []struct {
		name string
		req  *enroll.IssueRequest
	}{
		{"error/other-jid", &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{XMPPAddr: "mallory@example.org"})}},
		{"error/dns-name", &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{DNSNames: []string{"example.org"}})}},
		{"error/email", &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{Emails: []string{"alice@example.org"}})}},
		{"error/upn", &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{RawSAN: upn})}},
		{"error/other-cn", &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{CommonName: "admin@example.org"})}},
		{"error/forged-signature", &enroll.IssueRequest{Account: alice, CSR: forged}},
		{"error/full-jid-account", &enroll.IssueRequest{Account: jid.MustParse("alice@example.org/x"), CSR: catest.NewCSR(t, catest.CSROptions{})}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Issue(t.Context(), tc.req)
			if !errors.Is(err, enroll.ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
		})
	}
	if got := n.Load(); got != 0 {
		t.Fatalf("%d requests reached the CA; refused requests must not be sent", got)
	}
}

func TestEnrollStepCAErrorMapping(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   error
		text   string
	}{
		{"error/401", 401, `{"status":401,"message":"The request lacked necessary authorization to be completed."}`, enroll.ErrRejected, "lacked necessary authorization"},
		{"error/403", 403, `{"status":403,"message":"forbidden"}`, enroll.ErrRejected, "forbidden"},
		{"error/500", 500, `oops`, enroll.ErrUnavailable, "oops"},
		{"error/garbage-201", 201, `not json`, enroll.ErrUnavailable, "bad answer"},
		{"error/no-certificate", 201, `{"crt":"","ca":""}`, enroll.ErrBadIssued, "no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := fakeCA(t, tc.status, tc.body)
			_, err := c.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{})})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
}

func TestEnrollStepCAToken(t *testing.T) {
	key := certtest.Key(t, certtest.ECDSAP256)
	c, err := New(Config{URL: "https://ca.example.org:9000/", Provisioner: "xmpp-ra", Key: key, Root: certtest.NewCA(t, "r").Cert})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	sum := sha256.Sum256([]byte("csr"))
	fp := base64.RawURLEncoding.EncodeToString(sum[:])
	tok, err := c.mintToken("alice@example.org", c.endpoint("/1.0/sign"),
		tokenClaims{SANs: []string{"alice@example.org"}, Cnf: &confirmKey{Fingerprint: fp}}, now)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	wantKID, _ := KeyID(key.Public())
	if h := parsed.Headers[0]; h.KeyID != wantKID || h.Algorithm != "ES256" || h.ExtraHeaders["typ"] != "JWT" {
		t.Errorf("header kid=%q alg=%q typ=%v, want kid %q ES256 JWT", h.KeyID, h.Algorithm, h.ExtraHeaders["typ"], wantKID)
	}
	var std jwt.Claims
	var extra tokenClaims
	if err := parsed.Claims(key.Public(), &std, &extra); err != nil {
		t.Fatal(err)
	}
	if err := std.Validate(jwt.Expected{Issuer: "xmpp-ra", Subject: "alice@example.org",
		AnyAudience: jwt.Audience{"https://ca.example.org:9000/1.0/sign"}, Time: now.Add(time.Minute)}); err != nil {
		t.Errorf("claims: %v", err)
	}
	if std.Expiry.Time().Sub(std.IssuedAt.Time()) != TokenLifetime || !std.NotBefore.Time().Equal(now) || len(std.ID) != 32 {
		t.Errorf("iat %v nbf %v exp %v jti %q", std.IssuedAt.Time(), std.NotBefore.Time(), std.Expiry.Time(), std.ID)
	}
	if len(extra.SANs) != 1 || extra.SANs[0] != "alice@example.org" || extra.Cnf == nil || extra.Cnf.Fingerprint != fp {
		t.Errorf("sans %v cnf %+v", extra.SANs, extra.Cnf)
	}
	tok2, _ := c.mintToken("alice@example.org", c.endpoint("/1.0/sign"), tokenClaims{}, now)
	if tok2 == tok {
		t.Error("two tokens are identical: jti must be random")
	}
}

func TestEnrollStepCAParseKey(t *testing.T) {
	key := certtest.Key(t, certtest.ECDSAP256)
	jwk := jose.JSONWebKey{Key: key, KeyID: "my-kid", Algorithm: "ES256"}
	data, err := jwk.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	s, kid, err := ParseKey(data)
	if err != nil || kid != "my-kid" || s == nil {
		t.Fatalf("ParseKey = %v, %q, %v", s, kid, err)
	}
	pub, _ := jwk.Public().MarshalJSON()
	if _, _, err := ParseKey(pub); err == nil {
		t.Error("ParseKey accepted a public key")
	}
}

func TestEnrollStepCANewErrors(t *testing.T) {
	key := certtest.Key(t, certtest.ECDSAP256)
	root := certtest.NewCA(t, "r").Cert
	tests := []struct {
		name string
		cfg  Config
	}{
		{"error/no-url", Config{Provisioner: "p", Key: key, Root: root}},
		{"error/http", Config{URL: "http://ca", Provisioner: "p", Key: key, Root: root}},
		{"error/no-provisioner", Config{URL: "https://ca", Key: key, Root: root}},
		{"error/no-key", Config{URL: "https://ca", Provisioner: "p", Root: root}},
		{"error/no-pin", Config{URL: "https://ca", Provisioner: "p", Key: key}},
		{"error/bad-fingerprint", Config{URL: "https://ca", Provisioner: "p", Key: key, RootFingerprint: "abc"}},
		{"error/root-fingerprint-mismatch", Config{URL: "https://ca", Provisioner: "p", Key: key, Root: root, RootFingerprint: strings.Repeat("0", 64)}},
		{"error/lifetime", Config{URL: "https://ca", Provisioner: "p", Key: key, Root: root, Lifetime: 365 * 24 * time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
}
