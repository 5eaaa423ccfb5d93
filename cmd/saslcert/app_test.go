package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testNow is the clock of in-process tests.
var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// td is the path of the fixtures directory from this package's directory.
const td = "../../testdata/"

// runCLI runs saslcert in process with args (without the program name) at
// now, with stdin (nil: empty), and returns the exit status and output.
func runCLI(t *testing.T, now time.Time, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp(&out, &errOut, func() time.Time { return now })
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	app.Reader = stdin
	code = run(t.Context(), app, append([]string{"saslcert"}, args...))
	return code, out.String(), errOut.String()
}

// checkOutput fails t unless every want is in got, and no notWant is.
func checkOutput(t *testing.T, stream, got string, want, notWant []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q; it is:\n%s", stream, w, got)
		}
	}
	for _, w := range notWant {
		if strings.Contains(got, w) {
			t.Errorf("%s contains %q; it is:\n%s", stream, w, got)
		}
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{name: "ok/help", args: []string{"--help"}, code: exitOK, stdout: []string{"saslcert", "cert", "--log-format", "--version"}},
		// A test binary has no release version (scripts/package.sh sets one).
		{name: "ok/version", args: []string{"--version"}, code: exitOK, stdout: []string{"saslcert version devel"}},
		{name: "ok/inspect-help", args: []string{"cert", "inspect", "--help"}, code: exitOK,
			stdout: []string{"saslcert cert inspect", "--jid", "--json", "Exit status"}},
		{name: "error/no-command", args: nil, code: exitUsage,
			stderr: []string{"saslcert: saslcert: missing command (one of: cert"}},
		{name: "error/unknown-command", args: []string{"bogus"}, code: exitUsage,
			stderr: []string{`saslcert: saslcert: unknown command "bogus"`}},
		{name: "error/cert-no-subcommand", args: []string{"cert"}, code: exitUsage,
			stderr: []string{"saslcert: saslcert cert: missing command (one of: inspect"}},
		{name: "error/cert-unknown-subcommand", args: []string{"cert", "revoke-all"}, code: exitUsage,
			stderr: []string{`saslcert cert: unknown command "revoke-all"`}},
		{name: "error/unknown-global-flag", args: []string{"--bogus", "cert"}, code: exitUsage,
			stderr: []string{"saslcert: saslcert: flag provided but not defined: -bogus"}},
		{name: "error/unknown-inspect-flag", args: []string{"cert", "inspect", "--pem", td + "hamlet.der"}, code: exitUsage,
			stderr: []string{"saslcert: saslcert cert inspect: flag provided but not defined: -pem", "see 'saslcert cert inspect --help'"}},
		{name: "error/no-file", args: []string{"cert", "inspect"}, code: exitUsage,
			stderr: []string{"saslcert: saslcert cert inspect: missing FILE"}},
		{name: "error/no-file-with-jid", args: []string{"cert", "inspect", "--jid", "hamlet@shakespeare.lit"}, code: exitUsage,
			stderr: []string{"missing FILE"}},
		{name: "error/jid-missing-value", args: []string{"cert", "inspect", "--jid"}, code: exitUsage,
			stderr: []string{"flag needs an argument: -jid"}},
		{name: "error/flag-after-file", args: []string{"cert", "inspect", td + "hamlet.der", "--jid", "hamlet@shakespeare.lit"}, code: exitUsage,
			stderr: []string{`flag "--jid" after FILE`}},
		{name: "error/jid-empty", args: []string{"cert", "inspect", "--jid", "", td + "hamlet.der"}, code: exitUsage,
			stderr: []string{`--jid "": not a valid JID`}},
		{name: "error/jid-invalid", args: []string{"cert", "inspect", "--jid", "@shakespeare.lit", td + "hamlet.der"}, code: exitUsage,
			stderr: []string{`saslcert: saslcert cert inspect: --jid "@shakespeare.lit": not a valid JID`}},
		{name: "error/jid-domain", args: []string{"cert", "inspect", "--jid", "shakespeare.lit", td + "hamlet.der"}, code: exitUsage,
			stderr: []string{`--jid "shakespeare.lit": want an account, local@domain`}},
		{name: "error/jid-full", args: []string{"cert", "inspect", "--jid", "hamlet@shakespeare.lit/balcony", td + "hamlet.der"}, code: exitUsage,
			stderr: []string{`--jid "hamlet@shakespeare.lit/balcony": want a bare JID`}},
		{name: "error/log-format", args: []string{"--log-format", "xml", "cert", "inspect", td + "hamlet.der"}, code: exitUsage,
			stderr: []string{`saslcert: --log-format "xml": want text or json`}},
		{name: "error/log-level", args: []string{"--log-level", "loud", "cert", "inspect", td + "hamlet.der"}, code: exitUsage,
			stderr: []string{`saslcert: --log-level "loud": want debug, info, warn or error`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, testNow, nil, tc.args...)
			if code != tc.code {
				t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			checkOutput(t, "stdout", stdout, tc.stdout, nil)
			checkOutput(t, "stderr", stderr, tc.stderr, nil)
			if tc.code == exitUsage && !strings.HasPrefix(stderr, "saslcert: ") {
				t.Errorf("stderr does not start with \"saslcert: \": %q", stderr)
			}
			if tc.code == exitUsage && stdout != "" {
				t.Errorf("wrong usage printed to stdout:\n%s", stdout)
			}
		})
	}
}

func TestLogFlags(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			code, _, stderr := runCLI(t, testNow, nil, "--log-format", format, "--log-level", "debug", "cert", "inspect", td+"hamlet.der")
			if code != exitOK {
				t.Fatalf("exit status %d, stderr:\n%s", code, stderr)
			}
			want := map[string]string{"text": "msg=read", "json": `"msg":"read"`}[format]
			checkOutput(t, "stderr", stderr, []string{want, "certificates"}, nil)
		})
	}
	t.Run("default-level-info", func(t *testing.T) {
		_, _, stderr := runCLI(t, testNow, nil, "cert", "inspect", td+"hamlet.der")
		if stderr != "" {
			t.Errorf("stderr at the default level: %q", stderr)
		}
	})
}

// TestBinary builds the saslcert binary and checks its real exit statuses.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	bin := filepath.Join(t.TempDir(), "saslcert")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{name: "usable", args: []string{"cert", "inspect", "--jid", "hamlet@shakespeare.lit", td + "hamlet.der"}, code: 0},
		{name: "not-usable", args: []string{"cert", "inspect", "--jid", "hamlet@shakespeare.lit", td + "expired.pem"}, code: 1,
			stderr: "saslcert: 1 of 1 certificates not usable for hamlet@shakespeare.lit\n"},
		{name: "unreadable", args: []string{"cert", "inspect", td + "garbage.bin"}, code: 2,
			stderr: "saslcert: " + td + "garbage.bin: not PEM, and not one DER certificate"},
		{name: "usage", args: []string{"cert", "inspect"}, code: 2, stderr: "saslcert: saslcert cert inspect: missing FILE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.HasPrefix(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q, want it to start with %q", stderr.String(), tc.stderr)
			}
		})
	}
	// Standard input.
	der, err := os.ReadFile(td + "hamlet.der")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "cert", "inspect", "--jid", "hamlet@shakespeare.lit", "-")
	cmd.Stdin = bytes.NewReader(der)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("stdin: %v", err)
	}
	checkOutput(t, "stdout", string(out), []string{"(stdin): certificate 1 of 1", "verdict for hamlet@shakespeare.lit: usable"}, nil)
}
