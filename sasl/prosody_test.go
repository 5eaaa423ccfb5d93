package sasl

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/xdg-go/stringprep"
)

// prosodyPrepScript reads "<profile> <hex>" lines and prints Prosody's
// stringprep of each (non-strict, as util.jid.prep calls it) in hex, or "-"
// where Prosody refuses it.
const prosodyPrepScript = `
package.cpath = arg[1] .. "/?.so;" .. package.cpath
local sp = require "util.encodings".stringprep
local out = {}
for line in io.lines() do
	local profile, h = line:match("^(%a+) (%x*)$")
	local s = h:gsub("%x%x", function (x) return string.char(tonumber(x, 16)) end)
	local r = sp[profile](s)
	out[#out + 1] = r and (r:gsub(".", function (c) return string.format("%02x", c:byte()) end)) or "-"
end
io.write(table.concat(out, "\n"), "\n")
`

// prosodyLibDir finds Prosody's library directory (CFG_SOURCEDIR in the
// prosody launcher) and a Lua interpreter, or skips (fails under
// SASLCERT_REQUIRE_PROSODY).
func prosodyLibDir(t *testing.T) (lua, dir string) {
	t.Helper()
	missing := func(why string) {
		if os.Getenv("SASLCERT_REQUIRE_PROSODY") != "" {
			t.Fatalf("SASLCERT_REQUIRE_PROSODY is set but %s", why)
		}
		t.Skip(why)
	}
	launcher, err := exec.LookPath("prosody")
	if err != nil {
		missing("prosody is not on PATH")
	}
	b, err := os.ReadFile(launcher)
	if err != nil {
		missing(err.Error())
	}
	m := regexp.MustCompile(`(?m)^CFG_SOURCEDIR\s*=\s*'([^']+)'`).FindSubmatch(b)
	if m == nil {
		missing("no CFG_SOURCEDIR in " + launcher)
	}
	dir = string(m[1])
	if _, err := os.Stat(filepath.Join(dir, "util", "encodings.so")); err != nil {
		missing(err.Error())
	}
	for _, name := range []string{"lua5.4", "lua5.3", "lua5.2", "lua5.1", "lua"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, dir
		}
	}
	missing("no Lua interpreter")
	return "", ""
}

// TestStringprepMatchesProsody compares this package's RFC 3920 profiles
// with Prosody's own (util.encodings, libidn or ICU) on every code point of
// planes 0-2 and 14-16 alone and on words that matter: wherever prep accepts an
// input, Prosody must prepare it to the same string. (prep refuses more
// than Prosody: code points unassigned in Unicode 3.2, which Prosody lets
// through; that is the conservative side.)
func TestStringprepMatchesProsody(t *testing.T) {
	lua, dir := prosodyLibDir(t)
	profiles := []struct {
		name string
		p    stringprep.Profile
	}{{"nodeprep", nodeprep}, {"nameprep", nameprep}, {"resourceprep", resourceprep}}
	var inputs []string
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r == 0x30000 {
			r = 0xE0000 // planes 3-13 were all unassigned in Unicode 3.2
		}
		if !utf8.ValidRune(r) {
			continue
		}
		inputs = append(inputs, string(r))
	}
	inputs = append(inputs, "straße", "STRASSE", "σοφίας", "ΟΔΟΣ", "İstanbul", "ǅemal", "ﬀoo", "ａｌｉｃｅ",
		"Ꭰ", "x\u0301", "e\u0301\u0323", "\u05d0\u05d1", "\u05d0a", "a\u0627", "\u0627\u0661", "x\u200dy",
		"\u1100\u1161", "한국", "日本語", "bücher.example", "xn--bcher-kva.example", "a b")
	var in bytes.Buffer
	for _, p := range profiles {
		for _, s := range inputs {
			fmt.Fprintf(&in, "%s %x\n", p.name, s)
		}
	}
	script := filepath.Join(t.TempDir(), "prep.lua")
	if err := os.WriteFile(script, []byte(prosodyPrepScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lua, script, dir)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", lua, err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<16), 1<<16)
	mismatches, accepted := 0, 0
	for _, p := range profiles {
		for _, s := range inputs {
			if !sc.Scan() {
				t.Fatalf("Prosody's answers end early: %v", sc.Err())
			}
			got, err := prep(p.p, s)
			if err != nil {
				continue
			}
			accepted++
			theirs := "(refused)"
			if line := sc.Text(); line != "-" {
				b, _ := hex.DecodeString(line)
				theirs = string(b)
			}
			if got != theirs {
				mismatches++
				if mismatches <= 20 {
					t.Errorf("%s(%+q): here %+q, Prosody %+q", p.name, s, got, theirs)
				}
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("%d mismatches", mismatches)
	}
	t.Logf("%d inputs x %d profiles; %d accepted here, all prepared as Prosody does (%s)", len(inputs), len(profiles), accepted, strings.TrimSpace(dir))
}
