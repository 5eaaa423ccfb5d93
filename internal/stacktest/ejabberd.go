package stacktest

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/internal/ejabberdtest"
)

// StartEjabberd starts ejabberd 23.01 with mod_saslcert
// (internal/ejabberdtest) as a Stack's server (Options.StartServer).
// ServerOptions.ClientCAFile is its c2s_cafile: ejabberd lets a client
// certificate reach SASL EXTERNAL only if it chains to it, so self-signed
// uploads cannot log in there (CA-issued certificates can). ExtraModules,
// ExtraGlobal and Forge are Prosody's and are refused here.
func StartEjabberd(tb testing.TB, o ServerOptions) Server {
	tb.Helper()
	if len(o.ExtraModules) > 0 || o.ExtraGlobal != "" || o.Forge {
		tb.Fatal("stacktest: ExtraModules, ExtraGlobal and Forge are Prosody options; ejabberd has none of them")
	}
	return EjabberdServer(ejabberdtest.Start(tb, ejabberdtest.Options{
		Domain:      o.Domain,
		CAFile:      o.ClientCAFile,
		Timeout:     o.PluginTimeout,
		RogueJID:    o.RogueJID,
		RogueSecret: o.RogueSecret,
	}))
}

// EjabberdServer is s as a Stack's Server.
func EjabberdServer(s *ejabberdtest.Server) Server { return ejabberdServer{s} }

// Ejabberd returns the ejabberd behind s (for ejabberdctl commands); false
// if s is another server.
func Ejabberd(s Server) (*ejabberdtest.Server, bool) {
	e, ok := s.(ejabberdServer)
	return e.Server, ok
}

// ejabberdServer adapts *ejabberdtest.Server to Server.
type ejabberdServer struct{ *ejabberdtest.Server }

func (e ejabberdServer) Domain() string          { return e.Server.Domain }
func (e ejabberdServer) C2SAddr() string         { return e.Server.C2SAddr }
func (e ejabberdServer) ComponentAddr() string   { return e.Server.ComponentAddr }
func (e ejabberdServer) ComponentJID() string    { return e.Server.ComponentJID }
func (e ejabberdServer) ComponentSecret() string { return e.Server.ComponentSecret }
func (e ejabberdServer) Cert() *x509.Certificate { return e.Server.Cert }
func (e ejabberdServer) RootCAs() *x509.CertPool { return e.Server.RootCAs }

func (e ejabberdServer) AddAccount(user, password string) (string, error) {
	return e.Ctl("register", user, e.Server.Domain, password)
}

// DeleteAccount removes account (a bare JID) with ejabberdctl unregister,
// which runs ejabberd's remove_user hook (mod_saslcert tells the component).
func (e ejabberdServer) DeleteAccount(account string) (string, error) {
	user, domain, ok := strings.Cut(account, "@")
	if !ok || user == "" || domain == "" || strings.Contains(domain, "/") {
		return "", fmt.Errorf("stacktest: %q is not a bare JID", account)
	}
	return e.Ctl("unregister", user, domain)
}

// Config is the generated ejabberd.yml.
func (e ejabberdServer) Config() string {
	b, err := os.ReadFile(e.ConfigFile)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", e.ConfigFile, err)
	}
	return string(b)
}

var _ Server = ejabberdServer{}
