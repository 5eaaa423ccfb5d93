// Package sqlite is the SQLite backend of storage.Store, the default store of
// saslcert: one database file under the data directory.
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: a write method returns
// nil only after its transaction's WAL frames have been written and fsynced.
// A successful write therefore survives a kill -9 of the process (which only
// needs the write to have reached the OS) and also an OS crash or power loss
// (which needs the fsync). synchronous=NORMAL would keep the first promise but
// may drop the last commits on power loss; a revocation that silently comes
// back as active is not acceptable for a credential store, and writes are
// rare, so the price of one fsync per write is paid.
//
// # Connections
//
// A DB holds two pools on the same file. Writes go through a pool of exactly
// one connection whose transactions begin with BEGIN IMMEDIATE: writers queue
// in the pool (bounded by their context) rather than in SQLite, and SQLite's
// busy timeout only comes into play against other processes. Reads go through
// a pool of several query_only connections; in WAL mode they never wait for
// the writer. Hot statements are prepared once per connection. Connections
// are opened without SQLite's per-connection mutex (_mutex=no):
// database/sql never uses one connection from two goroutines at once.
//
// # Lookups
//
// FindCertByFingerprint is one prepared statement on the read pool: a search
// of the unique fingerprint index, then of the table by rowid. Each read
// transaction costs two fcntl(2) calls for SQLite's WAL read lock; at a
// million rows the index and table leaves are mostly outside the 2 MB page
// cache of each connection and are read with pread(2). Options.MmapSize maps
// the file instead, which saves those reads at the price of RSS (see there).
//
// # Keys
//
// Each record keeps the SHA-256 of its certificate's SubjectPublicKeyInfo
// (key_hash, storage.KeyHashOf; computed in Go, also as the SQL function
// saslcert_key_hash that migration 0002 uses), indexed per account: a
// revocation revokes the account's other records for that key in its own
// transaction (RevokeKey), and AddOptions.Renews is checked in the insert's.
//
// # Time
//
// Times are stored as INTEGER Unix microseconds and come back in UTC. The
// store truncates its clock to the microsecond, so Created and Changed read
// back exactly as AddCert and SetState set them; NotBefore and NotAfter lose
// any sub-microsecond part (certificate times are whole seconds). Microseconds
// cover years 1 to 9999, including the 99991231235959Z "no expiry" date of RFC
// 5280, which Unix nanoseconds (years 1678 to 2262) could not hold.
//
// # Errors
//
// Driver errors are mapped by SQLite result code, never by message text:
// busy, locked, full, I/O, read-only and cannot-open errors wrap
// storage.ErrUnavailable, as does any call after Close. A cancelled context
// gives an error wrapping context.Canceled; an expired deadline gives one
// wrapping both context.DeadlineExceeded and storage.ErrUnavailable (the store
// did not serve in time; nothing was changed).
package sqlite
