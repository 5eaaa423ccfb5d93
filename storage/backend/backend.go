// Package backend opens the certificate store a store URL names, so that
// saslcert serve and every admin command open it the same way:
//
//	sqlite:/var/lib/saslcert/saslcert.db   an SQLite file
//	sqlite:                                 DATA-DIR/saslcert.db (Options.DataDir)
//	postgres:...                            not supported yet (ErrNotSupported)
//
// A new backend adds its scheme to Parse and its opener to Open; it must pass
// storage/storetest (the contract suite, with its kill -9 durability test).
// The package imports storage and the backends' packages; only the commands
// and the test harness import it.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
)

// SQLiteFile is the SQLite database's name inside the data directory
// ("sqlite:").
const SQLiteFile = "saslcert.db"

// Schemes of store URLs.
const (
	SchemeSQLite   = "sqlite"
	SchemePostgres = "postgres"
)

// ErrNotSupported: the URL names a backend this build cannot open yet.
var ErrNotSupported = errors.New("backend: store not supported yet")

// Target is a parsed store URL.
type Target struct {
	// Scheme is SchemeSQLite.
	Scheme string
	// Path is the SQLite file.
	Path string
}

// String describes the target in messages: the SQLite file's path.
func (t Target) String() string { return t.Path }

// Parse reads a store URL; an empty url is "sqlite:" (the default). dataDir
// completes "sqlite:" and may be empty otherwise. Errors: ErrNotSupported
// (postgres:), or a plain error for a URL it cannot read.
func Parse(url, dataDir string) (Target, error) {
	if url == "" {
		url = SchemeSQLite + ":"
	}
	scheme, rest, ok := strings.Cut(url, ":")
	switch {
	case !ok:
		return Target{}, fmt.Errorf("store %q: want sqlite:PATH or sqlite: (the data directory's %s)", url, SQLiteFile)
	case scheme == SchemePostgres || scheme == "postgresql":
		return Target{}, fmt.Errorf("store %q: %w (PostgreSQL is planned; use sqlite:)", url, ErrNotSupported)
	case scheme != SchemeSQLite:
		return Target{}, fmt.Errorf("store %q: unknown kind %q (want sqlite:)", url, scheme)
	}
	rest = strings.TrimPrefix(rest, "//")
	if rest == "" {
		if dataDir == "" {
			return Target{}, errors.New("store \"sqlite:\": no data directory")
		}
		rest = filepath.Join(dataDir, SQLiteFile)
	}
	return Target{Scheme: SchemeSQLite, Path: rest}, nil
}

// Options qualify Open.
type Options struct {
	// Now is the store's clock (time.Now if nil).
	Now func() time.Time
	// Logger receives the store's log (nil: none).
	Logger *slog.Logger
	// BusyTimeout is how long a write waits for a lock (SQLite; 0: the
	// backend's default).
	BusyTimeout time.Duration
	// MustExist refuses to create a store that does not exist yet (admin
	// commands: a mistyped location must not look like an empty store).
	MustExist bool
}

// ErrNotExist: Options.MustExist and the store does not exist.
var ErrNotExist = errors.New("backend: no store there")

// Open opens (and, unless MustExist, creates) the store t names. Errors:
// ErrNotExist, or the backend's.
func Open(ctx context.Context, t Target, o Options) (storage.Store, error) {
	switch t.Scheme {
	case SchemeSQLite:
		if o.MustExist {
			if _, err := os.Stat(t.Path); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrNotExist, t.Path, err)
			}
		}
		return sqlite.Open(ctx, t.Path, sqlite.Options{Now: o.Now, Logger: o.Logger, BusyTimeout: o.BusyTimeout})
	}
	return nil, fmt.Errorf("store %q: %w", t.Scheme, ErrNotSupported)
}
