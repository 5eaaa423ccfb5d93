package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/storage"
)

// caSubdir is where the embedded CA lives inside the data directory.
const caSubdir = "ca"

// defaultDataDir is --data-dir's default, serve's and the other commands'.
const defaultDataDir = "/var/lib/saslcert"

// dataDirFlag is the --data-dir flag of the commands that use the data
// directory.
func dataDirFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "data-dir",
		Value:   defaultDataDir,
		Usage:   "saslcert's data directory (the embedded CA is in its subdirectory " + caSubdir + ")",
		EnvVars: []string{"SASLCERT_DATA_DIR"},
	}
}

// caDir returns the embedded CA's directory from --data-dir.
func caDir(c *cli.Context) (string, error) {
	d := c.String("data-dir")
	if d == "" {
		return "", usageErrorf("%s: --data-dir must not be empty; see '%s --help'", c.Command.HelpName, c.Command.HelpName)
	}
	return filepath.Join(d, caSubdir), nil
}

// caCommand is the "ca" group: the embedded CA.
func caCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "ca",
		Usage:  "manage the embedded CA that issues client certificates",
		Action: groupAction,
		Subcommands: []*cli.Command{
			caInitCommand(e),
			caCRLCommand(e),
		},
	}
}

const caInitDescription = `Creates the embedded CA in DATA-DIR/ca: a root CA and an issuing CA (ECDSA
P-256). Private keys are written 0600 (PKCS#8 PEM), certificates 0644; the
directory is created 0700. An existing CA is never overwritten.

Give XMPP servers DATA-DIR/ca/root.crt as their client-CA file to accept
certificates this CA issues.

Exit status: 0 created; 1 a CA already exists there or it could not be
written; 2 wrong usage.`

// caInitCommand is "ca init".
func caInitCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "init",
		Usage:       "create the embedded CA (root and issuing CA) in the data directory",
		Description: caInitDescription,
		Flags: []cli.Flag{
			dataDirFlag(),
			&cli.StringFlag{Name: "name", Value: localca.DefaultName, Usage: "prefix of the CAs' common names"},
		},
		Action: e.caInit,
	}
}

func (e *env) caInit(c *cli.Context) error {
	name := c.Command.HelpName
	if c.Args().Present() {
		return usageErrorf("%s: unexpected argument %q; see '%s --help'", name, c.Args().First(), name)
	}
	dir, err := caDir(c)
	if err != nil {
		return err
	}
	if strings.TrimSpace(c.String("name")) == "" {
		return usageErrorf("%s: --name is empty", name)
	}
	// An existing CA (localca.ErrExist) is a "no" like any other failure.
	if err := localca.Init(dir, localca.InitOptions{Name: c.String("name"), Now: e.now}); err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
	}
	ca, err := localca.Load(dir, localca.Options{Now: e.now})
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
	}
	e.log.Debug("embedded CA created", "dir", dir, "root", storage.FingerprintOf(ca.Root().Raw).String())
	fmt.Fprintf(e.stdout, "created the embedded CA in %s\n", dir)
	for _, x := range []struct {
		label, file string
		cert        *x509.Certificate
	}{
		{"root CA", localca.RootCertFile, ca.Root()},
		{"issuing CA", localca.CertFile, ca.Cert()},
	} {
		fmt.Fprintf(e.stdout, "  %-11s %s (%s), valid until %s\n", x.label+":", x.cert.Subject, filepath.Join(dir, x.file),
			x.cert.NotAfter.UTC().Format(time.DateOnly))
		fmt.Fprintf(e.stdout, "  %-11s %s\n", "", storage.FingerprintOf(x.cert.Raw))
	}
	fmt.Fprintf(e.stdout, "XMPP servers that should accept its certificates need %s as client CA.\n",
		filepath.Join(dir, localca.RootCertFile))
	return nil
}

const caCRLDescription = `Writes the embedded CA's current CRL, signed by its issuing CA: every revoked
certificate that has not expired, with a CRL number that grows with each new
CRL and a nextUpdate 24 hours after it was made. The same CRL is served over
HTTP by "saslcert serve"; this command is for servers that read a CRL file
(e.g. Prosody with verifyext = { "crl_check" }).

Exit status: 0 written; 1 no CA or the CRL could not be made or written;
2 wrong usage.`

// caCRLCommand is "ca crl".
func caCRLCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "crl",
		Usage:       "write the embedded CA's current CRL (PEM or DER)",
		Description: caCRLDescription,
		Flags: []cli.Flag{
			dataDirFlag(),
			&cli.StringFlag{Name: "out", Value: "-", Usage: "write the CRL to `FILE` (- for standard output)"},
			&cli.StringFlag{Name: "format", Value: "pem", Usage: "pem or der"},
		},
		Action: e.caCRL,
	}
}

func (e *env) caCRL(c *cli.Context) error {
	name := c.Command.HelpName
	if c.Args().Present() {
		return usageErrorf("%s: unexpected argument %q; see '%s --help'", name, c.Args().First(), name)
	}
	format := c.String("format")
	if format != "pem" && format != "der" {
		return usageErrorf("%s: --format %q: want pem or der", name, format)
	}
	dir, err := caDir(c)
	if err != nil {
		return err
	}
	ca, err := localca.Load(dir, localca.Options{Now: e.now})
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v (create the CA with 'saslcert ca init')", name, err), exitFailure)
	}
	der, err := ca.CRL(c.Context)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
	}
	out := der
	if format == "pem" {
		out = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	}
	if path := c.String("out"); path != "-" {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
		}
		fmt.Fprintf(e.stdout, "wrote CRL number %s (%d revoked, next update %s) to %s\n", crl.Number,
			len(crl.RevokedCertificateEntries), crl.NextUpdate.UTC().Format(time.RFC3339), path)
		return nil
	}
	if _, err := e.stdout.Write(out); err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
	}
	return nil
}
