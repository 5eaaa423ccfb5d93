-- 0002: tombstones of deleted accounts.
--
-- A row means: the server deleted this account (docs/PLUGIN-PROTOCOL.md,
-- account-deleted and reconciliation); every certificate of it was revoked
-- in the transaction that wrote the row, and AddCert refuses the account
-- until the row is removed because the name was registered again.

CREATE TABLE tombstones (
	account TEXT    PRIMARY KEY CHECK (account <> ''),
	deleted INTEGER NOT NULL, -- Unix microseconds, UTC
	actor   TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
