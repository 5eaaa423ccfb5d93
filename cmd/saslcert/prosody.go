package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"

	"github.com/saslcert/saslcert/plugins/prosody"
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
				"read by Prosody from --secret-file at start; it never appears in the configuration. " +
				"The defaults are the Debian package's paths; with --config " + packageConfigFile + " the component, the domains, " +
				"the secret file and the component port are those saslcert serve uses, so the two sides agree.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "config", Usage: "saslcert serve's TOML file (the package's is " + packageConfigFile + "): its component, domain, secret-file and server-addr are used unless the matching flags are given"},
				&cli.StringSliceFlag{Name: "domain", Usage: "a served VirtualHost (repeat for several; required unless --config names them)"},
				&cli.StringFlag{Name: "component", Usage: "the component's JID, e.g. certs.example.org (required unless --config names it)"},
				&cli.StringFlag{Name: "secret-file", Value: packageSecretFile, Usage: "file holding the component secret (first line), readable by Prosody (the package makes it root:prosody 0640)"},
				&cli.StringFlag{Name: "plugin-dir", Value: packagePluginDir, Usage: "directory holding the plugin's files (mod_saslcert.lua and its saslcert_*.lib.lua parts; the package installs them here)"},
				&cli.StringFlag{Name: "component-interface", Value: "127.0.0.1", Usage: "address Prosody listens on for components (--config: the host of server-addr)"},
				&cli.IntFlag{Name: "component-port", Value: 5347, Usage: "port Prosody listens on for components, saslcert serve's --server-addr port (--config: the port of server-addr)"},
				&cli.DurationFlag{Name: "timeout", Value: prosody.DefaultTimeout, Usage: "how long a login waits for the component"},
				&cli.BoolFlag{Name: "no-delegation", Usage: "do not forward XEP-0257 requests sent to the account or the server (clients must then address the component JID)"},
			},
			Action: func(c *cli.Context) error {
				if c.Args().Present() {
					return usageErrorf("prosody config takes no arguments, got %q", c.Args().First())
				}
				// The lookup limits are printed with the plugin's defaults so
				// that admins see and can raise them.
				pc := prosody.Config{
					Component:          c.String("component"),
					SecretFile:         c.String("secret-file"),
					PluginDir:          c.String("plugin-dir"),
					ComponentInterface: c.String("component-interface"),
					ComponentPort:      c.Int("component-port"),
					Timeout:            c.Duration("timeout"),
					LookupBurst:        prosody.DefaultLookupBurst,
					LookupRate:         prosody.DefaultLookupRate,
					NoForward:          c.Bool("no-delegation"),
				}
				for _, d := range c.StringSlice("domain") {
					pc.Domains = append(pc.Domains, strings.Split(d, ",")...)
				}
				if path := c.String("config"); path != "" {
					if err := prosodyConfigFromFile(c, path, &pc); err != nil {
						return usageErrorf("prosody config: %v", err)
					}
				}
				if err := validateProsodyConfig(&pc); err != nil {
					return usageErrorf("prosody config: %v", err)
				}
				_, err := io.WriteString(e.stdout, pc.String())
				return err
			},
		}},
	}
}

// The paths the Debian package installs (packaging/nfpm.yaml): the
// defaults of `saslcert prosody config`.
const (
	packagePluginDir  = "/usr/share/saslcert/prosody"
	packageSecretFile = "/etc/saslcert/component.secret"
	packageConfigFile = "/etc/saslcert/saslcert.toml"
)

// serveFile is the part of saslcert serve's TOML file that Prosody's
// configuration must agree with.
type serveFile struct {
	Component  string   `toml:"component"`
	Domain     []string `toml:"domain"`
	SecretFile string   `toml:"secret-file"`
	ServerAddr string   `toml:"server-addr"`
}

// prosodyConfigFromFile fills pc from serve's TOML file path, for every
// setting whose flag c does not set: component, domain, secret-file, and
// component-interface and component-port from server-addr. Other keys are
// serve's business (serve --check checks them).
func prosodyConfigFromFile(c *cli.Context, path string, pc *prosody.Config) error {
	var f serveFile
	if _, err := toml.DecodeFile(path, &f); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	if !c.IsSet("component") && f.Component != "" {
		pc.Component = f.Component
	}
	if !c.IsSet("domain") {
		for _, d := range f.Domain {
			pc.Domains = append(pc.Domains, strings.Split(d, ",")...)
		}
	}
	if !c.IsSet("secret-file") && f.SecretFile != "" {
		pc.SecretFile = f.SecretFile
	}
	if f.ServerAddr != "" {
		host, port, err := net.SplitHostPort(f.ServerAddr)
		if err != nil {
			return fmt.Errorf("--config %s: server-addr %q: want host:port", path, f.ServerAddr)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("--config %s: server-addr %q: the port is not a number", path, f.ServerAddr)
		}
		if !c.IsSet("component-interface") {
			pc.ComponentInterface = host
		}
		if !c.IsSet("component-port") {
			pc.ComponentPort = p
		}
	}
	return nil
}

// validateProsodyConfig normalises the domains and the component JID of pc
// and checks the rest, naming the flag at fault.
func validateProsodyConfig(pc *prosody.Config) error {
	switch {
	case pc.Component == "":
		return errors.New("--component is required (or a --config file that sets component)")
	case len(pc.Domains) == 0:
		return errors.New("--domain is required (or a --config file that sets domain)")
	}
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
