package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/saslcert/saslcert/plugins/ejabberd"
	"github.com/saslcert/saslcert/plugins/prosody"
)

// ejabberdCommand is the "ejabberd" group: what an ejabberd admin pastes.
func ejabberdCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "ejabberd",
		Usage:  "help with ejabberd",
		Action: groupAction,
		Subcommands: []*cli.Command{{
			Name:      "config",
			Usage:     "print the ejabberd.yml parts that attach saslcert",
			ArgsUsage: " ",
			Description: "Prints the parts to merge into ejabberd.yml (ejabberd 23.01): c2s_cafile (client certificates " +
				"must chain to --ca-file: the embedded CA's root.crt and ca.crt, or the organisation's CA), a c2s " +
				"listener with tls_verify (which offers SASL EXTERNAL), the ejabberd_service listener for the component " +
				"with its password, mod_delegation for urn:xmpp:saslcert:1, and mod_saslcert (build it with " +
				"scripts/build-ejabberd-module.sh). ejabberd.yml cannot read the password from a file, so the output " +
				"holds the secret read from --secret-file: write it to a file only ejabberd can read.",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "domain", Usage: "a served host (repeat for several)", Required: true},
				&cli.StringFlag{Name: "component", Usage: "the component's JID, e.g. certs.example.org", Required: true},
				&cli.StringFlag{Name: "secret-file", Value: "/etc/saslcert/component.secret", Usage: "file holding the component secret (first line), readable by ejabberd"},
				&cli.StringFlag{Name: "ca-file", Value: "/etc/ejabberd/saslcert-ca.pem", Usage: "c2s_cafile: PEM file of the CAs client certificates must chain to"},
				&cli.StringFlag{Name: "c2s-interface", Value: "::", Usage: "address of the c2s listener"},
				&cli.IntFlag{Name: "c2s-port", Value: 5222, Usage: "port of the c2s listener"},
				&cli.StringFlag{Name: "component-interface", Value: "127.0.0.1", Usage: "address ejabberd listens on for the component"},
				&cli.IntFlag{Name: "component-port", Value: 5347, Usage: "port ejabberd listens on for the component"},
				&cli.DurationFlag{Name: "timeout", Value: ejabberd.DefaultTimeout, Usage: "how long a login waits for the component"},
			},
			Action: func(c *cli.Context) error {
				if c.Args().Present() {
					return usageErrorf("ejabberd config takes no arguments, got %q", c.Args().First())
				}
				ec := ejabberd.Config{
					Component:          c.String("component"),
					SecretFile:         c.String("secret-file"),
					CAFile:             c.String("ca-file"),
					C2SInterface:       c.String("c2s-interface"),
					C2SPort:            c.Int("c2s-port"),
					ComponentInterface: c.String("component-interface"),
					ComponentPort:      c.Int("component-port"),
					Timeout:            c.Duration("timeout"),
					LookupBurst:        ejabberd.DefaultLookupBurst,
					LookupRate:         ejabberd.DefaultLookupRate,
				}
				for _, d := range c.StringSlice("domain") {
					ec.Domains = append(ec.Domains, strings.Split(d, ",")...)
				}
				if err := validateEjabberdConfig(&ec); err != nil {
					return usageErrorf("ejabberd config: %v", err)
				}
				// The same secret saslcert serve reads from the same file.
				secret, err := readSecret(ec.SecretFile)
				if err != nil {
					return fmt.Errorf("ejabberd config: %w", err)
				}
				ec.Secret = string(secret)
				_, err = io.WriteString(e.stdout, ec.String())
				return err
			},
		}},
	}
}

// validateEjabberdConfig checks ec with the same rules as prosody config
// (domains, component JID, ports, timeout) plus the ejabberd parts.
func validateEjabberdConfig(ec *ejabberd.Config) error {
	pc := prosody.Config{Domains: ec.Domains, Component: ec.Component, SecretFile: ec.SecretFile,
		PluginDir: "-", ComponentPort: ec.ComponentPort, Timeout: ec.Timeout}
	if err := validateProsodyConfig(&pc); err != nil {
		return err
	}
	ec.Domains, ec.Component = pc.Domains, pc.Component
	switch {
	case ec.CAFile == "":
		return errors.New("--ca-file must not be empty")
	case ec.C2SPort < 1 || ec.C2SPort > 65535:
		return fmt.Errorf("--c2s-port %d: want 1..65535", ec.C2SPort)
	case ec.Timeout%time.Second != 0:
		return fmt.Errorf("--timeout %v: ejabberd takes whole seconds", ec.Timeout)
	}
	return nil
}
