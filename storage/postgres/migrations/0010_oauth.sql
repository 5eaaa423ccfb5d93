-- 0010: the OAuth2 authorization server's state (storage.OAuthStore), as
-- storage/sqlite's migration 0005.

CREATE TABLE oauth_clients (
	id          text        COLLATE "C" PRIMARY KEY CHECK (id <> ''),
	tenants     text[]      NOT NULL CHECK (cardinality(tenants) > 0),
	scopes      text[]      NOT NULL,
	secret_hash text        NOT NULL,
	jwks        bytea,
	jwks_uri    text        NOT NULL,
	created     timestamptz NOT NULL
);

-- Access-token signing keys (PKCS #8 DER); retired IS NULL for the current
-- key, of which there is at most one.
CREATE TABLE oauth_keys (
	kid     text        PRIMARY KEY CHECK (kid <> ''),
	alg     text        NOT NULL CHECK (alg <> ''),
	private bytea       NOT NULL,
	created timestamptz NOT NULL,
	retired timestamptz
);
CREATE UNIQUE INDEX oauth_keys_current ON oauth_keys ((retired IS NULL)) WHERE retired IS NULL;

CREATE TABLE oauth_jti (
	client  text        NOT NULL,
	jti     text        NOT NULL,
	expires timestamptz NOT NULL,
	PRIMARY KEY (client, jti)
);
CREATE INDEX oauth_jti_expires ON oauth_jti (expires);

CREATE TABLE oauth_revoked (
	jti     text        PRIMARY KEY,
	expires timestamptz NOT NULL
);
CREATE INDEX oauth_revoked_expires ON oauth_revoked (expires);
