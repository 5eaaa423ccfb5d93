package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/lifecycle"
	"github.com/saslcert/saslcert/storage"
)

const certIssueDescription = `Has the embedded CA in DATA-DIR/ca sign the certificate signing request FILE
(PEM, or - for standard input) for the account --jid, and stores the issued
certificate in DATA-DIR/` + DBFile + ` with source "enrolled", so that the
account can log in with it (SASL EXTERNAL) and sees it in its XEP-0257 list.

The certificate names the account --jid and no one else, whatever the
request asks for: as its xmppAddr, and as its email address (rfc822Name) and
CN for clients that read those; a request that asks for any other name is
refused. It has EKU clientAuth and is valid for --lifetime. A running "saslcert serve" renews
it like any enrolled certificate.

The issued certificate and the issuing CA's certificate are written as PEM to
--out (default: standard output; the summary then goes to standard error).

Exit status: 0 issued and stored; 1 refused (a request for another name, a
weak key, a name already in use, too many certificates, no CA); 2 wrong
usage.`

// certIssueCommand is "cert issue".
func certIssueCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "issue",
		Usage:       "issue a certificate from a CSR with the embedded CA and store it for an account",
		ArgsUsage:   " ",
		Description: certIssueDescription,
		Flags: []cli.Flag{
			dataDirFlag(),
			storeFlag(),
			storePasswordFlag(),
			&cli.StringFlag{Name: "jid", Usage: "the account (bare JID) the certificate is for", Required: true},
			&cli.StringFlag{Name: "csr", Usage: "PEM certificate signing request `FILE` (- for standard input)", Required: true},
			&cli.StringFlag{Name: "name", Usage: "name to store the certificate under (default: CA-issued <time>)"},
			&cli.DurationFlag{Name: "lifetime", Value: enroll.DefaultLifetime, Usage: "how long the certificate is valid"},
			&cli.BoolFlag{Name: "no-cert-management", Usage: "sessions that log in with it may not manage certificates"},
			&cli.IntFlag{Name: "max-certs", Value: enroll.DefaultMaxPerAccount, Usage: "active certificates the account may have"},
			&cli.StringFlag{Name: "crl-url", Usage: "CRL distribution point to write into the certificate (as serve's --crl-url)"},
			&cli.StringFlag{Name: "out", Value: "-", Usage: "write the certificate chain (PEM) to `FILE` (- for standard output)"},
		},
		Action: e.certIssue,
	}
}

func (e *env) certIssue(c *cli.Context) error {
	name := c.Command.HelpName
	if c.Args().Present() {
		return usageErrorf("%s: unexpected argument %q; see '%s --help'", name, c.Args().First(), name)
	}
	account, err := parseAccount(c.String("jid"))
	if err != nil {
		return usageErrorf("%s: %v", name, err)
	}
	lifetime := c.Duration("lifetime")
	if lifetime < enroll.MinLifetime || lifetime > enroll.MaxLifetime {
		return usageErrorf("%s: --lifetime %s: want between %s and %s", name, lifetime, enroll.MinLifetime, enroll.MaxLifetime)
	}
	if c.Int("max-certs") < 1 {
		return usageErrorf("%s: --max-certs %d: want a positive number", name, c.Int("max-certs"))
	}
	var csrData []byte
	if f := c.String("csr"); f == "-" {
		csrData, err = io.ReadAll(io.LimitReader(c.App.Reader, enroll.MaxCSRSize+1))
	} else {
		csrData, err = os.ReadFile(f)
	}
	if err != nil {
		return usageErrorf("%s: --csr: %v", name, err)
	}
	csr, err := enroll.ParseCSR(string(csrData))
	if err != nil {
		return usageErrorf("%s: --csr: %s", name, refusalText(err))
	}
	dir, err := caDir(c)
	if err != nil {
		return err
	}
	ca, err := localca.Load(dir, localca.Options{Now: e.now, CRLURL: c.String("crl-url")})
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v (create the CA with 'saslcert ca init')", name, err), exitFailure)
	}
	db, target, err := e.openStore(c.Context, c.String("store"), adminStoreOpts(c, false))
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: open %s: %v", name, target, err), exitFailure)
	}
	defer db.Close()
	dbPath := target.String()
	svc, err := enroll.NewService(enroll.ServiceConfig{
		Store:         lifecycle.New(db, e.log),
		Issuers:       map[string]enroll.Issuer{enroll.EmbeddedIssuer: ca},
		Policies:      enroll.Policies{account.Domainpart(): {Issuer: enroll.EmbeddedIssuer, Lifetime: lifetime, AllowSelfSigned: true}},
		MaxPerAccount: c.Int("max-certs"),
		Now:           e.now,
		Logger:        slog.New(warnOnly{e.log.Handler()}), // the summary says what was issued
	})
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
	}
	res, err := svc.Enroll(c.Context, &enroll.EnrollRequest{
		Account:          account,
		Actor:            "cli",
		Name:             c.String("name"),
		CSR:              csr,
		NoCertManagement: c.Bool("no-cert-management"),
		Lifetime:         lifetime,
	})
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %s", name, refusalText(err)), exitFailure)
	}
	var chain bytes.Buffer
	for _, der := range res.Chain {
		chain.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	summary := e.stdout
	if out := c.String("out"); out == "-" {
		summary = e.stderr
		if _, err := e.stdout.Write(chain.Bytes()); err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
		}
	} else if err := os.WriteFile(out, chain.Bytes(), 0o644); err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v (the certificate is stored as %q)", name, err, res.Record.Name), exitFailure)
	}
	r := res.Record
	fmt.Fprintf(summary, "issued %q for %s, valid until %s\n", r.Name, r.Account, r.NotAfter.UTC().Format(time.RFC3339))
	fmt.Fprintf(summary, "  %s, stored in %s (source %s)\n", r.Fingerprint, dbPath, r.Source)
	return nil
}

// warnOnly passes on warnings and errors only.
type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}
func (h warnOnly) WithAttrs(a []slog.Attr) slog.Handler { return warnOnly{h.Handler.WithAttrs(a)} }
func (h warnOnly) WithGroup(n string) slog.Handler      { return warnOnly{h.Handler.WithGroup(n)} }

// refusalText is what a refused issuance tells the admin: the storage
// refusals in the command's words, an enroll error's Detail (enroll.KindOf),
// anything else as is.
func refusalText(err error) string {
	switch {
	case errors.Is(err, storage.ErrNameTaken):
		return "a certificate with that name already exists for the account; choose another --name"
	case errors.Is(err, storage.ErrLimit):
		return "the account has as many active certificates as allowed (--max-certs); disable or revoke one first"
	case errors.Is(err, storage.ErrAccountDeleted):
		return "the server deleted this account; a running component lifts this once the name is registered again"
	}
	if _, detail, ok := enroll.KindOf(err); ok {
		return detail
	}
	return err.Error()
}
