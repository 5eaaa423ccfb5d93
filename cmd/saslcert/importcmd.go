package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/progress"
	"github.com/saslcert/saslcert/lifecycle"
	"github.com/saslcert/saslcert/modclientcerts"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/backend"
	"github.com/saslcert/saslcert/xep0257"
)

// importActor is the audit actor of imported certificates.
const importActor = "import"

const importModClientCertsDescription = `Reads the certificates Prosody's community module mod_client_certs keeps
(DIR is Prosody's data directory, e.g. /var/lib/prosody: the files
<host>/client_certs/<user>.dat) and imports each as that user's certificate,
under the same name and with the same no-cert-management flag.

Every certificate goes through the checks of an XEP-0257 upload (the same
--clock-skew, --min-rsa-bits and limits as 'saslcert serve', read from the
same SASLCERT_* variables): one that fails them is refused and reported with
the text an upload would get. Nothing else is changed; what passes is added
through the life-cycle owner and audited with the actor "import", so that a
running component passes it on to the server within its
--admin-watch-interval.

Running it again is safe: certificates imported before are reported as
"already imported", not as errors.

Each certificate gets one line on standard output: "imported", "already"
(imported before), "refused" (with the reason) or "unreadable" (a file or
entry that cannot be read); then a summary. Progress is shown on standard
error when it is a terminal.

Exit status: 0 every certificate is imported (now or before); 1 some were
refused or could not be read, or the store failed; 2 wrong usage.`

func importCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "import",
		Usage:  "import client certificates from another server's store",
		Action: groupAction,
		Subcommands: []*cli.Command{{
			Name:        "mod_client_certs",
			Usage:       "import the certificates of Prosody's mod_client_certs",
			ArgsUsage:   "DIR",
			Description: importModClientCertsDescription,
			Flags: []cli.Flag{
				dataDirFlag(),
				storeFlag(),
				storePasswordFlag(),
				&cli.StringSliceFlag{Name: "host", Usage: "import only this VirtualHost's certificates (repeat for several; default: every host in DIR)"},
				&cli.DurationFlag{Name: "clock-skew", Value: sasl.DefaultPolicy().ClockSkew, Usage: "allowed clock difference at both ends of a certificate's validity", EnvVars: []string{"SASLCERT_CLOCK_SKEW"}},
				&cli.IntFlag{Name: "min-rsa-bits", Value: sasl.DefaultPolicy().MinRSABits, Usage: "smallest RSA key accepted", EnvVars: []string{"SASLCERT_MIN_RSA_BITS"}},
				&cli.IntFlag{Name: "max-certs", Value: xep0257.DefaultLimits().MaxPerAccount, Usage: "active certificates per account", EnvVars: []string{"SASLCERT_MAX_CERTS"}},
				&cli.IntFlag{Name: "max-cert-size", Value: xep0257.DefaultLimits().MaxCertSize, Usage: "bytes of base64 of one certificate", EnvVars: []string{"SASLCERT_MAX_CERT_SIZE"}},
				&cli.IntFlag{Name: "max-name-len", Value: xep0257.DefaultLimits().MaxNameLen, Usage: "characters in a certificate's name", EnvVars: []string{"SASLCERT_MAX_NAME_LEN"}},
				&cli.IntFlag{Name: "max-history", Value: xep0257.DefaultLimits().MaxHistory, Usage: "disabled and revoked certificates an account may keep", EnvVars: []string{"SASLCERT_MAX_HISTORY"}},
			},
			Action: e.importModClientCerts,
		}},
	}
}

// importTally counts the outcomes of an import.
type importTally struct{ imported, already, refused, unreadable int }

func (e *env) importModClientCerts(c *cli.Context) error {
	name := c.Command.HelpName
	for _, a := range c.Args().Tail() {
		if strings.HasPrefix(a, "-") {
			return usageErrorf("%s: %s after DIR: put the flags before DIR; see '%s --help'", name, a, name)
		}
	}
	if c.NArg() != 1 {
		return usageErrorf("%s: want exactly one argument, Prosody's data directory (e.g. /var/lib/prosody); see '%s --help'", name, name)
	}
	if c.Int("min-rsa-bits") < 2048 {
		return usageErrorf("%s: --min-rsa-bits %d: at least 2048", name, c.Int("min-rsa-bits"))
	}
	for _, f := range []string{"max-certs", "max-cert-size", "max-name-len", "max-history"} {
		if c.Int(f) < 1 {
			return usageErrorf("%s: --%s %d: want a positive number", name, f, c.Int(f))
		}
	}
	if skew := c.Duration("clock-skew"); skew < 0 || skew > maxClockSkew {
		return usageErrorf("%s: --clock-skew %v: want between 0 and %v", name, skew, maxClockSkew)
	}
	files, err := modclientcerts.Scan(c.Args().First(), c.StringSlice("host"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
	}
	db, target, err := e.openStore(c.Context, c.String("store"), adminStoreOpts(c, false))
	switch {
	case err != nil && target == (backend.Target{}):
		return usageErrorf("%s: --store: %v", name, err)
	case err != nil:
		return cli.Exit(fmt.Sprintf("%s: open the store %s: %v", name, target, err), exitFailure)
	}
	defer db.Close()
	h := &xep0257.Handler{
		Store:  lifecycle.New(db, e.log),
		Policy: sasl.Policy{ClockSkew: c.Duration("clock-skew"), MinRSABits: c.Int("min-rsa-bits")},
		Limits: xep0257.Limits{MaxCertSize: c.Int("max-cert-size"), MaxPerAccount: c.Int("max-certs"),
			MaxNameLen: c.Int("max-name-len"), MaxHistory: c.Int("max-history")},
		Now:    e.now,
		Logger: e.log,
	}
	meter := progress.New(e.stderr, "import mod_client_certs (files)", int64(len(files)))
	var t importTally
	for _, f := range files {
		if err := e.importFile(c, h, db, f, meter, &t); err != nil {
			meter.Clear()
			return err
		}
		meter.Add(1)
	}
	meter.Done()
	fmt.Fprintf(e.stdout, "%d imported, %d already imported, %d refused, %d unreadable (into %s)\n",
		t.imported, t.already, t.refused, t.unreadable, target)
	if t.refused+t.unreadable > 0 {
		return cli.Exit(fmt.Sprintf("%s: %d certificates refused and %d unreadable (see above); nothing else was changed", name, t.refused, t.unreadable), exitFailure)
	}
	return nil
}

// importFile imports one user's certificates and reports each; it returns
// an error only when the store fails (the import stops).
func (e *env) importFile(c *cli.Context, h *xep0257.Handler, db storage.Store, f modclientcerts.UserFile, meter *progress.Meter, t *importTally) error {
	report := func(what, account, certName, detail string) {
		meter.Clear()
		fmt.Fprintf(e.stdout, "%-10s %s %q: %s\n", what, printable(account), certName, printable(detail))
	}
	raw := f.User + "@" + f.Host
	account, err := sasl.ParseJID(raw)
	if err != nil || account.Localpart() == "" || account.Resourcepart() != "" {
		t.unreadable++
		report("unreadable", raw, "*", fmt.Sprintf("%s: not an account's JID: %v", f.Path, err))
		return nil
	}
	entries, err := modclientcerts.ReadFile(f.Path)
	if err != nil {
		t.unreadable++
		report("unreadable", raw, "*", err.Error())
		return nil
	}
	for _, en := range entries {
		if en.Err != nil {
			t.unreadable++
			report("unreadable", account.String(), en.Name, fmt.Sprintf("%s: %v", f.Path, en.Err))
			continue
		}
		if err := e.importOne(c, h, db, account, en, report, t); err != nil {
			return err
		}
	}
	return nil
}

// importOne imports one certificate and reports it.
func (e *env) importOne(c *cli.Context, h *xep0257.Handler, db storage.Store, account jid.JID, en modclientcerts.Entry,
	report func(what, account, certName, detail string), t *importTally) error {
	acct := account.String()
	err := h.Import(c.Context, account, en.Name, en.DER, en.NoCertManagement, importActor)
	var ae *xep0257.AppendError
	switch {
	case err == nil:
		t.imported++
		report("imported", acct, en.Name, storage.FingerprintOf(en.DER).String())
		return nil
	case !errors.As(err, &ae):
		return cli.Exit(fmt.Sprintf("%s: %v", c.Command.HelpName, err), exitFailure)
	case ae.Internal:
		return cli.Exit(fmt.Sprintf("%s: %s %q: the store failed, import stopped (run it again later): %v", c.Command.HelpName, acct, en.Name, ae.Err), exitFailure)
	case errors.Is(err, storage.ErrDuplicate):
		rec, ferr := db.FindCertByFingerprint(c.Context, storage.FingerprintOf(en.DER))
		if ferr == nil && rec.Account == acct {
			t.already++
			report("already", acct, en.Name, fmt.Sprintf("stored as %q (%s) since %s", rec.Name, rec.State, rec.Created.UTC().Format(time.RFC3339)))
			return nil
		}
	}
	t.refused++
	report("refused", acct, en.Name, ae.Error())
	return nil
}
