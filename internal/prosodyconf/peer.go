package prosodyconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PeerModule is Debian's (prosody-modules) mod_client_certs, the peer that
// saslcert is compared with (benchmarks) and imports from (modclientcerts).
const PeerModule = "/usr/lib/prosody/modules/mod_client_certs/mod_client_certs.lua"

// The peer's two one-line fixes (docs: /work/shared/design/PEER.md), applied
// at run time to a temporary copy of Debian's mod_client_certs.lua; the
// original is never changed and the copy is never kept.
var peerFixes = []struct{ why, old, new string }{
	{
		why: `Prosody 0.12's adhoc rejects the permission "user" (renamed "any"), which stops the module before it offers SASL EXTERNAL`,
		old: `local cmd_desc = adhoc_new("Manage certificates", "http://prosody.im/protocol/certs", adhoc_handler, "user");`,
		new: `local cmd_desc = adhoc_new("Manage certificates", "http://prosody.im/protocol/certs", adhoc_handler, "any");`,
	},
	{
		why: "util.x509.der2pem passes a float count to gsub, which Lua 5.4 refuses: every append dies; use the same PEM wrapping with an integer count",
		old: `local util_x509 = require "util.x509";`,
		new: `local util_x509 = { der2pem = function(der) local b64 = require("util.encodings").base64.encode(der); ` +
			`return "-----BEGIN CERTIFICATE-----\n" .. (b64:gsub(("."):rep(64), "%0\n", (#b64 - 1) // 64)) .. "\n-----END CERTIFICATE-----\n"; end };`,
	},
}

// PatchPeerModule copies the peer module src into dir/mod_client_certs.lua
// with both fixes applied (dir is then a plugin_paths entry). Each fix must
// match exactly one line of the original.
func PatchPeerModule(src, dir string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("the peer module: %w (install prosody-modules)", err)
	}
	s := string(b)
	for _, f := range peerFixes {
		if n := strings.Count(s, f.old); n != 1 {
			return fmt.Errorf("%s: expected the line %q once, found it %d times; this is not the module PEER.md describes", src, f.old, n)
		}
		s = strings.Replace(s, f.old, f.new, 1)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "mod_client_certs.lua"), []byte(s), 0o600)
}
