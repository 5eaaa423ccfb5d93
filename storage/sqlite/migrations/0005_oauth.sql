-- 0005: the OAuth2 authorization server's state (storage.OAuthStore).
--
-- Times are Unix microseconds, UTC, like everywhere else.

-- Registered clients. tenants and scopes are space-separated lists;
-- secret_hash is an argon2id PHC string ('' without a secret); jwks is the
-- registered JSON Web Key Set (NULL without one).
CREATE TABLE oauth_clients (
	id          TEXT    PRIMARY KEY CHECK (id <> ''),
	tenants     TEXT    NOT NULL CHECK (tenants <> ''),
	scopes      TEXT    NOT NULL,
	secret_hash TEXT    NOT NULL,
	jwks        BLOB,
	jwks_uri    TEXT    NOT NULL,
	created     INTEGER NOT NULL
) STRICT;

-- saslcert's own access-token signing keys (PKCS #8 DER). retired is 0 for
-- the current key; at most one key is current.
CREATE TABLE oauth_keys (
	kid     TEXT    PRIMARY KEY CHECK (kid <> ''),
	alg     TEXT    NOT NULL CHECK (alg <> ''),
	private BLOB    NOT NULL,
	created INTEGER NOT NULL,
	retired INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX oauth_keys_current ON oauth_keys (retired) WHERE retired = 0;

-- Client assertion ids already used, kept until the assertion expires.
CREATE TABLE oauth_jti (
	client  TEXT    NOT NULL,
	jti     TEXT    NOT NULL,
	expires INTEGER NOT NULL,
	PRIMARY KEY (client, jti)
) STRICT, WITHOUT ROWID;
CREATE INDEX oauth_jti_expires ON oauth_jti (expires);

-- Revoked access tokens, kept until the token expires.
CREATE TABLE oauth_revoked (
	jti     TEXT    PRIMARY KEY,
	expires INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX oauth_revoked_expires ON oauth_revoked (expires);
