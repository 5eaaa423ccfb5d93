package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/saslcert/saslcert/storage"
)

var _ storage.OAuthStore = (*DB)(nil)

const clientCols = `id, tenants, scopes, secret_hash, jwks, jwks_uri, created`

// AddClient implements storage.OAuthStore.
func (db *DB) AddClient(ctx context.Context, c *storage.OAuthClient) error {
	const op = "add oauth client"
	if err := c.Check(); err != nil {
		return fmt.Errorf("storage/sqlite: %s: %w", op, err)
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	now := db.clock()
	err := db.write(ctx, op, func(tx *sql.Tx) error {
		var jwks any
		if c.JWKS != nil {
			jwks = c.JWKS
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_clients (`+clientCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.ID, strings.Join(c.Tenants, " "), strings.Join(c.Scopes, " "), c.SecretHash, jwks, c.JWKSURI, micro(now))
		if isUnique(err) {
			return fmt.Errorf("%w: client %q exists", storage.ErrDuplicate, c.ID)
		}
		return err
	})
	if err != nil {
		return err
	}
	c.Created = now
	return nil
}

// FindClient implements storage.OAuthStore.
func (db *DB) FindClient(ctx context.Context, id string) (*storage.OAuthClient, error) {
	const op = "find oauth client"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	c, err := scanClient(db.r.QueryRowContext(ctx, `SELECT `+clientCols+` FROM oauth_clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("storage/sqlite: %s %q: %w", op, id, storage.ErrNotFound)
	}
	if err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	return c, nil
}

// ListClients implements storage.OAuthStore.
func (db *DB) ListClients(ctx context.Context) ([]*storage.OAuthClient, error) {
	const op = "list oauth clients"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+clientCols+` FROM oauth_clients ORDER BY id`)
	if err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	defer rows.Close()
	out := []*storage.OAuthClient{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, db.mapErr(ctx, op, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	return out, nil
}

func scanClient(s rowScanner) (*storage.OAuthClient, error) {
	c := new(storage.OAuthClient)
	var tenants, scopes string
	if err := s.Scan(&c.ID, &tenants, &scopes, &c.SecretHash, &c.JWKS, &c.JWKSURI, timeDest{&c.Created}); err != nil {
		return nil, err
	}
	c.Tenants, c.Scopes = strings.Fields(tenants), strings.Fields(scopes)
	return c, nil
}

// RemoveClient implements storage.OAuthStore.
func (db *DB) RemoveClient(ctx context.Context, id string) error {
	const op = "remove oauth client"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	return db.write(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM oauth_clients WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, fmt.Errorf("client %q: %w", id, storage.ErrNotFound))
		}
		return nil
	})
}

// RotateSigningKey implements storage.OAuthStore.
func (db *DB) RotateSigningKey(ctx context.Context, k *storage.SigningKey) error {
	const op = "rotate signing key"
	if k.ID == "" || k.Alg == "" || len(k.Private) == 0 {
		return fmt.Errorf("storage/sqlite: %s: %w: empty kid, alg or key", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	now := db.clock()
	err := db.write(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_keys SET retired = ? WHERE retired = 0`, micro(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_keys (kid, alg, private, created) VALUES (?, ?, ?, ?)`,
			k.ID, k.Alg, k.Private, micro(now))
		if isUnique(err) {
			return fmt.Errorf("%w: kid %q exists", storage.ErrDuplicate, k.ID)
		}
		return err
	})
	if err != nil {
		return err
	}
	k.Created, k.Retired = now, time.Time{}
	return nil
}

// SigningKeys implements storage.OAuthStore.
func (db *DB) SigningKeys(ctx context.Context) ([]*storage.SigningKey, error) {
	const op = "list signing keys"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx,
		`SELECT kid, alg, private, created, retired FROM oauth_keys ORDER BY retired = 0 DESC, created DESC, kid`)
	if err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	defer rows.Close()
	out := []*storage.SigningKey{}
	for rows.Next() {
		k := new(storage.SigningKey)
		var retired int64
		if err := rows.Scan(&k.ID, &k.Alg, &k.Private, timeDest{&k.Created}, &retired); err != nil {
			return nil, db.mapErr(ctx, op, err)
		}
		if retired != 0 {
			k.Retired = fromMicro(retired)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, db.mapErr(ctx, op, err)
	}
	return out, nil
}

// PruneSigningKeys implements storage.OAuthStore.
func (db *DB) PruneSigningKeys(ctx context.Context, before time.Time) (int, error) {
	const op = "prune signing keys"
	if err := db.begin(ctx, op); err != nil {
		return 0, err
	}
	var n int64
	err := db.write(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM oauth_keys WHERE retired <> 0 AND retired < ?`, micro(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// UseJTI implements storage.OAuthStore.
func (db *DB) UseJTI(ctx context.Context, client, jti string, expires time.Time) error {
	const op = "use jti"
	if client == "" || jti == "" {
		return fmt.Errorf("storage/sqlite: %s: %w: empty client or jti", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	now := db.clock()
	return db.write(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_jti WHERE expires <= ?`, micro(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_jti (client, jti, expires) VALUES (?, ?, ?)`,
			client, jti, micro(expires))
		if isUnique(err) {
			return fmt.Errorf("%w: jti already used", storage.ErrDuplicate)
		}
		return err
	})
}

// RevokeToken implements storage.OAuthStore.
func (db *DB) RevokeToken(ctx context.Context, jti string, expires time.Time) error {
	const op = "revoke token"
	if jti == "" {
		return fmt.Errorf("storage/sqlite: %s: %w: empty jti", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	now := db.clock()
	return db.write(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_revoked WHERE expires <= ?`, micro(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_revoked (jti, expires) VALUES (?, ?)
			ON CONFLICT (jti) DO UPDATE SET expires = max(expires, excluded.expires)`, jti, micro(expires))
		return err
	})
}

// TokenRevoked implements storage.OAuthStore.
func (db *DB) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	const op = "token revoked"
	if err := db.begin(ctx, op); err != nil {
		return false, err
	}
	var one int
	err := db.r.QueryRowContext(ctx, `SELECT 1 FROM oauth_revoked WHERE jti = ?`, jti).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, db.mapErr(ctx, op, err)
	}
	return true, nil
}
