package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestServeRefusesMisconfiguration: unknown keys, wrong shapes and types,
// unsafe values and loose permissions are errors (never ignored, never a
// panic), and serve --check finds everything serve would refuse.
func TestServeRefusesMisconfiguration(t *testing.T) {
	base := func(t *testing.T) (dir, secret, data string) {
		dir = t.TempDir()
		secret = filepath.Join(dir, "secret")
		if err := os.WriteFile(secret, []byte("s3cr3t\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir, secret, filepath.Join(dir, "data")
	}
	tests := []struct {
		name    string
		toml    string                          // appended to a valid config; "" for none
		args    []string                        // extra flags
		prepare func(t *testing.T, data string) // before the run
		code    int
		wantErr string
	}{
		{name: "ok/valid", code: exitOK},
		{name: "ok/policy-table", toml: "[policy.\"example.org\"]\nallow_self_signed = true\n", code: exitOK},
		{name: "error/typo-key", toml: "plugin-cache-tll = \"5s\"\n", code: exitUsage, wantErr: `unknown setting "plugin-cache-tll"`},
		{name: "error/policy-key-outside-table", toml: "allow_self_signed = false\n", code: exitUsage, wantErr: `"allow_self_signed" is a policy setting`},
		{name: "error/policy-array-of-tables", toml: "[[policy.\"example.org\"]]\nissuer = \"embedded\"\n", code: exitUsage, wantErr: `must be one table`},
		{name: "error/policy-not-a-table", toml: "policy = 5\n", code: exitUsage, wantErr: "policy must be tables"},
		{name: "error/wrong-type", toml: "max-certs = \"five\"\n", code: exitUsage, wantErr: "max-certs"},
		{name: "error/wrong-type-list", toml: "max-history = [1, 2]\n", code: exitUsage, wantErr: "max-history"},
		{name: "error/wrong-type-duration", toml: "clock-skew = 5\n", code: exitUsage, wantErr: "clock-skew"},
		{name: "error/wrong-type-table", toml: "[plugin-cache-ttl]\nx = 1\n", code: exitUsage, wantErr: "plugin-cache-ttl"},
		{name: "error/wrong-type-in-policy", toml: "[policy.\"example.org\"]\nallow_self_signed = \"no\"\n", code: exitFailure, wantErr: "allow_self_signed"},
		{name: "error/unknown-policy-key", toml: "[policy.\"example.org\"]\nallow_selfsigned = false\n", code: exitFailure, wantErr: "unknown policy setting"},
		{name: "error/policy-for-unserved-domain", toml: "[policy.\"example.net\"]\nallow_self_signed = false\n", code: exitFailure, wantErr: "is not a served domain"},
		{name: "error/clock-skew-too-large", args: []string{"--clock-skew", "87600h"}, code: exitUsage, wantErr: "--clock-skew 87600h0m0s: want between 0 and 1h0m0s"},
		{name: "error/clock-skew-negative", args: []string{"--clock-skew", "-1m"}, code: exitUsage, wantErr: "--clock-skew -1m0s"},
		{name: "error/renew-before-not-shorter-than-lifetime", args: []string{"--cert-lifetime", "24h", "--renew-before", "48h"}, code: exitUsage, wantErr: "is not shorter than --cert-lifetime"},
		{name: "error/policy-lifetime-under-renew-before", toml: "[policy.\"example.org\"]\nlifetime = \"2h\"\n", args: []string{"--renew-before", "3h"}, code: exitFailure, wantErr: "is not longer than --renew-before"},
		{name: "error/admin-watch-too-slow", args: []string{"--admin-watch-interval", "1m"}, code: exitUsage, wantErr: "--admin-watch-interval 1m0s"},
		{name: "error/audit-retention-too-short", args: []string{"--audit-retention", "1h"}, code: exitUsage, wantErr: "--audit-retention 1h0m0s"},
		{name: "error/world-writable-data-dir", prepare: func(t *testing.T, data string) { mkdirMode(t, data, 0o777) },
			code: exitFailure, wantErr: "is writable by group or others (mode 0777)"},
		{name: "error/world-writable-database", prepare: func(t *testing.T, data string) {
			mkdirMode(t, data, 0o700)
			writeMode(t, filepath.Join(data, DBFile), 0o666)
		}, code: exitFailure, wantErr: "saslcert.db is writable by group or others"},
		{name: "error/world-writable-ca-dir", prepare: func(t *testing.T, data string) {
			mkdirMode(t, data, 0o700)
			mkdirMode(t, filepath.Join(data, caSubdir), 0o757)
		}, code: exitFailure, wantErr: "ca is writable by group or others"},
		{name: "error/readable-ca-key", prepare: func(t *testing.T, data string) {
			if code, _, stderr := runCLI(t, testNow, nil, "ca", "init", "--data-dir", data); code != exitOK {
				t.Fatalf("ca init: %d %s", code, stderr)
			}
			if err := os.Chmod(filepath.Join(data, caSubdir, "ca.key"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, code: exitFailure, wantErr: "ca.key is accessible to group or others (mode 0644); run chmod 600"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"SASLCERT_SECRET", "SASLCERT_SECRET_FILE", "SASLCERT_CONFIG", "SASLCERT_DATA_DIR", "SASLCERT_COMPONENT", "SASLCERT_DOMAINS"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			dir, secret, data := base(t)
			config := filepath.Join(dir, "saslcert.toml")
			text := "component = \"certs.example.org\"\ndomain = [\"example.org\"]\nsecret-file = \"" + secret + "\"\ndata-dir = \"" + data + "\"\n"
			// Policy tables must come last; keys after a table belong to it.
			if err := os.WriteFile(config, []byte(text+tc.toml), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.prepare != nil {
				tc.prepare(t, data)
			}
			args := append([]string{"serve", "--config", config, "--check"}, tc.args...)
			code, stdout, stderr := runCLI(t, testNow, nil, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			checkOutput(t, "stderr", stderr, []string{tc.wantErr}, nil)
			if tc.code == exitOK {
				checkOutput(t, "stdout", stdout, []string{"settings OK", "enrollment:"}, nil)
			}
		})
	}
}

func mkdirMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func writeMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
