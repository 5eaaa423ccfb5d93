package ejabberd_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/internal/ejabberdtest"
)

// TestProtocolFixtures runs the Erlang module's protocol code
// (mod_saslcert_proto, compiled by scripts/build-ejabberd-module.sh) over
// every file of testdata/pluginproto with fixtures.escript: what the module
// sends must encode to the file (up to quoting, attribute order and white
// space: the MAC of stamp.xml included), what it reads must decode to the
// documented value, and every file needs a case.
func TestProtocolFixtures(t *testing.T) {
	ejabberdtest.Skip(t)
	mods := ejabberdtest.BuildModule(t)
	fixtures := filepath.Join(ejabberdtest.RepoRoot(), "testdata", "pluginproto")
	out, err := exec.Command("escript", "fixtures.escript", filepath.Join(mods, "mod_saslcert", "ebin"), fixtures).CombinedOutput()
	if err != nil {
		t.Fatalf("fixtures.escript: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			t.Fatalf("unexpected output line %q\n%s", line, out)
		}
		kind, file, rest := f[0], f[1], f[2]
		seen[file] = true
		t.Run(file, func(t *testing.T) {
			switch kind {
			case "ENC":
				want, err := os.ReadFile(filepath.Join(fixtures, file))
				if err != nil {
					t.Fatal(err)
				}
				if got, w := canon(t, []byte(rest)), canon(t, want); got != w {
					t.Errorf("the module encodes\n  %s\nthe fixture is\n  %s", got, w)
				}
			case "DEC":
				if rest != "ok" {
					t.Error(rest)
				}
			case "SKIP":
				t.Logf("not used by the module: %s", rest)
			default:
				t.Fatalf("unknown line %q", line)
			}
		})
	}
	entries, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".xml") && !seen[e.Name()] {
			t.Errorf("fixture %s has no case in fixtures.escript", e.Name())
		}
	}
}

// canon is XML in a form that compares equal whatever the quoting,
// attribute order, namespace declarations and white space between elements.
func canon(t *testing.T, b []byte) string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var out strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out.String()
		}
		if err != nil {
			t.Fatalf("canon: %v in %s", err, b)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			var attrs []string
			for _, a := range tok.Attr {
				if a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
					attrs = append(attrs, a.Name.Local+"="+a.Value)
				}
			}
			slices.Sort(attrs)
			fmt.Fprintf(&out, "<{%s}%s %s>", tok.Name.Space, tok.Name.Local, strings.Join(attrs, " "))
		case xml.EndElement:
			fmt.Fprintf(&out, "</%s>", tok.Name.Local)
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); s != "" {
				out.WriteString(s)
			}
		}
	}
}
