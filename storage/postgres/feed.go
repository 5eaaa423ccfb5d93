package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saslcert/saslcert/storage"
)

var (
	_ storage.ChangeFeed = (*DB)(nil)
	_ storage.Exclusive  = (*DB)(nil)
)

// auditChannel is the channel the audit trigger notifies (migration 0001).
const auditChannel = "saslcert_audit"

// Changes implements storage.ChangeFeed with LISTEN saslcert_audit on a
// connection of its own (not from the pool). When that connection fails it
// reconnects with backoff, and wakes the reader once it listens again, so
// that nothing committed meanwhile goes unread.
func (db *DB) Changes(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	wake := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(db.feedCtx, cancel)
	db.feeds.Add(1)
	go func() {
		defer db.feeds.Done()
		defer close(ch)
		defer stop()
		backoff := 50 * time.Millisecond
		for ctx.Err() == nil {
			err := db.listen(ctx, wake, func() { backoff = 50 * time.Millisecond })
			if ctx.Err() != nil {
				return
			}
			db.log.Warn("storage/postgres: change feed lost its connection; reconnecting", "in", backoff, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}()
	return ch
}

// listen connects, listens, wakes once (the reader catches up with what was
// missed) and then on every notification, until the connection fails.
func (db *DB) listen(ctx context.Context, wake, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, db.cfg.ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+auditChannel); err != nil {
		return err
	}
	connected()
	wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		wake()
	}
}

// lockClass is the first key of Exclusive's two-key advisory locks, so that
// they cannot collide with writeLock or migrateLock.
const lockClass int32 = 0x7361736c // "sasl"

// Exclusive implements storage.Exclusive with a session-level advisory lock
// (pg_try_advisory_lock) on a pooled connection held while fn runs. The
// database ends the lock with the session: if the connection breaks, a
// watcher cancels fn's ctx (checked every second).
func (db *DB) Exclusive(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	const op = "exclusive"
	if err := db.begin(ctx, op); err != nil {
		return false, err
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	key := int32(h.Sum32())
	conn, got, err := db.tryLock(ctx, key)
	if err != nil {
		return false, db.mapErr(ctx, op, err)
	}
	defer conn.Release()
	if !got {
		return false, nil
	}
	fnCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-fnCtx.Done():
				return
			case <-t.C:
				if err := conn.Ping(fnCtx); err != nil && fnCtx.Err() == nil {
					cancel(fmt.Errorf("storage/postgres: lock %q lost: %w: %w", name, storage.ErrUnavailable, err))
					return
				}
			}
		}
	}()
	ferr := fn(fnCtx)
	cancel(nil)
	<-watchDone
	if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1, $2)`, lockClass, key); err != nil {
		// The session is broken: the server has dropped the lock with it.
		conn.Conn().Close(context.Background())
	}
	if cause := context.Cause(fnCtx); ferr != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return true, errors.Join(ferr, cause)
	}
	return true, ferr
}

// tryLock takes a connection and tries the session advisory lock (lockClass,
// key) on it. A pooled connection found dead (a server restart since it was
// last used) is dropped and the attempt made again on another, up to
// maxAttempts, as read and write do. On success the caller releases conn;
// got reports whether the lock was taken (its holder must unlock it on conn).
func (db *DB) tryLock(ctx context.Context, key int32) (conn *pgxpool.Conn, got bool, err error) {
	for attempt := 1; ; attempt++ {
		conn, err = db.pool.Acquire(ctx)
		if err == nil {
			err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, lockClass, key).Scan(&got)
			if err == nil {
				return conn, got, nil
			}
			conn.Release()
		}
		if attempt == maxAttempts || !retryable(err) || ctx.Err() != nil {
			return nil, false, err
		}
	}
}
