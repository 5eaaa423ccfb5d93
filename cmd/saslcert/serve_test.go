package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeSettings checks where serve takes its settings from: flags win
// over SASLCERT_* variables, which win over the --config TOML file; the
// secret comes from a file or SASLCERT_SECRET, never a flag, and is never
// printed.
func TestServeSettings(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("s3cr3t-value\nignored second line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptySecret := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptySecret, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openSecret := filepath.Join(dir, "open")
	if err := os.WriteFile(openSecret, []byte("s3cr3t-value\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	credDir := filepath.Join(dir, "credentials")
	if err := os.Mkdir(credDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(credDir, CredentialName), []byte("s3cr3t-cred\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "saslcert.toml")
	toml := `component = "certs.example.org"
domain = ["example.org", "example.net"]
secret-file = "` + secretFile + `"
data-dir = "` + filepath.Join(dir, "data") + `"
max-certs = 5
`
	if err := os.WriteFile(config, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		want     []string // in stdout
		wantErr  string   // in stderr
	}{
		{
			name: "ok/config-file",
			args: []string{"--config", config, "--check"},
			want: []string{"component:     certs.example.org", "domains:       example.org, example.net",
				"12 bytes (not shown)", "limits:        5 certificates per account", "settings OK"},
		},
		{
			name: "ok/env-beats-file",
			args: []string{"--config", config, "--check"},
			env:  map[string]string{"SASLCERT_MAX_CERTS": "7"},
			want: []string{"limits:        7 certificates per account"},
		},
		{
			name: "ok/flag-beats-env",
			args: []string{"--config", config, "--max-certs", "3", "--check"},
			env:  map[string]string{"SASLCERT_MAX_CERTS": "7"},
			want: []string{"limits:        3 certificates per account"},
		},
		{
			name: "ok/secret-from-env",
			args: []string{"--component", "certs.example.org", "--domain", "example.org", "--data-dir", filepath.Join(dir, "d2"), "--check"},
			env:  map[string]string{"SASLCERT_SECRET": "abc"},
			want: []string{"3 bytes (not shown)"},
		},
		{
			name: "ok/secret-from-systemd-credential",
			args: []string{"--component", "certs.example.org", "--domain", "example.org", "--data-dir", filepath.Join(dir, "d3"), "--check"},
			env:  map[string]string{"CREDENTIALS_DIRECTORY": credDir},
			want: []string{"11 bytes (not shown)"},
		},
		{
			name: "ok/secret-file-beats-credential",
			args: []string{"--config", config, "--check"},
			env:  map[string]string{"CREDENTIALS_DIRECTORY": credDir},
			want: []string{"12 bytes (not shown)"},
		},
		{name: "error/credential-missing", args: []string{"--component", "certs.example.org", "--domain", "example.org", "--check"}, env: map[string]string{"CREDENTIALS_DIRECTORY": dir}, wantCode: exitUsage, wantErr: "component.secret: no such file"},
		{name: "error/no-component", args: []string{"--domain", "example.org", "--check"}, wantCode: exitUsage, wantErr: "--component (SASLCERT_COMPONENT) is required"},
		{name: "error/no-domain", args: []string{"--component", "certs.example.org", "--check"}, wantCode: exitUsage, wantErr: "--domain"},
		{name: "error/no-secret", args: []string{"--component", "certs.example.org", "--domain", "example.org", "--check"}, wantCode: exitUsage, wantErr: "no component secret"},
		{name: "error/empty-secret-file", args: []string{"--component", "certs.example.org", "--domain", "example.org", "--secret-file", emptySecret, "--check"}, wantCode: exitUsage, wantErr: "first line is empty"},
		{name: "error/missing-secret-file", args: []string{"--component", "certs.example.org", "--domain", "example.org", "--secret-file", filepath.Join(dir, "nope"), "--check"}, wantCode: exitUsage, wantErr: "--secret-file"},
		{name: "error/world-readable-secret", args: []string{"--component", "certs.example.org", "--domain", "example.org", "--secret-file", openSecret, "--check"}, wantCode: exitUsage, wantErr: "can be read by every user"},
		{
			name: "ok/plugin-cache-default",
			args: []string{"--config", config, "--check"},
			want: []string{"plugin cache:  1m0s (logins and <items/> lists"},
		},
		{
			name: "ok/plugin-cache-off",
			args: []string{"--config", config, "--plugin-cache-ttl", "0", "--check"},
			want: []string{"plugin cache:  off"},
		},
		{
			name: "ok/plugin-cache-env",
			args: []string{"--config", config, "--check"},
			env:  map[string]string{"SASLCERT_PLUGIN_CACHE_TTL": "5m"},
			want: []string{"plugin cache:  5m0s"},
		},
		{
			name: "ok/admin-watch",
			args: []string{"--config", config, "--check"},
			want: []string{"admin watch:   every 1s"},
		},
		{
			name: "ok/admin-watch-off",
			args: []string{"--config", config, "--admin-watch-interval", "0", "--check"},
			want: []string{"admin watch:   off"},
		},
		{name: "error/admin-watch-too-often", args: []string{"--config", config, "--admin-watch-interval", "10ms", "--check"}, wantCode: exitUsage, wantErr: "--admin-watch-interval 10ms"},
		{name: "error/plugin-cache-sub-second", args: []string{"--config", config, "--plugin-cache-ttl", "10ms", "--check"}, wantCode: exitUsage, wantErr: "--plugin-cache-ttl 10ms"},
		{name: "error/plugin-cache-negative", args: []string{"--config", config, "--plugin-cache-ttl", "-1s", "--check"}, wantCode: exitUsage, wantErr: "--plugin-cache-ttl -1s"},
		{name: "error/plugin-cache-too-long", args: []string{"--config", config, "--plugin-cache-ttl", "48h", "--check"}, wantCode: exitUsage, wantErr: "between 1s and 24h"},
		{name: "error/weak-rsa", args: []string{"--config", config, "--min-rsa-bits", "1024", "--check"}, wantCode: exitUsage, wantErr: "--min-rsa-bits 1024"},
		{name: "error/store-postgres-password", args: []string{"--config", config, "--store", "postgres://u:pw@db/saslcert", "--check"}, wantCode: exitUsage, wantErr: "--store-password-file"},
		{name: "error/store-unknown", args: []string{"--config", config, "--store", "mysql:x", "--check"}, wantCode: exitUsage, wantErr: "--store"},
		{name: "error/component-with-localpart", args: []string{"--config", config, "--component", "x@certs.example.org", "--check"}, wantCode: exitUsage, wantErr: "want a domain JID"},
		{name: "error/argument", args: []string{"--config", config, "extra"}, wantCode: exitUsage, wantErr: "no arguments"},
		{name: "ok/http-off", args: []string{"--config", config, "--check"}, want: []string{"http:          off", "metrics:       off"}},
		{
			name: "ok/http-loopback",
			args: []string{"--config", config, "--http-listen", "127.0.0.1:8443", "--http-public-url", "https://certs.example.org/", "--metrics-listen", "127.0.0.1:9257", "--check"},
			want: []string{"http:          http (loopback only) on 127.0.0.1:8443, public URL https://certs.example.org/", "metrics:       http://127.0.0.1:9257/metrics"},
		},
		{
			name: "error/http-plain-public", args: []string{"--config", config, "--http-listen", "0.0.0.0:8443", "--http-public-url", "https://certs.example.org", "--check"},
			wantCode: exitUsage, wantErr: `--http-listen "0.0.0.0:8443": plain HTTP is allowed on a loopback address only (127.0.0.1, ::1 or localhost); set --http-tls-cert and --http-tls-key`,
		},
		{
			name: "error/http-public-url-http", args: []string{"--config", config, "--http-listen", "127.0.0.1:8443", "--http-public-url", "http://certs.example.org", "--check"},
			wantCode: exitUsage, wantErr: "--http-public-url: invalid public URL \"http://certs.example.org\": http is allowed for a loopback host only",
		},
		{
			name: "error/http-no-public-url", args: []string{"--config", config, "--http-listen", "127.0.0.1:8443", "--check"},
			wantCode: exitUsage, wantErr: "--http-public-url: invalid public URL: it is required",
		},
		{
			name: "error/http-tls-missing-file", args: []string{"--config", config, "--http-listen", "[::]:8443", "--http-tls-cert", filepath.Join(dir, "nope.pem"),
				"--http-tls-key", filepath.Join(dir, "nope.key"), "--http-public-url", "https://certs.example.org", "--check"},
			wantCode: exitFailure, wantErr: "--http-tls-cert/--http-tls-key: stat " + filepath.Join(dir, "nope.pem") + ": no such file",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"SASLCERT_SECRET", "SASLCERT_SECRET_FILE", "SASLCERT_MAX_CERTS", "SASLCERT_COMPONENT", "SASLCERT_DOMAINS", "SASLCERT_CONFIG", "SASLCERT_DATA_DIR", "CREDENTIALS_DIRECTORY"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			app := newApp(&stdout, &stderr, func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) })
			code := run(t.Context(), app, append([]string{"saslcert", "serve"}, tc.args...))
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantErr)
			}
			if strings.Contains(stdout.String()+stderr.String(), "s3cr3t") {
				t.Error("the secret was printed")
			}
		})
	}
}
