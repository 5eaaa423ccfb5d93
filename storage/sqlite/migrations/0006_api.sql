-- 0006: the /v1 API: searches of a tenant (domain) and idempotency keys.

-- SearchCerts and SearchAudit filter on the account's domain (the part after
-- "@"; a bare JID has one "@"), paging by id. The expressions must stay
-- exactly those of the queries (storage/sqlite/search.go) for SQLite to use
-- the indexes.
CREATE INDEX certs_domain ON certs (substr(account, instr(account, '@') + 1), id);
CREATE INDEX audit_domain ON audit (substr(account, instr(account, '@') + 1), id);

-- Retried POSTs with the same Idempotency-Key (storage.Idempotency): one row
-- per (scope, key); done = 0 while the work is in progress. Times are Unix
-- microseconds, UTC.
CREATE TABLE idempotency (
	scope        TEXT    NOT NULL CHECK (scope <> ''),
	key          TEXT    NOT NULL CHECK (key <> ''),
	hash         BLOB    NOT NULL CHECK (length(hash) = 32),
	done         INTEGER NOT NULL CHECK (done IN (0, 1)),
	status       INTEGER NOT NULL,
	content_type TEXT    NOT NULL,
	body         BLOB    NOT NULL,
	created      INTEGER NOT NULL,
	expires      INTEGER NOT NULL,
	PRIMARY KEY (scope, key)
) STRICT;

CREATE INDEX idempotency_expires ON idempotency (expires);
