// Package prosody renders the Prosody 0.12 configuration that attaches
// saslcert: the global settings, one VirtualHost section per served domain
// (mod_saslcert and its options) and the Component section. The plugin
// itself is the *.lua files of this directory (mod_saslcert.lua and its
// saslcert_*.lib.lua parts); this package lives beside them so that the
// options it writes and the options the plugin reads change together.
//
// `saslcert prosody config` prints Config.String for admins, and
// internal/prosodytest starts its test servers with Config.VirtualHost and
// Config.ComponentSection, so the plugin's tests run the configuration
// admins paste. The package only renders: the caller validates domains and
// JIDs (cmd/saslcert does, with package sasl). It imports only the
// standard library.
package prosody

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Defaults of the plugin's options, as mod_saslcert.lua reads them
// (plugins/prosody/README.md lists every option).
const (
	// DefaultTimeout is saslcert_timeout's default.
	DefaultTimeout = 5 * time.Second
	// DefaultLookupBurst and DefaultLookupRate are saslcert_lookup_burst
	// and saslcert_lookup_rate's defaults: certificate lookups per client
	// address at once, then per second.
	DefaultLookupBurst = 50
	DefaultLookupRate  = 5
)

// Config is the plugin's part of a Prosody configuration. A zero field
// leaves its line out (the plugin's default applies), except where said.
// Strings are written with strconv.Quote, which Lua reads back unchanged
// as long as they hold only printable characters (as domains, JIDs and
// paths do).
type Config struct {
	// Domains are the VirtualHosts that load mod_saslcert (String writes
	// one section each).
	Domains []string
	// Component is the component's JID (saslcert_component and the
	// Component section).
	Component string
	// SecretFile holds the component secret on its first line; Prosody
	// reads it at start (component_secret), so the secret never appears in
	// the configuration.
	SecretFile string
	// PluginDir is the directory holding the plugin's *.lua files
	// (plugin_paths in Global).
	PluginDir string
	// ComponentInterface and ComponentPort are where Prosody listens for
	// the component (Global).
	ComponentInterface string
	ComponentPort      int
	// Timeout is saslcert_timeout (0: left out, DefaultTimeout).
	Timeout time.Duration
	// LookupBurst and LookupRate are saslcert_lookup_burst and
	// saslcert_lookup_rate (0: left out, the plugin's defaults).
	LookupBurst, LookupRate int
	// NoForward writes saslcert_forward = false: the plugin does not
	// forward users' XEP-0257 requests (clients address the component, or
	// mod_delegation carries them).
	NoForward bool
	// NoComponent leaves saslcert_component out, which turns the plugin
	// off (for tests of that refusal; admins never want it).
	NoComponent bool
}

// String is the whole configuration for admins: a header, Global, one
// VirtualHost section per domain and the Component section, each under a
// comment line naming it.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("-- saslcert for Prosody 0.12 (printed by `saslcert prosody config`).\n")
	b.WriteString("-- Merge each part into prosody.cfg.lua: if a setting already exists, add to it instead of repeating it.\n")
	b.WriteString("\n---------------------------------------------------------------- global section\n")
	b.WriteString(c.Global())
	for _, d := range c.Domains {
		fmt.Fprintf(&b, "\n---------------------------------------------------------------- VirtualHost %s\n", strconv.Quote(d))
		b.WriteString(c.VirtualHost(d))
	}
	b.WriteString("\n---------------------------------------------------------------- the component\n")
	b.WriteString(c.ComponentSection())
	return b.String()
}

// Global is the global section: plugin_paths, client certificates asked
// for in TLS, Nagle's algorithm off, and the component listener. A test
// server whose global section comes from elsewhere (internal/prosodyconf)
// sets the same settings there.
func (c Config) Global() string {
	var b strings.Builder
	w := writer(&b)
	w("-- where the plugin's files are (the saslcert package installs them; from source, copy plugins/prosody/*.lua there)")
	w("plugin_paths = { %s }", strconv.Quote(c.PluginDir))
	w("-- ask clients for a certificate in TLS; self-signed ones pass the handshake (Prosody's")
	w("-- default verifyext has lsec_continue) and saslcert decides at SASL EXTERNAL")
	w(`c2s_ssl = { verify = { "peer", "client_once" } }`)
	w("-- without this, every login waits ~40 ms for Nagle's algorithm and delayed ACKs")
	w("network_settings = { nagle = false }")
	w("-- the component link stays on this machine")
	w("component_interfaces = { %s }", strconv.Quote(c.ComponentInterface))
	w("component_ports = { %d }", c.ComponentPort)
	return b.String()
}

// VirtualHost is the section of domain: the line VirtualHost, then
// mod_saslcert and its options, one a line, tab-indented. Lines a caller
// appends belong to the same section.
func (c Config) VirtualHost(domain string) string {
	var b strings.Builder
	w := writer(&b)
	w("VirtualHost %s", strconv.Quote(domain))
	w("\tmodules_enabled = { \"saslcert\" }")
	if !c.NoComponent {
		w("\tsaslcert_component = %s", strconv.Quote(c.Component))
	}
	if c.Timeout > 0 {
		w("\tsaslcert_timeout = %s", strconv.FormatFloat(c.Timeout.Seconds(), 'f', -1, 64))
	}
	if c.LookupBurst > 0 || c.LookupRate > 0 {
		w("\t-- certificate lookups per client address (IPv6: per /64): this many at once, then this many a second;")
		w("\t-- raise them if many users share one address (NAT, a proxy)")
	}
	if c.LookupBurst > 0 {
		w("\tsaslcert_lookup_burst = %d", c.LookupBurst)
	}
	if c.LookupRate > 0 {
		w("\tsaslcert_lookup_rate = %d", c.LookupRate)
	}
	if c.NoForward {
		w("\t-- XEP-0257 clients must address %s themselves (or mod_delegation carries their requests)", strconv.Quote(c.Component))
		w("\tsaslcert_forward = false")
	} else {
		w("\t-- unmodified XEP-0257 clients send their requests to their own account or the server: mod_saslcert")
		w("\t-- forwards them to the component (XEP-0355 wire format; mod_delegation is not needed)")
	}
	return b.String()
}

// ComponentSection is the Component section, with component_secret read
// from SecretFile when Prosody starts. Lines a caller appends belong to
// the same section.
func (c Config) ComponentSection() string {
	var b strings.Builder
	w := writer(&b)
	w("Component %s", strconv.Quote(c.Component))
	w("\t-- the secret stays in its file (mode 0640, group prosody); saslcert serve reads the same file")
	w("\tcomponent_secret = assert(io.open(%s), \"cannot read the saslcert component secret\"):read(\"*l\")", strconv.Quote(c.SecretFile))
	return b.String()
}

// writer returns a Printf to b that ends each line.
func writer(b *strings.Builder) func(format string, a ...any) {
	return func(format string, a ...any) { fmt.Fprintf(b, format+"\n", a...) }
}
