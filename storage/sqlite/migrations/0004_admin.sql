-- 0004: how far each running component has passed the audit log on (so
-- that the administrator's commands can wait for it).
--
-- A component (watcher, named by its JID) writes its row after every poll of
-- the audit log: audit_id is the newest entry it has passed on to the server,
-- seen (Unix microseconds, UTC) when it last polled.
CREATE TABLE watchers (
	name     TEXT    PRIMARY KEY CHECK (name <> ''),
	audit_id INTEGER NOT NULL,
	seen     INTEGER NOT NULL
) STRICT;

-- Prune deletes audit entries older than the retention (storage.Store.Prune);
-- expired disabled and revoked records are deleted too, so rows of certs are
-- no longer kept forever (an expired certificate can neither log in nor be
-- stored again).
CREATE INDEX audit_time ON audit (time);
