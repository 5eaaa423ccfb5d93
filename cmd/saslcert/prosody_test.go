package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProsodyConfig(t *testing.T) {
	dir := t.TempDir()
	serveFile := filepath.Join(dir, "saslcert.toml")
	if err := os.WriteFile(serveFile, []byte(`component = "certs.example.net"
domain = ["example.net", "example.com"]
server-addr = "127.0.0.1:15347"
max-certs = 5
`), 0o600); err != nil {
		t.Fatal(err)
	}
	noComponent := filepath.Join(dir, "nocomp.toml")
	if err := os.WriteFile(noComponent, []byte("domain = [\"example.net\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badAddr := filepath.Join(dir, "badaddr.toml")
	if err := os.WriteFile(badAddr, []byte("component = \"c.example.net\"\ndomain = [\"example.net\"]\nserver-addr = \"localhost\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // substrings of stdout
		notWant  []string
		wantErr  string // substring of stderr
	}{
		{
			name: "ok/one-domain",
			args: []string{"--domain", "Example.ORG", "--component", "certs.example.org"},
			want: []string{
				`VirtualHost "example.org"`,
				`modules_enabled = { "saslcert" }`,
				`saslcert_component = "certs.example.org"`,
				`Component "certs.example.org"`,
				`c2s_ssl = { verify = { "peer", "client_once" } }`,
				`network_settings = { nagle = false }`,
				`io.open("/etc/saslcert/component.secret")`,
				`component_ports = { 5347 }`,
			},
			notWant: []string{"delegations", `"delegation"`, "saslcert_forward"},
		},
		{
			name:    "ok/two-domains-no-delegation",
			args:    []string{"--domain", "a.example,b.example", "--component", "certs.example", "--no-delegation", "--timeout", "2500ms"},
			want:    []string{`VirtualHost "a.example"`, `VirtualHost "b.example"`, `modules_enabled = { "saslcert" }`, "saslcert_timeout = 2.5", "saslcert_lookup_burst = 50", "saslcert_lookup_rate = 5", "saslcert_forward = false"},
			notWant: []string{"delegations", `"delegation"`},
		},
		{
			name: "ok/package-defaults",
			args: []string{"--domain", "example.org", "--component", "certs.example.org"},
			want: []string{`plugin_paths = { "/usr/share/saslcert/prosody" }`, `io.open("/etc/saslcert/component.secret")`},
		},
		{
			name:    "ok/from-serve-config",
			args:    []string{"--config", serveFile},
			want:    []string{`VirtualHost "example.net"`, `VirtualHost "example.com"`, `Component "certs.example.net"`, `component_ports = { 15347 }`, `component_interfaces = { "127.0.0.1" }`},
			notWant: []string{"example.org"},
		},
		{
			name:    "ok/flags-beat-serve-config",
			args:    []string{"--config", serveFile, "--domain", "example.org", "--component-port", "5348"},
			want:    []string{`VirtualHost "example.org"`, `Component "certs.example.net"`, `component_ports = { 5348 }`},
			notWant: []string{`VirtualHost "example.net"`},
		},
		{name: "error/serve-config-without-component", args: []string{"--config", noComponent}, wantCode: exitUsage, wantErr: "--component is required"},
		{name: "error/serve-config-bad-addr", args: []string{"--config", badAddr}, wantCode: exitUsage, wantErr: `server-addr "localhost": want host:port`},
		{name: "error/serve-config-missing", args: []string{"--config", filepath.Join(dir, "nope.toml")}, wantCode: exitUsage, wantErr: "no such file"},
		{name: "error/missing-component", args: []string{"--domain", "example.org"}, wantCode: exitUsage, wantErr: "component"},
		{name: "error/component-with-localpart", args: []string{"--domain", "example.org", "--component", "a@certs.example.org"}, wantCode: exitUsage, wantErr: "--component"},
		{name: "error/domain-is-component", args: []string{"--domain", "certs.example.org", "--component", "certs.example.org"}, wantCode: exitUsage, wantErr: "JID of its own"},
		{name: "error/bad-port", args: []string{"--domain", "example.org", "--component", "c.example.org", "--component-port", "70000"}, wantCode: exitUsage, wantErr: "--component-port"},
		{name: "error/argument", args: []string{"--domain", "example.org", "--component", "c.example.org", "extra"}, wantCode: exitUsage, wantErr: "no arguments"},
		// Issue 10.5: Prosody would serve strasse.example.
		{name: "error/domain-two-forms", args: []string{"--domain", "straße.example", "--component", "certs.example.org"}, wantCode: exitUsage, wantErr: `"strasse.example" for the XMPP server`},
		{name: "error/component-two-forms", args: []string{"--domain", "example.org", "--component", "certs.straße.example"}, wantCode: exitUsage, wantErr: `--component "certs.straße.example"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			app := newApp(&stdout, &stderr, func() time.Time { return time.Unix(0, 0) })
			code := run(t.Context(), app, append([]string{"saslcert", "prosody", "config"}, tc.args...))
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.wantCode, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(stdout.String(), w) {
					t.Errorf("stdout has %q", w)
				}
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantErr)
			}
			if code == 0 {
				checkLuaSyntax(t, stdout.Bytes())
			}
		})
	}
}

// checkLuaSyntax compiles the printed configuration with the Lua that
// Prosody runs on, when it is installed.
func checkLuaSyntax(t *testing.T, cfg []byte) {
	t.Helper()
	lua, err := exec.LookPath("lua5.4")
	if err != nil {
		t.Log("lua5.4 not installed; syntax not checked")
		return
	}
	f := filepath.Join(t.TempDir(), "saslcert.cfg.lua")
	if err := os.WriteFile(f, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(lua, "-e", fmt.Sprintf("assert(loadfile(%q))", f)).CombinedOutput()
	if err != nil {
		t.Fatalf("lua5.4 cannot compile the configuration: %v\n%s", err, out)
	}
}

func TestEjabberdConfig(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "component.secret")
	if err := os.WriteFile(secretFile, []byte("s3cret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.secret")
	if err := os.WriteFile(open, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
		wantErr  string
	}{
		{
			name: "ok/one-domain",
			args: []string{"--domain", "Example.ORG", "--component", "certs.example.org", "--secret-file", secretFile, "--ca-file", "/etc/ejabberd/ca.pem"},
			want: []string{
				"# Served hosts: example.org",
				`c2s_cafile: "/etc/ejabberd/ca.pem"`,
				"tls_verify: true",
				"module: ejabberd_c2s",
				"module: ejabberd_service",
				`"certs.example.org":`,
				`password: "s3cret-value"`,
				"mod_delegation:",
				`"urn:xmpp:saslcert:1":`,
				"access: saslcert_delegation",
				"mod_saslcert:",
				`component: "certs.example.org"`,
				`secret_file: "` + secretFile + `"`,
				"timeout: 5",
				"port: 5347",
			},
		},
		{name: "error/world-readable-secret", args: []string{"--domain", "example.org", "--component", "certs.example.org", "--secret-file", open}, wantCode: exitUsage, wantErr: "chmod o-rwx"},
		{name: "error/timeout-fraction", args: []string{"--domain", "example.org", "--component", "certs.example.org", "--secret-file", secretFile, "--timeout", "2500ms"}, wantCode: exitUsage, wantErr: "whole seconds"},
		{name: "error/domain-is-component", args: []string{"--domain", "certs.example.org", "--component", "certs.example.org"}, wantCode: exitUsage, wantErr: "JID of its own"},
		{name: "error/argument", args: []string{"--domain", "example.org", "--component", "c.example.org", "extra"}, wantCode: exitUsage, wantErr: "no arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			app := newApp(&stdout, &stderr, func() time.Time { return time.Unix(0, 0) })
			code := run(t.Context(), app, append([]string{"saslcert", "ejabberd", "config"}, tc.args...))
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.wantCode, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
			if tc.wantErr != "" && !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantErr)
			}
		})
	}
}
