package main

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/backend"
)

// DBFile is the SQLite database's name inside the data directory.
const DBFile = backend.SQLiteFile

// storeUsage is --store's help.
const storeUsage = "the certificate store: sqlite:PATH, sqlite: for DATA-DIR/" + DBFile + " (the default), or " +
	"postgres://[USER@]HOST[:PORT]/DATABASE[?sslmode=verify-full&...] (no password in it: see --store-password-file)"

// storePasswordUsage is --store-password-file's help.
const storePasswordUsage = "file whose first line is the PostgreSQL password (not readable by every user); " +
	"without it libpq's PGPASSWORD or PGPASSFILE (~/.pgpass) apply"

// storeWaitUsage is --store-wait's help.
const storeWaitUsage = "how long to keep trying, with backoff, while the PostgreSQL store cannot be reached (0: once)"

// storeFlag is the --store flag of the commands that open the store.
func storeFlag() cli.Flag {
	return &cli.StringFlag{Name: "store", Usage: storeUsage, EnvVars: []string{"SASLCERT_STORE"}}
}

// storePasswordFlag is the --store-password-file flag of the commands that
// open the store.
func storePasswordFlag() cli.Flag {
	return &cli.StringFlag{Name: "store-password-file", Usage: storePasswordUsage, EnvVars: []string{"SASLCERT_STORE_PASSWORD_FILE"}}
}

// storeOpts are the settings openStore takes beyond the URL.
type storeOpts struct {
	dataDir      string        // completes "sqlite:"
	busy         time.Duration // SQLite's busy timeout (0: default)
	passwordFile string        // PostgreSQL's password file
	wait         time.Duration // PostgreSQL: retry while unreachable
	mustExist    bool          // refuse to create the store (backend.ErrNotExist)
}

// adminStoreOpts reads the store flags of an admin command.
func adminStoreOpts(c *cli.Context, mustExist bool) storeOpts {
	return storeOpts{dataDir: c.String("data-dir"), passwordFile: c.String("store-password-file"), mustExist: mustExist}
}

// openStore opens the store a --store URL names. The one opener of serve
// and every admin command.
func (e *env) openStore(ctx context.Context, url string, o storeOpts) (storage.Store, backend.Target, error) {
	t, err := backend.Parse(url, o.dataDir)
	if err != nil {
		return nil, t, err
	}
	db, err := backend.Open(ctx, t, backend.Options{Now: e.now, Logger: e.log, BusyTimeout: o.busy, MustExist: o.mustExist,
		PasswordFile: o.passwordFile, Wait: o.wait})
	return db, t, err
}
