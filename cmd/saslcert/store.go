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
const storeUsage = "the certificate store: sqlite:PATH, or sqlite: for DATA-DIR/" + DBFile + " (the default); postgres: is not supported yet"

// storeFlag is the --store flag of the commands that open the store.
func storeFlag() cli.Flag {
	return &cli.StringFlag{Name: "store", Usage: storeUsage, EnvVars: []string{"SASLCERT_STORE"}}
}

// openStore opens the store a --store URL names (dataDir completes
// "sqlite:"); with mustExist it refuses to create one (backend.ErrNotExist).
// The one opener of serve and every admin command.
func (e *env) openStore(ctx context.Context, url, dataDir string, busy time.Duration, mustExist bool) (storage.Store, backend.Target, error) {
	t, err := backend.Parse(url, dataDir)
	if err != nil {
		return nil, t, err
	}
	db, err := backend.Open(ctx, t, backend.Options{Now: e.now, Logger: e.log, BusyTimeout: busy, MustExist: mustExist})
	return db, t, err
}
