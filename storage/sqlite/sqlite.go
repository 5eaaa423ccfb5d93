package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/saslcert/saslcert/storage"
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Now is the store's clock for Created, Changed and audit times;
	// nil means time.Now. Its readings are truncated to the microsecond.
	Now func() time.Time
	// Logger receives migration notices and unexpected internal errors;
	// nil discards.
	Logger *slog.Logger
	// BusyTimeout is how long a statement waits for a lock held by another
	// process before failing with storage.ErrUnavailable; 0 means 5s.
	// SQLite's busy wait does not notice a context's deadline, so a call
	// blocked by another process may outlive its deadline by up to this
	// much. Writers inside one process queue for the single write
	// connection instead, and that wait ends with the context.
	BusyTimeout time.Duration
	// MmapSize, if > 0, lets each read connection map up to that many
	// bytes of the database file (PRAGMA mmap_size) instead of copying
	// pages into its page cache with read(2). That makes lookups in a
	// database much larger than the page cache faster, but mapped pages
	// the process has touched count towards its RSS (they are the OS's
	// page cache, shared and reclaimable, not heap). 0 leaves it off.
	MmapSize int64
}

// DefaultBusyTimeout is the busy timeout used when Options.BusyTimeout is 0.
const DefaultBusyTimeout = 5 * time.Second

// DB is a storage.Store on one SQLite file. It is safe for concurrent use.
type DB struct {
	path string
	now  func() time.Time
	log  *slog.Logger

	w *sql.DB // writes: one connection, BEGIN IMMEDIATE
	r *sql.DB // reads: several query_only connections

	st statements

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ storage.Store = (*DB)(nil)

// Open opens the database file at path, creating it with mode 0600 if it does
// not exist (its directory must exist), and migrates it to the current
// schema. WAL, -shm and journal files inherit the database file's mode.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("storage/sqlite: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("storage/sqlite: %w", err)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	db := &DB{path: abs, now: opts.Now, log: opts.Logger}
	if db.now == nil {
		db.now = time.Now
	}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}

	// Create the file ourselves so that it gets 0600; SQLite would use 0644.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage/sqlite: %w", err)
	}
	f.Close()

	ms := strconv.FormatInt(busy.Milliseconds(), 10)
	db.w = pool(dsn(abs, url.Values{
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_foreign_keys": {"1"},
		"_busy_timeout": {ms},
		"_txlock":       {"immediate"},
		"_mutex":        {"no"},
	}), nil)
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)

	if err := db.checkWAL(ctx); err != nil {
		db.w.Close()
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.w.Close()
		return nil, err
	}

	var readPragmas []string
	if opts.MmapSize > 0 {
		readPragmas = append(readPragmas, "PRAGMA mmap_size = "+strconv.FormatInt(opts.MmapSize, 10))
	}
	db.r = pool(dsn(abs, url.Values{
		"_query_only":   {"1"},
		"_busy_timeout": {ms},
		"_txlock":       {"deferred"},
		"_mutex":        {"no"},
	}), readPragmas)
	n := max(4, 2*runtime.GOMAXPROCS(0))
	db.r.SetMaxOpenConns(n)
	db.r.SetMaxIdleConns(n)
	db.r.SetConnMaxLifetime(0)
	db.r.SetConnMaxIdleTime(0)

	if err := db.st.prepare(ctx, db.w, db.r); err != nil {
		db.st.close()
		db.r.Close()
		db.w.Close()
		return nil, db.mapErr(ctx, "prepare", err)
	}
	return db, nil
}

// pool returns a connection pool on dsn whose connections run pragmas when
// they open, and know the SQL function saslcert_key_hash (sqlKeyHash). It uses its own driver value rather than the globally
// registered "sqlite3", so the hook cannot leak to other users of the driver.
func pool(dsn string, pragmas []string) *sql.DB {
	d := &sqlite3.SQLiteDriver{}
	d.ConnectHook = func(c *sqlite3.SQLiteConn) error {
		if err := c.RegisterFunc("saslcert_key_hash", sqlKeyHash, true); err != nil {
			return err
		}
		for _, p := range pragmas {
			if _, err := c.Exec(p, nil); err != nil {
				return err
			}
		}
		return nil
	}
	return sql.OpenDB(connector{d: d, dsn: dsn})
}

type connector struct {
	d   *sqlite3.SQLiteDriver
	dsn string
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.d }

// dsn builds a file: URI for path. The path is percent-encoded so that '?',
// '#' and '%' in directory names cannot be taken for URI syntax.
func dsn(path string, params url.Values) string {
	u := url.URL{Path: filepath.ToSlash(path)}
	return "file:" + u.EscapedPath() + "?" + params.Encode()
}

// checkWAL makes sure the journal mode took: some file systems (and a
// database opened read-only) cannot switch to WAL, and the durability and
// reader/writer concurrency this package promises depend on it.
func (db *DB) checkWAL(ctx context.Context) error {
	var mode string
	if err := db.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return db.mapErr(ctx, "open", err)
	}
	if mode != "wal" {
		return fmt.Errorf("storage/sqlite: %s: journal mode is %q, want wal", db.path, mode)
	}
	return nil
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close closes both pools. Calls after Close, and calls to Close after the
// first, do nothing and return storage.ErrUnavailable resp. the first
// Close's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		db.st.close()
		db.closeErr = errors.Join(db.r.Close(), db.w.Close())
		if db.closeErr != nil {
			db.closeErr = fmt.Errorf("storage/sqlite: close: %w", db.closeErr)
		}
	})
	return db.closeErr
}

// begin checks that the store is open and ctx alive, for every method.
func (db *DB) begin(ctx context.Context, op string) error {
	if db.closed.Load() {
		return fmt.Errorf("storage/sqlite: %s: %w: store closed", op, storage.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return db.mapErr(ctx, op, err)
	}
	return nil
}

// mapErr turns a driver or database/sql error into one of the storage
// sentinels where one applies, by SQLite result code. Constraint violations
// are classified by the callers, which know which constraint they touched.
func (db *DB) mapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if ctxErr == nil {
			ctxErr = err
		}
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return fmt.Errorf("storage/sqlite: %s: %w: %w", op, storage.ErrUnavailable, ctxErr)
		}
		return fmt.Errorf("storage/sqlite: %s: %w", op, ctxErr)
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrFull, sqlite3.ErrIoErr,
			sqlite3.ErrReadonly, sqlite3.ErrCantOpen, sqlite3.ErrNomem, sqlite3.ErrProtocol, sqlite3.ErrPerm:
			return fmt.Errorf("storage/sqlite: %s: %w: %w", op, storage.ErrUnavailable, err)
		case sqlite3.ErrConstraint:
			return fmt.Errorf("storage/sqlite: %s: %w: %w", op, storage.ErrInvalid, err)
		}
	}
	if db.closed.Load() {
		return fmt.Errorf("storage/sqlite: %s: %w: store closed", op, storage.ErrUnavailable)
	}
	db.log.Error("storage/sqlite: internal error", "op", op, "path", db.path, "err", err)
	return fmt.Errorf("storage/sqlite: %s: %w", op, err)
}

// isUnique reports whether err is a UNIQUE constraint violation.
func isUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

// sqlKeyHash is the SQL function saslcert_key_hash(der): the 32-byte
// storage.KeyHashOf(der) as a BLOB, or NULL if der is not shaped like a
// certificate. Migration 0002 fills key_hash with it.
func sqlKeyHash(der []byte) any {
	if kh, ok := storage.KeyHashOf(der); ok {
		return kh[:]
	}
	return nil
}
