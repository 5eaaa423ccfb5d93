package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/saslcert/saslcert/storage"
)

// mapErr turns a pgx error into one of the storage sentinels where one
// applies, by SQLSTATE class: the server or the connection failing (class
// 08 connection exception, 53 insufficient resources, 57 operator
// intervention such as a shutdown or a restart, 58 system error, 25006 a
// read-only standby after a failover, 40 a transaction rolled back after its
// retries) gives storage.ErrUnavailable, as does any network error, so that
// protocols answer "wait" or temporary-auth-failure, never a wrong answer.
// Check violations give storage.ErrInvalid. Anything else is logged as an
// internal error.
func (db *DB) mapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if ctxErr == nil {
			ctxErr = err
		}
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return fmt.Errorf("storage/postgres: %s: %w: %w", op, storage.ErrUnavailable, ctxErr)
		}
		return fmt.Errorf("storage/postgres: %s: %w", op, ctxErr)
	}
	if db.closed.Load() {
		return fmt.Errorf("storage/postgres: %s: %w: store closed", op, storage.ErrUnavailable)
	}
	switch {
	case unavailable(err):
		return fmt.Errorf("storage/postgres: %s: %w: %w", op, storage.ErrUnavailable, err)
	case sqlState(err) == "23514" || sqlState(err) == "23502" || sqlState(err) == "22021":
		// check_violation, not_null_violation, character_not_in_repertoire (a NUL in text)
		return fmt.Errorf("storage/postgres: %s: %w: %w", op, storage.ErrInvalid, err)
	}
	db.log.Error("storage/postgres: internal error", "op", op, "err", err)
	return fmt.Errorf("storage/postgres: %s: %w", op, err)
}

// sqlState returns the SQLSTATE of a server error, "" for other errors.
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// unavailable reports whether err says the database cannot serve now.
func unavailable(err error) bool {
	if code := sqlState(err); code != "" {
		switch code[:2] {
		case "08", "53", "57", "58", "40":
			return true
		}
		return code == "25006" // read_only_sql_transaction: a standby
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ne) || errors.As(err, &ce) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, pgconn.ErrConnClosed)
}

// retryable reports whether an operation that failed with err before any
// COMMIT was sent may be run again: PostgreSQL rolled it back because of a
// conflict (serialization failure, deadlock), or the connection or server
// failed (the transaction was aborted with it).
func retryable(err error) bool {
	if hasSentinel(err) {
		return false
	}
	switch sqlState(err) {
	case "40001", "40P01":
		return true
	}
	return unavailable(err)
}

// constraintName returns the constraint a server error names, "" if none.
func constraintName(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}
