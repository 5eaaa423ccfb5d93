package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/component"
	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
	"github.com/saslcert/saslcert/xep0257"
)

// enrollTestConfig is serve's configuration for example.org and
// example.net with data in data and the TOML file toml ("" for none).
func enrollTestConfig(t *testing.T, data, toml string, mod func(*enrollSettings)) serveConfig {
	t.Helper()
	es := enrollSettings{lifetime: enroll.DefaultLifetime, renewBefore: enroll.DefaultRenewBefore, renewInterval: time.Minute, crlMaxAge: time.Minute}
	if toml != "" {
		es.configFile = filepath.Join(t.TempDir(), "saslcert.toml")
		if err := os.WriteFile(es.configFile, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if mod != nil {
		mod(&es)
	}
	return serveConfig{
		comp:    component.Config{JID: jid.MustParse("certs.example.org"), ServerDomains: []string{"example.org", "example.net"}},
		dataDir: data,
		limits:  xep0257.DefaultLimits(),
		enroll:  es,
	}
}

func openTestEnrollment(t *testing.T, sc serveConfig) (*enrollment, error) {
	t.Helper()
	e := &env{now: func() time.Time { return testNow }, log: slog.New(slog.DiscardHandler)}
	return openEnrollment(context.Background(), e, sc, sqlitetest.Open(t, sqlite.Options{}))
}

func TestServeEnrollmentConfig(t *testing.T) {
	noCA := t.TempDir()
	withCA := t.TempDir()
	if code, out, errOut := runCLI(t, testNow, nil, "ca", "init", "--data-dir", withCA); code != exitOK {
		t.Fatalf("ca init: %s%s", out, errOut)
	}
	org := certtest.NewCA(t, "org root")
	orgFile := filepath.Join(t.TempDir(), "org.pem")
	if err := os.WriteFile(orgFile, org.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}

	// Nothing configured and no CA: no enrollment at all.
	if en, err := openTestEnrollment(t, enrollTestConfig(t, noCA, "", nil)); en != nil || err != nil {
		t.Fatalf("nothing configured: %v, %v; want nil, nil", en, err)
	}
	// A CA in the data directory: the embedded CA for every domain.
	en, err := openTestEnrollment(t, enrollTestConfig(t, withCA, "", nil))
	if err != nil || en == nil || !en.svc.Offered(jid.MustParse("a@example.org")) || !en.svc.Offered(jid.MustParse("a@example.net")) {
		t.Fatalf("with a CA: %v, %v", en, err)
	}
	// A policy per domain.
	en, err = openTestEnrollment(t, enrollTestConfig(t, withCA, `
component = "certs.example.org"
[policy."example.net"]
issuer = "none"
lifetime = "24h"
allow_self_signed = false
trusted_roots = ["embedded", "`+orgFile+`"]
crl_urls = ["http://127.0.0.1:9/crl"]
`, nil))
	if err != nil {
		t.Fatal(err)
	}
	bob := jid.MustParse("bob@example.net")
	p, _ := en.svc.DomainPolicy(bob)
	if en.svc.Offered(bob) || p.AllowSelfSigned || len(p.TrustedRoots) != 2 || len(p.Intermediates) != 1 || p.Lifetime != 24*time.Hour {
		t.Fatalf("example.net policy %+v", p)
	}
	ss := certtest.New(t, certtest.Options{XMPPAddrs: []string{bob.String()}, NotBefore: testNow.Add(-time.Hour)})
	up, err := sasl.CheckUpload(ss.DER, bob, testNow, sasl.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if err := en.svc.CheckAppend(context.Background(), bob, up); err == nil {
		t.Fatal("a self-signed upload to example.net was allowed")
	}

	tests := []struct {
		name string
		data string
		toml string
		mod  func(*enrollSettings)
		want string
	}{
		{"unserved-domain", withCA, "[policy.\"example.com\"]\nissuer = \"embedded\"\n", nil, "not a served domain"},
		{"unknown-key", withCA, "[policy.\"example.org\"]\nissuers = \"embedded\"\n", nil, "unknown policy setting"},
		{"bad-lifetime", withCA, "[policy.\"example.org\"]\nlifetime = \"soon\"\n", nil, "lifetime"},
		{"short-lifetime", withCA, "[policy.\"example.org\"]\nlifetime = \"1m\"\n", nil, "lifetime"},
		{"embedded-without-ca", noCA, "[policy.\"example.org\"]\nissuer = \"embedded\"\n", nil, "ca init"},
		{"trust-embedded-without-ca", noCA, "[policy.\"example.org\"]\ntrusted_roots = [\"embedded\"]\n", nil, "ca init"},
		{"no-root-file", withCA, "[policy.\"example.org\"]\ntrusted_roots = [\"/nonexistent.pem\"]\n", nil, "nonexistent"},
		{"unknown-issuer", withCA, "[policy.\"example.org\"]\nissuer = \"vault\"\n", nil, "unknown issuer"},
		{"nothing-usable", withCA, "[policy.\"example.org\"]\nissuer = \"none\"\nallow_self_signed = false\n", nil, "no certificate could ever be used"},
		{"stepca-without-url", withCA, "", func(es *enrollSettings) { es.ca = issuerStepCA }, "--stepca-url"},
		{"stepca-without-key", withCA, "", func(es *enrollSettings) { es.stepURL = "https://127.0.0.1:9" }, "--stepca-provisioner"},
		{"est-without-root", withCA, "", func(es *enrollSettings) { es.estURL = "https://127.0.0.1:9" }, "--est-root"},
		{"crl-listen-without-ca", noCA, "", func(es *enrollSettings) { es.crlListen = "127.0.0.1:9" }, "no embedded CA"},
		{"bad-toml", withCA, "[policy\n", nil, "--config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := openTestEnrollment(t, enrollTestConfig(t, tt.data, tt.toml, tt.mod))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestServeEnrollmentFlags(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"serve", "--component", "certs.example.org", "--domain", "example.org", "--secret-file", secret, "--data-dir", t.TempDir()}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--ca", "vault"}, "--ca"},
		{[]string{"--renew-before", "soon"}, "renew-before"},
		{[]string{"--cert-lifetime", "1m"}, "--cert-lifetime"},
		{[]string{"--renew-interval", "1ms"}, "--renew-interval"},
		{[]string{"--crl-listen", "nope"}, "--crl-listen"},
	}
	for _, tt := range tests {
		code, _, stderr := runCLI(t, testNow, nil, append(base, tt.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want usage error about %s", tt.args, code, stderr, tt.want)
		}
	}
}
