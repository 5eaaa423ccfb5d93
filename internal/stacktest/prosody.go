package stacktest

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/saslcert/saslcert/internal/prosodytest"
)

// StartProsody starts Prosody with the saslcert plugin (internal/prosodytest)
// as a Stack's server: Options.StartServer's default.
func StartProsody(tb testing.TB, o ServerOptions) Server {
	tb.Helper()
	po := prosodytest.Options{
		Domain:        o.Domain,
		Plugin:        true,
		PluginTimeout: o.PluginTimeout,
		ExtraModules:  o.ExtraModules,
		ExtraGlobal:   o.ExtraGlobal,
	}
	if o.Forge {
		dir := tb.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "mod_stacktest_forge.lua"), []byte(forgeModule), 0o600); err != nil {
			tb.Fatal(err)
		}
		// Prosody adds installer_plugin_path to its plugin paths; setting
		// it (rather than plugin_paths again) avoids a duplicate option,
		// on which Prosody 0.12's config reader fails for long paths.
		po.ExtraGlobal += fmt.Sprintf("\ninstaller_plugin_path = %q", dir)
		po.ExtraModules = append(append([]string(nil), po.ExtraModules...), "stacktest_forge")
	}
	if o.RogueJID != "" {
		// A Component section must come last in the global part: the
		// lines after it belong to it, up to the VirtualHost.
		po.ExtraGlobal += fmt.Sprintf("\nComponent %q\n\tcomponent_secret = %q", o.RogueJID, o.RogueSecret)
	}
	return ProsodyServer(prosodytest.Start(tb, po))
}

// ProsodyServer is s as a Stack's Server.
func ProsodyServer(s *prosodytest.Server) Server { return prosodyServer{s} }

// Prosody returns the Prosody behind s, for what only Prosody can do
// (prosodyctl shell commands); false if s is another server.
func Prosody(s Server) (*prosodytest.Server, bool) {
	p, ok := s.(prosodyServer)
	return p.Server, ok
}

// prosodyServer adapts *prosodytest.Server to Server.
type prosodyServer struct{ *prosodytest.Server }

func (p prosodyServer) Domain() string          { return p.Server.Domain }
func (p prosodyServer) C2SAddr() string         { return p.Server.C2SAddr }
func (p prosodyServer) ComponentAddr() string   { return p.Server.ComponentAddr }
func (p prosodyServer) ComponentJID() string    { return p.Server.ComponentJID }
func (p prosodyServer) ComponentSecret() string { return p.Server.ComponentSecret }
func (p prosodyServer) Cert() *x509.Certificate { return p.Server.Cert }
func (p prosodyServer) RootCAs() *x509.CertPool { return p.Server.RootCAs }
func (p prosodyServer) AddAccount(user, password string) (string, error) {
	return p.Prosodyctl("register", user, p.Server.Domain, password)
}

func (p prosodyServer) DeleteAccount(account string) (string, error) {
	return p.Prosodyctl("deluser", account)
}

// Config is the generated prosody.cfg.lua.
func (p prosodyServer) Config() string {
	b, err := os.ReadFile(p.ConfigFile)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.ConfigFile, err)
	}
	return string(b)
}

var _ Server = prosodyServer{}
