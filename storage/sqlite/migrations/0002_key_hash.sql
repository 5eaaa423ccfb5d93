-- 0002: the key a certificate certifies, so that revoking one certificate
-- revokes every record of the account for the same key (renewals).
--
-- key_hash is the SHA-256 of the certificate's DER SubjectPublicKeyInfo
-- (storage.KeyHashOf), NULL when der is not shaped like a certificate.
-- saslcert_key_hash is a Go function the store registers on its write
-- connection; it computes the same value for the rows already stored.

ALTER TABLE certs ADD COLUMN key_hash BLOB CHECK (key_hash IS NULL OR length(key_hash) = 32);

UPDATE certs SET key_hash = saslcert_key_hash(der);

-- RevokeKey: an account's records for one key.
CREATE INDEX certs_account_key ON certs (account, key_hash) WHERE key_hash IS NOT NULL;
