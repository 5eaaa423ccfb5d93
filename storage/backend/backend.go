// Package backend opens the certificate store a store URL names, so that
// saslcert serve and every admin command open it the same way:
//
//	sqlite:/var/lib/saslcert/saslcert.db   an SQLite file
//	sqlite:                                 DATA-DIR/saslcert.db (Options.DataDir)
//	postgres://USER@HOST:PORT/DB?sslmode=verify-full
//	                                        a PostgreSQL database (storage/postgres)
//
// A PostgreSQL URL takes every libpq setting (sslmode, sslrootcert, ...) but
// never a password: command lines and environment listings are readable by
// others. The password comes from Options.PasswordFile, or from libpq's
// PGPASSWORD or PGPASSFILE (~/.pgpass).
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
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/postgres"
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

// ErrNotSupported: the URL names a backend this build cannot open.
var ErrNotSupported = errors.New("backend: store not supported")

// ErrPasswordInURL: a PostgreSQL URL carries a password.
var ErrPasswordInURL = errors.New("backend: a password in the store URL")

// Target is a parsed store URL.
type Target struct {
	// Scheme is SchemeSQLite or SchemePostgres.
	Scheme string
	// Path is the SQLite file.
	Path string
	// URL is the PostgreSQL URL (without a password).
	URL string
}

// String describes the target in messages: the SQLite file's path, or the
// PostgreSQL URL.
func (t Target) String() string {
	if t.Scheme == SchemePostgres {
		return t.URL
	}
	return t.Path
}

// Parse reads a store URL; an empty url is "sqlite:" (the default). dataDir
// completes "sqlite:" and may be empty otherwise. Errors: ErrPasswordInURL,
// or a plain error for a URL it cannot read.
func Parse(url, dataDir string) (Target, error) {
	if url == "" {
		url = SchemeSQLite + ":"
	}
	scheme, rest, ok := strings.Cut(url, ":")
	switch {
	case !ok:
		return Target{}, fmt.Errorf("store %q: want sqlite:PATH, sqlite: (the data directory's %s) or postgres://HOST/DATABASE", url, SQLiteFile)
	case scheme == SchemePostgres || scheme == "postgresql":
		return parsePostgres(url)
	case scheme != SchemeSQLite:
		return Target{}, fmt.Errorf("store %q: unknown kind %q (want sqlite: or postgres:)", url, scheme)
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

// parsePostgres checks a postgres:// URL: it must parse, and must not carry
// a password (in the user part or as a password= setting).
func parsePostgres(url string) (Target, error) {
	u, err := neturl.Parse(url)
	if err != nil {
		return Target{}, fmt.Errorf("store: %w", err)
	}
	if u.Opaque != "" {
		return Target{}, fmt.Errorf("store %q: want postgres://[USER@]HOST[:PORT]/DATABASE[?SETTINGS]", url)
	}
	_, inUser := u.User.Password()
	if inUser || u.Query().Has("password") {
		u.User = neturl.User(u.User.Username())
		q := u.Query()
		q.Del("password")
		u.RawQuery = q.Encode()
		return Target{}, fmt.Errorf("store %s: %w: command lines and environments can be read by other users; "+
			"put the password in a file named by --store-password-file, or use PGPASSWORD or PGPASSFILE", u.Redacted(), ErrPasswordInURL)
	}
	if _, err := postgres.ParseURL(url); err != nil {
		return Target{}, fmt.Errorf("store %q: %w", url, err)
	}
	return Target{Scheme: SchemePostgres, URL: url}, nil
}

// Options qualify Open.
type Options struct {
	// PasswordFile (PostgreSQL) names a file whose first line is the
	// password; it must not be readable by every user. "" leaves the
	// password to libpq's PGPASSWORD and PGPASSFILE.
	PasswordFile string
	// Wait (PostgreSQL) is how long Open retries, with backoff, while the
	// database cannot be reached (0: once).
	Wait time.Duration
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
	case SchemePostgres:
		// MustExist: the database must exist to be connected to; its
		// schema is created by the first program that opens it.
		var password string
		if o.PasswordFile != "" {
			var err error
			if password, err = readPassword(o.PasswordFile); err != nil {
				return nil, err
			}
		}
		return postgres.Open(ctx, t.URL, postgres.Options{Now: o.Now, Logger: o.Logger, Password: password, Wait: o.Wait})
	}
	return nil, fmt.Errorf("store %q: %w", t.Scheme, ErrNotSupported)
}

// readPassword returns the first line of file, which must not be readable
// by every user.
func readPassword(file string) (string, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("store password file: %w", err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("store password file %s can be read by every user (mode %04o); run chmod o-rwx on it", file, fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("store password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimRight(line, "\r"); line == "" {
		return "", fmt.Errorf("store password file %s: the first line is empty", file)
	}
	return line, nil
}
