package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/saslcert/saslcert/internal/progress"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/backend"
	"github.com/saslcert/saslcert/storage/storecopy"
)

const storeCopyDescription = `Copies every table of the store --from (certificates, audit log, tombstones
of deleted accounts, the components' marks) into the store --to, e.g. from
SQLite to PostgreSQL, in one transaction of the target, keeping every ID.
The source is read from one snapshot; stop 'saslcert serve' first, or
changes made after the snapshot stay behind (the command warns when a
component marked the store within the last 30s).

The copy is verified: per table, the number of rows and a SHA-256 digest
over a canonical encoding of the rows read from the source must equal those
read back from the target after the commit; the sums are printed.

The target must be empty: a target that holds rows is refused, and nothing
is copied, unless --force is given, which deletes everything in it first
(in the same transaction). An SQLite target file is created if it does not
exist; a PostgreSQL database must exist (the schema is created).

Passwords of PostgreSQL stores come from --from-password-file and
--to-password-file, or libpq's PGPASSWORD / PGPASSFILE; never from the URL.
Progress is shown on standard error when it is a terminal.

Exit status: 0 copied and verified; 1 refused (target not empty), failed
(nothing was copied) or the verification failed; 2 wrong usage.`

func storeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "store",
		Usage:  "manage the certificate store as a whole",
		Action: groupAction,
		Subcommands: []*cli.Command{{
			Name:        "copy",
			Usage:       "copy a whole store into another (e.g. SQLite to PostgreSQL), verified",
			ArgsUsage:   " ",
			Description: storeCopyDescription,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "from", Usage: "the source store (sqlite:PATH or postgres://...)", Required: true},
				&cli.StringFlag{Name: "to", Usage: "the target store (sqlite:PATH or postgres://...)", Required: true},
				&cli.BoolFlag{Name: "force", Usage: "replace everything the target holds"},
				&cli.StringFlag{Name: "from-password-file", Usage: "file whose first line is the source's PostgreSQL password"},
				&cli.StringFlag{Name: "to-password-file", Usage: "file whose first line is the target's PostgreSQL password"},
				dataDirFlag(),
			},
			Action: e.storeCopy,
		}},
	}
}

// copyStore is what store copy needs of both stores.
type copyStore interface {
	storage.Store
	storage.Exporter
	storage.Importer
}

func (e *env) storeCopy(c *cli.Context) error {
	name := c.Command.HelpName
	if c.Args().Present() {
		return usageErrorf("%s: unexpected argument %q; see '%s --help'", name, c.Args().First(), name)
	}
	open := func(flag string, mustExist bool) (copyStore, string, error) {
		db, t, err := e.openStore(c.Context, c.String(flag), storeOpts{dataDir: c.String("data-dir"),
			passwordFile: c.String(flag + "-password-file"), mustExist: mustExist})
		switch {
		case errors.Is(err, backend.ErrPasswordInURL):
			return nil, "", usageErrorf("%s: --%s: %v (for this command: --%s-password-file)", name, flag, err, flag)
		case err != nil && t == (backend.Target{}):
			return nil, "", usageErrorf("%s: --%s: %v", name, flag, err)
		case err != nil:
			return nil, "", cli.Exit(fmt.Sprintf("%s: --%s %s: %v", name, flag, t, err), exitFailure)
		}
		cs, ok := db.(copyStore)
		if !ok {
			db.Close()
			return nil, "", cli.Exit(fmt.Sprintf("%s: --%s %s: this kind of store cannot be copied", name, flag, t), exitFailure)
		}
		return cs, t.String(), nil
	}
	if c.String("from") == c.String("to") {
		return usageErrorf("%s: --from and --to name the same store", name)
	}
	src, from, err := open("from", true)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, to, err := open("to", false)
	if err != nil {
		return err
	}
	defer dst.Close()
	if from == to {
		return usageErrorf("%s: --from and --to name the same store (%s)", name, from)
	}
	e.warnRunning(c, src, "--from "+from, "changes made after the copy's snapshot stay behind; stop it first")
	if c.Bool("force") {
		e.warnRunning(c, dst, "--to "+to, "--force deletes the store under it")
	}
	counts, err := src.Count(c.Context)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: --from %s: %v", name, from, err), exitFailure)
	}
	var total int64
	for _, n := range counts {
		total += n
	}
	meter := progress.New(e.stderr, "store copy (rows)", total)
	rep, err := storecopy.Copy(c.Context, src, dst, storecopy.Options{Replace: c.Bool("force"), Row: func() { meter.Add(1) }})
	meter.Done()
	var me *storecopy.MismatchError
	switch {
	case errors.Is(err, storage.ErrNotEmpty):
		held := "it holds rows"
		if n, cerr := dst.Count(c.Context); cerr == nil {
			var parts []string
			for _, t := range storage.Tables {
				parts = append(parts, fmt.Sprintf("%s: %d", t, n[t]))
			}
			held = "rows: " + strings.Join(parts, ", ")
		}
		return cli.Exit(fmt.Sprintf("%s: the target %s is not empty (%s); nothing was copied. "+
			"Pass --force to delete everything in it and copy over it", name, to, held), exitFailure)
	case errors.As(err, &me):
		return cli.Exit(fmt.Sprintf("%s: %s was written but differs from %s (%s: source %d rows, target %d rows, digests %x vs %x); do not use it",
			name, to, from, me.Source.Table, me.Source.Rows, me.Target.Rows, me.Source.SHA256[:8], me.Target.SHA256[:8]), exitFailure)
	case err != nil:
		return cli.Exit(fmt.Sprintf("%s: %v; nothing was copied", name, err), exitFailure)
	}
	for _, s := range rep.Tables {
		fmt.Fprintf(e.stdout, "%s (source and target agree)\n", s)
	}
	fmt.Fprintf(e.stdout, "copied %s to %s: verified\n", from, to)
	return nil
}

// warnRunning writes a warning for every component whose audit watch marked
// the store within watcherAlive (it is running on it).
func (e *env) warnRunning(c *cli.Context, db storage.Store, what, why string) {
	marks, err := db.PassedOn(c.Context)
	if err != nil {
		return
	}
	for _, m := range marks {
		if age := e.now().Sub(m.Seen); age <= watcherAlive {
			fmt.Fprintf(e.stderr, "warning: %s: a running saslcert serve (%s) read it %s ago; %s\n",
				what, printable(m.Watcher), age.Round(time.Second), why)
		}
	}
}
