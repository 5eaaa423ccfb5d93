package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/saslcert/saslcert/sasl"
)

// prosodyCommand is the "prosody" group: what a Prosody admin pastes.
func prosodyCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "prosody",
		Usage:  "help with Prosody",
		Action: groupAction,
		Subcommands: []*cli.Command{{
			Name:      "config",
			Usage:     "print the Prosody configuration that attaches saslcert",
			ArgsUsage: " ",
			Description: "Prints the blocks to paste into prosody.cfg.lua: the global settings (client certificates " +
				"requested in TLS, the plugin path, the component port), what each VirtualHost needs (mod_saslcert, " +
				"which also forwards users' urn:xmpp:saslcert:1 requests to the component in the XEP-0355 wire format; " +
				"mod_delegation is not needed) and the Component section. The component secret is " +
				"read by Prosody from --secret-file at start; it never appears in the configuration.",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "domain", Usage: "a served VirtualHost (repeat for several)", Required: true},
				&cli.StringFlag{Name: "component", Usage: "the component's JID, e.g. certs.example.org", Required: true},
				&cli.StringFlag{Name: "secret-file", Value: "/etc/saslcert/component.secret", Usage: "file holding the component secret (first line), readable by Prosody"},
				&cli.StringFlag{Name: "plugin-dir", Value: "/usr/local/lib/saslcert/prosody", Usage: "directory holding mod_saslcert.lua"},
				&cli.StringFlag{Name: "component-interface", Value: "127.0.0.1", Usage: "address Prosody listens on for components"},
				&cli.IntFlag{Name: "component-port", Value: 5347, Usage: "port Prosody listens on for components"},
				&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "how long a login waits for the component"},
				&cli.BoolFlag{Name: "no-delegation", Usage: "do not forward XEP-0257 requests sent to the account or the server (clients must then address the component JID)"},
			},
			Action: func(c *cli.Context) error {
				if c.Args().Present() {
					return usageErrorf("prosody config takes no arguments, got %q", c.Args().First())
				}
				pc := prosodyConfig{
					Component:          c.String("component"),
					SecretFile:         c.String("secret-file"),
					PluginDir:          c.String("plugin-dir"),
					ComponentInterface: c.String("component-interface"),
					ComponentPort:      c.Int("component-port"),
					Timeout:            c.Duration("timeout"),
					Delegation:         !c.Bool("no-delegation"),
				}
				for _, d := range c.StringSlice("domain") {
					pc.Domains = append(pc.Domains, strings.Split(d, ",")...)
				}
				if err := pc.validate(); err != nil {
					return usageErrorf("prosody config: %v", err)
				}
				_, err := io.WriteString(e.stdout, pc.String())
				return err
			},
		}},
	}
}

// prosodyConfig is what `saslcert prosody config` prints.
// The plugin's defaults for saslcert_lookup_burst and saslcert_lookup_rate
// (mod_saslcert.lua), printed so that admins see and can raise them.
const (
	defaultLookupBurst = 50
	defaultLookupRate  = 5
)

type prosodyConfig struct {
	Domains            []string
	Component          string
	SecretFile         string
	PluginDir          string
	ComponentInterface string
	ComponentPort      int
	Timeout            time.Duration
	Delegation         bool
}

// validate normalises the domains and the component JID and checks the rest.
func (pc *prosodyConfig) validate() error {
	comp, err := sasl.ParseJID(pc.Component)
	if errors.Is(err, sasl.ErrJIDForms) {
		return fmt.Errorf("--component %q: %w", pc.Component, err)
	}
	if err != nil || comp.Localpart() != "" || comp.Resourcepart() != "" {
		return fmt.Errorf("--component %q: want a domain JID such as certs.example.org", pc.Component)
	}
	pc.Component = comp.String()
	for i, d := range pc.Domains {
		j, err := sasl.ParseJID(strings.TrimSpace(d))
		if errors.Is(err, sasl.ErrJIDForms) {
			return fmt.Errorf("--domain %q: %w", d, err)
		}
		if err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
			return fmt.Errorf("--domain %q: want a domain such as example.org", d)
		}
		if j.String() == pc.Component {
			return fmt.Errorf("--domain %q: the component needs a JID of its own", d)
		}
		pc.Domains[i] = j.String()
	}
	switch {
	case pc.SecretFile == "":
		return fmt.Errorf("--secret-file must not be empty")
	case pc.PluginDir == "":
		return fmt.Errorf("--plugin-dir must not be empty")
	case pc.ComponentPort < 1 || pc.ComponentPort > 65535:
		return fmt.Errorf("--component-port %d: want 1..65535", pc.ComponentPort)
	case pc.Timeout < time.Second:
		return fmt.Errorf("--timeout %v: want at least 1s", pc.Timeout)
	}
	return nil
}

// String renders the configuration as Prosody Lua.
func (pc prosodyConfig) String() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	q := strconv.Quote
	w("-- saslcert for Prosody 0.12 (printed by `saslcert prosody config`).")
	w("-- Merge each part into prosody.cfg.lua: if a setting already exists, add to it instead of repeating it.")
	w("")
	w("---------------------------------------------------------------- global section")
	w("-- where mod_saslcert.lua is (copy plugins/prosody/mod_saslcert.lua there)")
	w("plugin_paths = { %s }", q(pc.PluginDir))
	w("-- ask clients for a certificate in TLS; self-signed ones pass the handshake (Prosody's")
	w("-- default verifyext has lsec_continue) and saslcert decides at SASL EXTERNAL")
	w(`c2s_ssl = { verify = { "peer", "client_once" } }`)
	w("-- without this, every login waits ~40 ms for Nagle's algorithm and delayed ACKs")
	w("network_settings = { nagle = false }")
	w("-- the component link stays on this machine")
	w("component_interfaces = { %s }", q(pc.ComponentInterface))
	w("component_ports = { %d }", pc.ComponentPort)
	for _, d := range pc.Domains {
		w("")
		w("---------------------------------------------------------------- VirtualHost %s", q(d))
		w("VirtualHost %s", q(d))
		w("\tmodules_enabled = { \"saslcert\" }")
		w("\tsaslcert_component = %s", q(pc.Component))
		w("\tsaslcert_timeout = %s", strconv.FormatFloat(pc.Timeout.Seconds(), 'f', -1, 64))
		w("\t-- certificate lookups per client address (IPv6: per /64): this many at once, then this many a second;")
		w("\t-- raise them if many users share one address (NAT, a proxy)")
		w("\tsaslcert_lookup_burst = %d", defaultLookupBurst)
		w("\tsaslcert_lookup_rate = %d", defaultLookupRate)
		if pc.Delegation {
			w("\t-- unmodified XEP-0257 clients send their requests to their own account or the server: mod_saslcert")
			w("\t-- forwards them to the component (XEP-0355 wire format; mod_delegation is not needed)")
		} else {
			w("\t-- XEP-0257 clients must address %s themselves", q(pc.Component))
			w("\tsaslcert_forward = false")
		}
	}
	w("")
	w("---------------------------------------------------------------- the component")
	w("Component %s", q(pc.Component))
	w("\t-- the secret stays in its file (mode 0640, group prosody); saslcert serve reads the same file")
	w("\tcomponent_secret = assert(io.open(%s), \"cannot read the saslcert component secret\"):read(\"*l\")", q(pc.SecretFile))
	return b.String()
}
