package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/lifecycle"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/backend"
)

// adminActor is the audit actor of the administrator's commands.
const adminActor = "cli"

// runningHint says what a change made here means for a running component.
const runningHint = `A "saslcert serve" running on this data directory passes the change on to the
server within its --admin-watch-interval (default 1s): Prosody forgets what it
cached about the account, and live sessions of a revoked certificate are
closed. With --admin-watch-interval 0, restart the component instead.`

// waitHint says what the commands that change a certificate wait for.
const waitHint = `The command returns once every running component has passed the change on
(at most --wait, default 15s); then no login with the certificate succeeds any
more. Without a running component nothing logs in with a certificate, and the
component reads the store when it starts.`

const certListDescription = `Lists the certificates stored for the account --jid, oldest first: name,
state, fingerprint, validity, forced resource, source and no-cert-management.
With --active only the active ones.

Exit status: 0 listed (also when there are none); 1 the database cannot be
read; 2 wrong usage.`

const certStateDescription = `Moves the account's active certificate --name (or, with --all, every active
one; revoke --all also revokes the disabled ones) to the state %[1]s, and
records it in the audit log with the actor "cli".
%[2]s

` + runningHint + `

` + waitHint + `

Exit status: 0 done; 1 no such active certificate, or the database cannot be
written; 2 wrong usage; 3 recorded, but a running component did not confirm
within --wait that it passed the change on.`

func certListCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "list",
		Usage:       "list an account's stored certificates",
		ArgsUsage:   " ",
		Description: certListDescription,
		Flags: []cli.Flag{
			dataDirFlag(),
			storeFlag(),
			storePasswordFlag(),
			&cli.StringFlag{Name: "jid", Usage: "the account (bare JID)", Required: true},
			&cli.BoolFlag{Name: "active", Usage: "only active certificates"},
		},
		Action: e.certList,
	}
}

func certDisableCommand(e *env) *cli.Command {
	return certStateCommand(e, "disable", storage.StateDisabled,
		"stop future logins with an account's certificate (live sessions stay)",
		"Future logins with it are refused; live sessions stay, as with XEP-0257 <disable/>.")
}

func certRevokeCommand(e *env) *cli.Command {
	return certStateCommand(e, "revoke", storage.StateRevoked,
		"revoke an account's certificate (logins refused, live sessions closed)",
		"Logins with it are refused and its live sessions are closed, as with XEP-0257\n<revoke/>; a revoked certificate cannot be stored again.")
}

func certStateCommand(e *env, verb string, to storage.State, usage, effect string) *cli.Command {
	return &cli.Command{
		Name:        verb,
		Usage:       usage,
		ArgsUsage:   " ",
		Description: fmt.Sprintf(certStateDescription, to, effect),
		Flags: []cli.Flag{
			dataDirFlag(),
			storeFlag(),
			storePasswordFlag(),
			&cli.StringFlag{Name: "jid", Usage: "the account (bare JID)", Required: true},
			&cli.StringFlag{Name: "name", Usage: "the certificate's name"},
			&cli.BoolFlag{Name: "all", Usage: "every active certificate of the account"},
			&cli.DurationFlag{Name: "wait", Value: defaultPassOnWait, Usage: "how long to wait for the running component to pass the change on (0: do not wait)"},
		},
		Action: func(c *cli.Context) error { return e.certSetState(c, to) },
	}
}

// openAdminStore checks the common arguments and opens the data directory's
// database, which must exist already.
func (e *env) openAdminStore(c *cli.Context) (jid.JID, storage.Store, string, error) {
	name := c.Command.HelpName
	if c.Args().Present() {
		return jid.JID{}, nil, "", usageErrorf("%s: unexpected argument %q; see '%s --help'", name, c.Args().First(), name)
	}
	account, err := parseAccount(c.String("jid"))
	if err != nil {
		return jid.JID{}, nil, "", usageErrorf("%s: %v", name, err)
	}
	// Opening must not create an empty database: a mistyped --data-dir
	// must not look like an account without certificates.
	db, target, err := e.openStore(c.Context, c.String("store"), adminStoreOpts(c, true))
	switch {
	case errors.Is(err, backend.ErrNotExist):
		return jid.JID{}, nil, "", cli.Exit(fmt.Sprintf("%s: no database at %s (is --data-dir right?): %v", name, target, err), exitFailure)
	case err != nil && target == (backend.Target{}):
		return jid.JID{}, nil, "", usageErrorf("%s: --store: %v", name, err)
	case err != nil:
		return jid.JID{}, nil, "", cli.Exit(fmt.Sprintf("%s: open %s: %v", name, target, err), exitFailure)
	}
	return account, db, target.String(), nil
}

func (e *env) certList(c *cli.Context) error {
	account, db, _, err := e.openAdminStore(c)
	if err != nil {
		return err
	}
	defer db.Close()
	var states []storage.State
	if c.Bool("active") {
		states = []storage.State{storage.StateActive}
	}
	certs, err := db.ListCerts(c.Context, account.String(), states...)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", c.Command.HelpName, err), exitFailure)
	}
	if len(certs) == 0 {
		fmt.Fprintf(e.stdout, "%s has no stored certificates\n", account)
		return nil
	}
	for _, r := range certs {
		var extra []string
		if r.Resource != "" {
			extra = append(extra, "forced resource "+printable(r.Resource))
		}
		if r.NoCertManagement {
			extra = append(extra, "no-cert-management")
		}
		extra = append(extra, "source "+string(r.Source))
		fmt.Fprintf(e.stdout, "%-8s %q  %s  valid %s .. %s  %s\n", r.State, r.Name, r.Fingerprint,
			r.NotBefore.UTC().Format(time.RFC3339), r.NotAfter.UTC().Format(time.RFC3339), strings.Join(extra, ", "))
	}
	return nil
}

func (e *env) certSetState(c *cli.Context, to storage.State) error {
	name := c.Command.HelpName
	certName, all := c.String("name"), c.Bool("all")
	if (certName == "") == !all {
		return usageErrorf("%s: give exactly one of --name and --all", name)
	}
	account, db, dbPath, err := e.openAdminStore(c)
	if err != nil {
		return err
	}
	defer db.Close()
	// Changes go through the life-cycle owner, as the component's do. It
	// has no side effects here: the running component's audit watch
	// passes them on (waitPassedOn below).
	certs := lifecycle.New(db, e.log)
	if all && to == storage.StateRevoked {
		// revoke --all: every active and disabled certificate, in one
		// transaction (the store method account deletion uses, without
		// its tombstone: the account lives on and may add new ones).
		recs, err := certs.RevokeAll(c.Context, account.String(), adminActor)
		if err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
		}
		if len(recs) == 0 {
			fmt.Fprintf(e.stdout, "%s has no certificates to %s\n", account, c.Command.Name)
			return nil
		}
		for _, r := range recs {
			fmt.Fprintf(e.stdout, "%s %q of %s (%s)\n", to, r.Name, r.Account, r.Fingerprint)
		}
	} else if all {
		// disable --all: every active certificate.
		recs, err := db.ListCerts(c.Context, account.String(), storage.StateActive)
		if err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
		}
		if len(recs) == 0 {
			fmt.Fprintf(e.stdout, "%s has no certificates to %s\n", account, c.Command.Name)
			return nil
		}
		for _, rec := range recs {
			r, err := certs.SetStateByFingerprint(c.Context, rec.Fingerprint, to, adminActor)
			if err != nil {
				return cli.Exit(fmt.Sprintf("%s: %q: %v", name, rec.Name, err), exitFailure)
			}
			fmt.Fprintf(e.stdout, "%s %q of %s (%s)\n", to, rec.Name, r.Account, r.Fingerprint)
		}
	} else {
		r, err := certs.SetState(c.Context, account.String(), certName, to, adminActor)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return cli.Exit(fmt.Sprintf("%s: %s has no active certificate named %q (see 'saslcert cert list --jid %s')", name, account, certName, account), exitFailure)
		case err != nil:
			return cli.Exit(fmt.Sprintf("%s: %q: %v", name, certName, err), exitFailure)
		}
		fmt.Fprintf(e.stdout, "%s %q of %s (%s)\n", to, r.Name, r.Account, r.Fingerprint)
	}
	fmt.Fprintf(e.stderr, "recorded in %s\n", dbPath)
	if err := waitPassedOn(c.Context, db, account.String(), c.Duration("wait"), e.now, e.stderr); err != nil {
		return err
	}
	return nil
}
