// Package postgres is the storage.Store on PostgreSQL (jackc/pgx/v5 with a
// pgxpool connection pool), for deployments that outgrow one machine:
// several saslcert processes, each attached to its own XMPP server, share
// one database.
//
// # Contract
//
// It passes storage/storetest, the suite storage/sqlite passes, with its
// kill -9 durability test. Every write transaction first takes one
// transaction-level advisory lock (writeLock), so writers are serialised
// as in SQLite: audit IDs grow in commit order (a reader following the log
// by ID skips nothing), and the checks before an insert see every committed
// write. Reads (the login lookup among them) take no lock.
//
// # Errors
//
// Server errors are mapped by SQLSTATE (errors.go): a server that is down,
// restarting, shutting down, out of resources or a read-only standby, and
// any network failure, give storage.ErrUnavailable, which protocols answer
// with "wait" or temporary-auth-failure; serialization failures and
// deadlocks are retried. One case cannot be told apart: a connection lost
// while COMMIT was in flight gives ErrUnavailable although the change may
// have been committed (a retried AddCert then gets ErrDuplicate, a retried
// revocation finds the record revoked).
//
// # Schema
//
// Migrations are embedded (migrations/NNNN_*.sql) and applied by Open in
// one transaction under an advisory lock, so processes may start together.
// Numbers need not be consecutive; applied ones are recorded in
// saslcert_migrations.
//
// # Several processes
//
// Every transaction that adds audit entries notifies the channel
// saslcert_audit (a trigger); Changes (feed.go) listens on it, so that a
// process learns at once of the others' changes (storage.ChangeFeed).
// Exclusive (feed.go) runs a job in at most one process at a time
// (storage.Exclusive), with a session-level advisory lock.
package postgres
