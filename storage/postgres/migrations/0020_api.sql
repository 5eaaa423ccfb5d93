-- 0020: the /v1 API: searches of a tenant (domain) and idempotency keys
-- (storage/sqlite's 0006_api).

-- SearchCerts and SearchAudit filter on the account's domain (a bare JID
-- has one "@"), paging by id; the expression must stay the queries' own
-- (storage/postgres/api.go).
CREATE INDEX certs_domain ON certs ((split_part(account, '@', 2)), id);
CREATE INDEX audit_domain ON audit ((split_part(account, '@', 2)), id);

-- Retried POSTs with the same Idempotency-Key (storage.Idempotency).
CREATE TABLE idempotency (
	scope        text        COLLATE "C" NOT NULL CHECK (scope <> ''),
	key          text        COLLATE "C" NOT NULL CHECK (key <> ''),
	hash         bytea       NOT NULL CHECK (length(hash) = 32),
	done         boolean     NOT NULL,
	status       integer     NOT NULL,
	content_type text        NOT NULL,
	body         bytea       NOT NULL,
	created      timestamptz NOT NULL,
	expires      timestamptz NOT NULL,
	PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_expires ON idempotency (expires);
