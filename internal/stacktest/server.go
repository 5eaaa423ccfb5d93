package stacktest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// Server is the XMPP server a Stack runs the component against: the seam
// that lets the e2e, hostile and load suites run against another server
// unchanged. Prosody (StartProsody, over internal/prosodytest) implements
// it; a second server adds its own start function (Options.StartServer)
// and an implementation. What only one server can do (e.g. prosodyctl
// shell commands) is reached through that server's own type (Prosody).
type Server interface {
	// Addresses: the served domain, the c2s and component ports
	// ("127.0.0.1:port"), and the component's JID and secret.
	Domain() string
	C2SAddr() string
	ComponentAddr() string
	ComponentJID() string
	ComponentSecret() string

	// Cert is the server's TLS certificate, RootCAs the pool that trusts
	// it, and TLSConfig a client config trusting it that presents certs.
	Cert() *x509.Certificate
	RootCAs() *x509.CertPool
	TLSConfig(certs ...tls.Certificate) *tls.Config
	// DialC2S opens a TCP connection to the c2s port; DialClient also
	// negotiates a client session as origin with features.
	DialC2S(ctx context.Context) (net.Conn, error)
	DialClient(ctx context.Context, origin jid.JID, features ...xmpp.StreamFeature) (*xmpp.Session, error)

	// Register creates the account user@Domain (failing tb); AddAccount
	// does the same and returns what went wrong. DeleteAccount deletes
	// account (a bare JID) as the administrator's tool does and returns
	// the tool's output.
	Register(tb testing.TB, user, password string)
	AddAccount(user, password string) (output string, err error)
	DeleteAccount(account string) (output string, err error)

	// Restart stops the server and starts it again with the same
	// configuration, ports, accounts and data (failing tb if it does not
	// come back); Stop stops it (idempotent); Running reports whether it
	// runs.
	Restart(tb testing.TB)
	Stop()
	Running() bool
	// Log is the server's log so far; Config the configuration it runs.
	Log() string
	Config() string
}

// ServerOptions are what a Stack asks of the server it starts. ExtraModules
// and ExtraGlobal are in the server's own terms (Prosody: module names and
// Lua).
type ServerOptions struct {
	Domain        string
	PluginTimeout time.Duration
	ExtraModules  []string
	ExtraGlobal   string
	// Forge loads the test module that forges stanzas (RawClient.Forge).
	Forge bool
	// RogueJID and RogueSecret, if set, are a second component on the
	// server.
	RogueJID, RogueSecret string
	// ClientCAFile, if set, is a PEM file of CAs a server that verifies
	// client certificates in TLS lets them chain to (ejabberd's
	// c2s_cafile; Prosody ignores it).
	ClientCAFile string
}

// StartServerFunc starts a server for a Stack; the cleanups of tb stop it.
type StartServerFunc func(tb testing.TB, o ServerOptions) Server
