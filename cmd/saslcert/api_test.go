package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/storage/sqlite"
)

// writeKey writes a private key as PEM (PKCS #8) into dir and returns its path.
func writeKey(t *testing.T, dir, name string, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAPIClientCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o700)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	keyEC, keyEd := writeKey(t, dir, "ec.key", ec), writeKey(t, dir, "ed.key", ed)
	code, jwks, errOut := runCLI(t, testNow, nil, "api", "jwks", keyEC, keyEd)
	if code != exitOK || strings.Count(jwks, `"kid"`) != 2 || strings.Contains(jwks, `"d"`) {
		t.Fatalf("api jwks: %d %s %s", code, jwks, errOut)
	}
	jwksFile := filepath.Join(dir, "hr.jwks")
	os.WriteFile(jwksFile, []byte(jwks), 0o600)
	dd := "--data-dir=" + data

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"add/jwks-file", []string{"api", "client", "add", dd, "--id", "hr", "--tenant", "example.org", "--scope", "certs:read certs:write", "--jwks-file", jwksFile},
			exitOK, []string{"registered client hr (tenants example.org; scopes certs:read certs:write)"}, nil},
		{"add/secret", []string{"api", "client", "add", dd, "--id", "desk", "--tenant", "example.org", "--tenant", "example.net", "--scope", "audit:read", "--secret"},
			exitOK, []string{"registered client desk", "client secret (shown only now; store it safely): "}, nil},
		{"add/jwks-uri", []string{"api", "client", "add", dd, "--id", "cloud", "--tenant", "example.org", "--scope", "certs:issue", "--jwks-uri", "https://cloud.example.com/jwks.json"},
			exitOK, []string{"registered client cloud"}, nil},
		{"error/duplicate", []string{"api", "client", "add", dd, "--id", "hr", "--tenant", "example.org", "--scope", "certs:read", "--secret"},
			exitFailure, nil, []string{`client "hr" exists`}},
		{"error/no-method", []string{"api", "client", "add", dd, "--id", "x", "--tenant", "example.org", "--scope", "certs:read"},
			exitUsage, nil, []string{"give exactly one of --jwks-uri, --jwks-file and --secret"}},
		{"error/two-methods", []string{"api", "client", "add", dd, "--id", "x", "--tenant", "example.org", "--scope", "certs:read", "--secret", "--jwks-file", jwksFile},
			exitUsage, nil, []string{"give exactly one of"}},
		{"error/unknown-scope", []string{"api", "client", "add", dd, "--id", "x", "--tenant", "example.org", "--scope", "admin", "--secret"},
			exitUsage, nil, []string{`--scope "admin"`}},
		{"error/tenant-is-a-jid", []string{"api", "client", "add", dd, "--id", "x", "--tenant", "alice@example.org", "--scope", "certs:read", "--secret"},
			exitUsage, nil, []string{`--tenant "alice@example.org": want a domain`}},
		{"error/plain-http-jwks-uri", []string{"api", "client", "add", dd, "--id", "x", "--tenant", "example.org", "--scope", "certs:read", "--jwks-uri", "http://hr.example.org/jwks"},
			exitUsage, nil, []string{"want https (http only to a loopback address)"}},
		{"error/private-jwks-file", []string{"api", "client", "add", dd, "--id", "x", "--tenant", "example.org", "--scope", "certs:read", "--jwks-file", keyEC},
			exitUsage, nil, []string{"--jwks-file"}},
		{"list", []string{"api", "client", "list", dd}, exitOK,
			[]string{"cloud\ttenants=example.org\tscopes=certs:issue\tauth=jwks_uri https://cloud.example.com/jwks.json", "desk\ttenants=example.org,example.net\tscopes=audit:read\tauth=secret", "hr\t"}, nil},
		{"show", []string{"api", "client", "show", dd, "--id", "hr"}, exitOK, []string{"id:       hr", "auth:     registered JWKS", "*ecdsa.PublicKey", "ed25519.PublicKey"}, nil},
		{"remove", []string{"api", "client", "remove", dd, "--id", "cloud"}, exitOK, []string{"removed client cloud"}, nil},
		{"error/remove-again", []string{"api", "client", "remove", dd, "--id", "cloud"}, exitFailure, nil, []string{`no client "cloud"`}},
		{"error/show-unknown", []string{"api", "client", "show", dd, "--id", "nobody"}, exitFailure, nil, []string{`no client "nobody"`}},
		{"error/list-no-database", []string{"api", "client", "list", "--data-dir", filepath.Join(dir, "nothing")}, exitFailure, nil, []string{"no database"}},
		{"keys/rotate", []string{"api", "keys", "rotate", dd}, exitOK, []string{"is current; the previous one stays published"}, nil},
		{"keys/rotate-again", []string{"api", "keys", "rotate", dd}, exitOK, []string{"is current"}, nil},
		{"keys/list", []string{"api", "keys", "list", dd}, exitOK, []string{"ES256\tcreated 2026-11-22T12:00:00Z\tcurrent", "\tretired 2026-11-22T12:00:00Z"}, nil},
		{"error/jwks-no-file", []string{"api", "jwks"}, exitUsage, nil, []string{"name at least one private key file"}},
		{"error/assertion-public-key", []string{"api", "assertion", "--key", jwksFile, "--client-id", "hr", "--audience", "https://certs.example.org"}, exitUsage, nil, []string{"want a PEM private key or a private JWK"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, testNow, nil, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			checkOutput(t, "stdout", stdout, tc.stdout, nil)
			checkOutput(t, "stderr", stderr, tc.stderr, nil)
		})
	}
}

// TestAPIAssertionGetsAToken: what `saslcert api assertion` prints gets a
// token from an oauth.Server on the same store, once.
func TestAPIAssertionGetsAToken(t *testing.T) {
	dir := t.TempDir()
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	key := writeKey(t, dir, "hr.key", rk)
	_, jwks, _ := runCLI(t, time.Now(), nil, "api", "jwks", key)
	jwksFile := filepath.Join(dir, "hr.jwks")
	os.WriteFile(jwksFile, []byte(jwks), 0o600)
	if code, _, stderr := runCLI(t, time.Now(), nil, "api", "client", "add", "--data-dir", dir, "--id", "hr", "--tenant", "example.org", "--scope", "certs:read", "--jwks-file", jwksFile); code != exitOK {
		t.Fatal(stderr)
	}
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	defer hs.Close()
	srv, err := oauth.New(oauth.Config{Issuer: hs.URL, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.EnsureSigningKey(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.Register(mux)
	code, assertion, stderr := runCLI(t, time.Now(), nil, "api", "assertion", "--key", key, "--client-id", "hr", "--audience", hs.URL+"/")
	if code != exitOK {
		t.Fatal(stderr)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {oauth.AssertionType}, "client_assertion": {strings.TrimSpace(assertion)}}
	for i, want := range []int{200, 401} {
		resp, err := http.PostForm(hs.URL+oauth.TokenPath, form)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("use %d: %d %v, want %d", i+1, resp.StatusCode, body, want)
		}
	}
}
