-- 0001: certificate records and the audit log.
--
-- Times are INTEGER Unix microseconds, UTC. Fingerprints are the 32-byte
-- SHA-256 of der, as BLOBs. Rows are never deleted: disabled and revoked
-- records stay as history, and their fingerprints stay taken.

CREATE TABLE certs (
	id                 INTEGER PRIMARY KEY,
	account            TEXT    NOT NULL CHECK (account <> ''),
	name               TEXT    NOT NULL CHECK (name <> ''),
	der                BLOB    NOT NULL CHECK (length(der) > 0),
	fingerprint        BLOB    NOT NULL CHECK (length(fingerprint) = 32),
	state              TEXT    NOT NULL CHECK (state IN ('active', 'disabled', 'revoked')),
	no_cert_management INTEGER NOT NULL CHECK (no_cert_management IN (0, 1)),
	resource           TEXT    NOT NULL,
	not_before         INTEGER NOT NULL,
	not_after          INTEGER NOT NULL,
	issuer             TEXT    NOT NULL,
	source             TEXT    NOT NULL CHECK (source IN ('upload', 'enrolled')),
	created            INTEGER NOT NULL,
	changed            INTEGER NOT NULL
) STRICT;

-- A fingerprint is stored once, whatever the state and account.
CREATE UNIQUE INDEX certs_fingerprint ON certs (fingerprint);

-- A name is unique among an account's active records only.
CREATE UNIQUE INDEX certs_active_name ON certs (account, name) WHERE state = 'active';

-- ListCerts: an account's records in id order (the rowid is the implicit
-- last column of the index).
CREATE INDEX certs_account ON certs (account);

CREATE TABLE audit (
	id          INTEGER PRIMARY KEY,
	time        INTEGER NOT NULL,
	actor       TEXT    NOT NULL,
	action      TEXT    NOT NULL CHECK (action IN ('add', 'disable', 'revoke')),
	account     TEXT    NOT NULL,
	name        TEXT    NOT NULL,
	fingerprint BLOB    NOT NULL CHECK (length(fingerprint) = 32)
) STRICT;

-- Audit(account, limit): newest first by id within an account.
CREATE INDEX audit_account ON audit (account);
