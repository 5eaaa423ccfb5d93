package modclientcerts_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/modclientcerts"
)

// TestFixture reads the files the real mod_client_certs wrote (see
// TestPeerWritesWhatWeRead): every entry, with its name and flag.
func TestFixture(t *testing.T) {
	files, err := modclientcerts.Scan(fixtureDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{} // user/name -> no-cert-management
	for _, u := range peerUploads() {
		want[u.user+"/"+u.name] = u.noMgmt
	}
	n := 0
	for _, f := range files {
		if f.Host != "example.org" {
			t.Errorf("host %q, want example.org", f.Host)
		}
		es, err := modclientcerts.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			noMgmt, ok := want[f.User+"/"+e.Name]
			switch {
			case !ok:
				t.Errorf("unexpected entry %s %q", f.User, e.Name)
			case e.Err != nil:
				t.Errorf("%s %q: %v", f.User, e.Name, e.Err)
			case e.NoCertManagement != noMgmt:
				t.Errorf("%s %q: NoCertManagement %v, want %v", f.User, e.Name, e.NoCertManagement, noMgmt)
			}
			n++
		}
	}
	if n != len(want) {
		t.Errorf("read %d entries, want %d", n, len(want))
	}
}

// entry renders one entry as the serializer does.
func entry(name string, fields ...string) string {
	return "\t[\"" + name + "\"] = {\n\t\t" + strings.Join(fields, ";\n\t\t") + ";\n\t};\n"
}

func TestParseEntries(t *testing.T) {
	der := certtest.New(t, certtest.Options{XMPPAddrs: []string{"a@example.org"}}).DER
	b64 := base64.StdEncoding.EncodeToString(der)
	other := base64.StdEncoding.EncodeToString(certtest.New(t, certtest.Options{}).DER)
	pemOf := func(s string) string {
		var b strings.Builder
		b.WriteString(`"-----BEGIN CERTIFICATE-----\n`)
		for i := 0; i < len(s); i += 64 {
			b.WriteString(s[i:min(i+64, len(s))] + `\n`)
		}
		b.WriteString(`-----END CERTIFICATE-----\n"`)
		return b.String()
	}
	tests := []struct {
		name    string
		fields  []string
		wantErr string // in Entry.Err; "" for a usable entry
		noMgmt  bool
	}{
		{"x509cert only", []string{`["x509cert"] = "` + b64 + `"`}, "", false},
		{"pem only", []string{`["pem"] = ` + pemOf(b64)}, "", false},
		{"both, flag", []string{`["x509cert"] = "` + b64 + `"`, `["pem"] = ` + pemOf(b64), `["no_cert_management"] = true`}, "", true},
		{"unquoted keys", []string{`x509cert = "` + b64 + `"`, `name = "n"`}, "", false},
		{"different certificates", []string{`["x509cert"] = "` + b64 + `"`, `["pem"] = ` + pemOf(other)}, "x509cert and pem hold different certificates", false},
		{"no certificate", []string{`["name"] = "n"`}, "has neither x509cert nor pem", false},
		{"bad base64", []string{`["x509cert"] = "@@@"`}, "x509cert is not base64", false},
		{"bad pem", []string{`["pem"] = "-----BEGIN X-----\nAA==\n-----END X-----\n"`}, "pem is not exactly one PEM CERTIFICATE block", false},
		{"wrong digest", []string{`["x509cert"] = "` + b64 + `"`, `["digest"] = "00"`}, "digest is not the SHA-1", false},
		{"unknown field", []string{`["x509cert"] = "` + b64 + `"`, `["owner"] = "x"`}, `unknown field "owner"`, false},
		{"flag not a boolean", []string{`["x509cert"] = "` + b64 + `"`, `["no_cert_management"] = 1`}, `field "no_cert_management" is a number, want a boolean`, false},
		{"name differs from key", []string{`["x509cert"] = "` + b64 + `"`, `["name"] = "other"`}, `its name field says "other"`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "n"
			es, err := modclientcerts.Parse([]byte("return {\n" + entry(name, tc.fields...) + "};\n"))
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 1 {
				t.Fatalf("%d entries, want 1", len(es))
			}
			e := es[0]
			if tc.wantErr != "" {
				var ee *modclientcerts.EntryError
				if !errors.As(e.Err, &ee) || !strings.Contains(ee.Msg, tc.wantErr) || e.DER != nil {
					t.Fatalf("Err = %v (DER %d bytes), want an *EntryError saying %q", e.Err, len(e.DER), tc.wantErr)
				}
				return
			}
			if e.Err != nil {
				t.Fatal(e.Err)
			}
			if string(e.DER) != string(der) || e.NoCertManagement != tc.noMgmt || e.Name != name {
				t.Errorf("got %q %d bytes noMgmt=%v", e.Name, len(e.DER), e.NoCertManagement)
			}
		})
	}
}

func TestParseSyntax(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // in the *SyntaxError's message
		line, col int
	}{
		{"empty", "", `want "return" at the start`, 1, 1},
		{"code", "os.exit(1)", `want "return" at the start`, 1, 1},
		{"returnx", "returnx {}", `want "return" at the start`, 1, 7},
		{"function call", "return f()", `not "f"`, 1, 8},
		{"expression", "return {} .. {}", `unexpected "." after the returned value`, 1, 11},
		{"comment", "return {} -- hi", `unexpected "-" after the returned value`, 1, 11},
		{"two statements", "return {}; return {}", `unexpected "r"`, 1, 12},
		{"not a table", `return "x"`, `returns a string`, 1, 1},
		{"unclosed string", "return {[\"a", "string not closed", 1, 12},
		{"line break in string", "return {[\"a\nb\"] = {}}", "line break inside a string", 1, 12},
		{"bad escape", `return {["\q"] = {}}`, `unknown escape \q`, 1, 12},
		{"escape too large", `return {["\256"] = {}}`, `escape \256 is larger than 255`, 1, 15},
		{"short hex escape", `return {["\x4"] = {}}`, `escape \x needs two hex digits`, 1, 13},
		{"long string", "return {[ [[a]] ] = {}}", `not "["`, 1, 11},
		{"duplicate key", "return {[\"a\"] = {};\n[\"a\"] = {}}", `key "a" appears twice`, 2, 1},
		{"table key", "return {[{}] = 1}", "a table as a key", 1, 10},
		{"boolean key", "return {[true] = 1}", "a boolean as a key", 1, 9},
		{"number key at top", "return {[1] = {}}", "key 1: want certificate names", 1, 9},
		{"missing separator", `return {["a"] = {} ["b"] = {}}`, `want ";", "," or "}" after a field, not "["`, 1, 20},
		{"missing equals", `return {["a"] {}}`, `want "=" after the key`, 1, 15},
		{"hex number", "return {[\"a\"] = 0x10}", `"x" inside a number`, 1, 18},
		{"plus number", "return {[\"a\"] = +1}", `not "+"`, 1, 17},
		{"nil", "return {[\"a\"] = nil}", `not "nil"`, 1, 17},
		{"control char", "return {[\"a\x01\"] = {}}", "control character 0x01", 1, 12},
		{"unclosed table", "return {", `want a string, number, boolean or table, not end of file`, 1, 9},
		{"too deep", "return {[\"a\"] = " + strings.Repeat("{", modclientcerts.MaxDepth) + strings.Repeat("}", modclientcerts.MaxDepth) + "}",
			"tables nested deeper than", 1, 24},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := modclientcerts.Parse([]byte(tc.src))
			var se *modclientcerts.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse = %v, %v; want a *SyntaxError", es, err)
			}
			if !strings.Contains(se.Msg, tc.want) || se.Line != tc.line || se.Col != tc.col {
				t.Errorf("got %v, want line %d, column %d: ...%s...", se, tc.line, tc.col, tc.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	for name, src := range map[string]string{
		"empty table":         "return {};\n",
		"no semicolon":        "return {}",
		"white space":         " \t\r\n return\n{\n}\n;\n\n",
		"commas":              `return {["a"] = {["x"] = 1, [5] = true, "pos", false,},}`,
		"special numbers":     `return {["a"] = {["x"] = (1/0), ["y"] = (-1/0), ["z"] = (0/0), ["w"] = -1.5e+20}}`,
		"escapes":             `return {["\a\b\f\n\r\t\v\\\"\'\065\x41"] = {}}`,
		"single quote string": `return {['a'] = {}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := modclientcerts.Parse([]byte(src)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	big := make([]byte, modclientcerts.MaxFileSize+1)
	if _, err := modclientcerts.Parse(big); !errors.Is(err, modclientcerts.ErrTooLarge) {
		t.Fatalf("Parse = %v, want ErrTooLarge", err)
	}
	p := filepath.Join(t.TempDir(), "u.dat")
	if err := os.WriteFile(p, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := modclientcerts.ReadFile(p); !errors.Is(err, modclientcerts.ErrTooLarge) {
		t.Fatalf("ReadFile = %v, want ErrTooLarge", err)
	}
}

func TestPathEncoding(t *testing.T) {
	for _, tc := range []struct{ in, enc string }{
		{"example.org", "example%2eorg"},
		{"bob_smith", "bob%5fsmith"},
		{"Ünï", "%c3%9cn%c3%af"},
		{"a-b/c", "a%2db%2fc"},
	} {
		if got := modclientcerts.PathEncode(tc.in); got != tc.enc {
			t.Errorf("PathEncode(%q) = %q, want %q", tc.in, got, tc.enc)
		}
		if got, err := modclientcerts.PathDecode(tc.enc); err != nil || got != tc.in {
			t.Errorf("PathDecode(%q) = %q, %v", tc.enc, got, err)
		}
	}
	if got, err := modclientcerts.PathDecode("A%2Eb"); err != nil || got != "A.b" {
		t.Errorf("PathDecode upper case hex = %q, %v", got, err)
	}
	for _, bad := range []string{"a%", "a%2", "a%zz"} {
		if _, err := modclientcerts.PathDecode(bad); err == nil {
			t.Errorf("PathDecode(%q) succeeded", bad)
		}
	}
}

func TestScan(t *testing.T) {
	dir := t.TempDir()
	mk := func(rel string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("return {};\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk("b%2eorg/client_certs/zed.dat")
	mk("b%2eorg/client_certs/al%2ei.dat")
	mk("b%2eorg/client_certs/al.dat~")
	mk("a%2eorg/client_certs/x.dat")
	mk("a%2eorg/accounts/x.dat")
	mk("c%2eorg/accounts/y.dat")
	files, err := modclientcerts.Scan(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.User+"@"+f.Host)
	}
	if strings.Join(got, " ") != "x@a.org al.i@b.org zed@b.org" {
		t.Errorf("Scan = %v", got)
	}
	files, err = modclientcerts.Scan(dir, []string{"b.org"})
	if err != nil || len(files) != 2 {
		t.Errorf("Scan b.org = %v, %v", files, err)
	}
	if _, err := modclientcerts.Scan(dir, []string{"c.org"}); !errors.Is(err, modclientcerts.ErrNoStore) {
		t.Errorf("Scan c.org = %v, want ErrNoStore", err)
	}
	if _, err := modclientcerts.Scan(filepath.Join(dir, "c%2eorg"), nil); !errors.Is(err, modclientcerts.ErrNoStore) {
		t.Errorf("Scan without stores = %v, want ErrNoStore", err)
	}
	mk("b%2eorg/client_certs/bad%zz.dat")
	if _, err := modclientcerts.Scan(dir, []string{"b.org"}); err == nil || !strings.Contains(err.Error(), "not a user's file name") {
		t.Errorf("Scan with a bad name = %v", err)
	}
}
