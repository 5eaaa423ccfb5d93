package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saslcert/saslcert/storage"
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Now is the store's clock for Created, Changed and audit times; nil
	// means time.Now. Its readings are truncated to the microsecond.
	Now func() time.Time
	// Logger receives migration notices and unexpected internal errors;
	// nil discards.
	Logger *slog.Logger
	// Password, if not "", is the password to log in with (read by the
	// caller from a file). The URL must not carry one then.
	Password string
	// Wait is how long Open keeps retrying, with backoff, while the server
	// cannot be reached (0: one attempt).
	Wait time.Duration
}

// DB is a storage.Store on a PostgreSQL database. It is safe for concurrent
// use, also by several processes on one database.
type DB struct {
	pool *pgxpool.Pool
	cfg  *pgxpool.Config
	now  func() time.Time
	log  *slog.Logger

	closed    atomic.Bool
	closeOnce sync.Once
	feedCtx   context.Context    // the change feeds' lifetime
	stop      context.CancelFunc // ends feedCtx
	feeds     sync.WaitGroup
}

var _ storage.Store = (*DB)(nil)

// Open connects to the database url names (a postgres:// URL or a libpq
// key=value string; sslmode and the other libpq settings are honoured, as
// are PGPASSWORD and PGPASSFILE), and migrates it to the current schema
// under an advisory lock, so that several processes may open one database
// at once. While the server cannot be reached it retries with backoff for
// up to opts.Wait. Errors: storage.ErrUnavailable (the server cannot be
// reached), or a plain error (a bad URL, a failed migration, a schema newer
// than this program).
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("storage/postgres: %w", err)
	}
	if opts.Password != "" {
		cfg.ConnConfig.Password = opts.Password
	}
	db := &DB{cfg: cfg, now: opts.Now, log: opts.Logger}
	if db.now == nil {
		db.now = time.Now
	}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	db.feedCtx, db.stop = context.WithCancel(context.Background())
	stop := db.stop
	deadline := time.Now().Add(opts.Wait)
	backoff := 100 * time.Millisecond
	for {
		err = db.connect(ctx)
		if err == nil {
			return db, nil
		}
		if !errors.Is(err, storage.ErrUnavailable) || ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			stop()
			return nil, err
		}
		db.log.Warn("storage/postgres: database unavailable; retrying", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			stop()
			return nil, db.mapErr(ctx, "open", ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// connect makes the pool, checks the server and migrates.
func (db *DB) connect(ctx context.Context) error {
	pool, err := pgxpool.NewWithConfig(ctx, db.cfg)
	if err != nil {
		return db.mapErr(ctx, "open", err)
	}
	if err := db.migrate(ctx, pool); err != nil {
		pool.Close()
		return err
	}
	db.pool = pool
	return nil
}

// Close closes the pool and stops the change feeds. Calls after Close
// return storage.ErrUnavailable.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		db.stop()
		db.feeds.Wait()
		db.pool.Close()
	})
	return nil
}

// begin checks that the store is open and ctx alive, for every method.
func (db *DB) begin(ctx context.Context, op string) error {
	if db.closed.Load() {
		return fmt.Errorf("storage/postgres: %s: %w: store closed", op, storage.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return db.mapErr(ctx, op, err)
	}
	return nil
}

// clock reads the store's clock at the precision times are stored with.
func (db *DB) clock() time.Time { return db.now().Truncate(time.Microsecond).UTC() }

// writeLock is the key of the transaction-level advisory lock every write
// transaction that touches certs, audit or tombstones takes first. It
// serialises writers, as SQLite's single writer does, which keeps three
// promises with plain READ COMMITTED transactions: audit IDs are assigned
// in commit order (a reader following the log by ID never skips an entry
// committed late), the checks before an insert (tombstone, fingerprint,
// name, limits) see every committed write, and revocations racing adds
// are ordered. Writes are rare next to logins; readers never take it.
const writeLock int64 = 0x7361736c63657274 // "saslcert"

// maxAttempts bounds how often a transaction or read is tried when it
// failed in a way that may pass: a serialization failure or deadlock, or a
// connection that failed (a pooled connection found dead after a server
// restart), as long as COMMIT had not been sent.
const maxAttempts = 3

// write runs fn in a READ COMMITTED transaction that first takes writeLock,
// and commits. A transaction that failed before its COMMIT was sent, in a
// retryable way, is run again from the start (fn must set its results
// afresh each time). A COMMIT that fails is not retried: the change may
// have been committed. Errors that already carry a storage sentinel keep
// it; others are mapped (mapErr).
func (db *DB) write(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		var committing bool
		committing, err = db.writeOnce(ctx, fn)
		if err == nil {
			return nil
		}
		if attempt == maxAttempts || committing || !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	if hasSentinel(err) && ctx.Err() == nil {
		return fmt.Errorf("storage/postgres: %s: %w", op, err)
	}
	return db.mapErr(ctx, op, err)
}

// writeOnce runs one attempt; committing reports that err came from COMMIT.
func (db *DB) writeOnce(ctx context.Context, fn func(pgx.Tx) error) (committing bool, err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
		return false, err
	}
	if err := fn(tx); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// read runs a read, trying again when it failed in a retryable way.
func (db *DB) read(ctx context.Context, op string, fn func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if err = fn(); err == nil {
			return nil
		}
		if attempt == maxAttempts || !retryable(err) || ctx.Err() != nil {
			return db.mapErr(ctx, op, err)
		}
	}
}

func hasSentinel(err error) bool {
	for _, s := range []error{
		storage.ErrNotFound, storage.ErrNameTaken, storage.ErrDuplicate, storage.ErrLimit, storage.ErrHistoryFull,
		storage.ErrTransition, storage.ErrInvalid, storage.ErrUnavailable, storage.ErrAccountDeleted,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// ParseURL checks a connection URL as Open reads it, without connecting.
func ParseURL(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("storage/postgres: %w", err)
	}
	return cfg, nil
}
