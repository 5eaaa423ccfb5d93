package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saslcert/saslcert/storage"
)

var _ storage.OAuthStore = (*DB)(nil)

const clientCols = `id, tenants, scopes, secret_hash, jwks, jwks_uri, created`

// AddClient implements storage.OAuthStore.
func (db *DB) AddClient(ctx context.Context, c *storage.OAuthClient) error {
	const op = "add oauth client"
	if err := c.Check(); err != nil {
		return fmt.Errorf("storage/postgres: %s: %w", op, err)
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	now := db.clock()
	scopes := c.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	err := db.write(ctx, op, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO oauth_clients (`+clientCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (id) DO NOTHING`, c.ID, c.Tenants, scopes, c.SecretHash, c.JWKS, c.JWKSURI, now)
		if err == nil && tag.RowsAffected() == 0 {
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

func scanClient(r pgx.Row) (*storage.OAuthClient, error) {
	c := new(storage.OAuthClient)
	if err := r.Scan(&c.ID, &c.Tenants, &c.Scopes, &c.SecretHash, &c.JWKS, &c.JWKSURI, &c.Created); err != nil {
		return nil, err
	}
	if len(c.Scopes) == 0 {
		c.Scopes = nil
	}
	c.Created = c.Created.UTC()
	return c, nil
}

// FindClient implements storage.OAuthStore.
func (db *DB) FindClient(ctx context.Context, id string) (*storage.OAuthClient, error) {
	const op = "find oauth client"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	var c *storage.OAuthClient
	err := db.read(ctx, op, func() error {
		var err error
		c, err = scanClient(db.pool.QueryRow(ctx, `SELECT `+clientCols+` FROM oauth_clients WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("storage/postgres: %s %q: %w", op, id, storage.ErrNotFound)
	}
	return c, nil
}

// ListClients implements storage.OAuthStore.
func (db *DB) ListClients(ctx context.Context) ([]*storage.OAuthClient, error) {
	const op = "list oauth clients"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	var out []*storage.OAuthClient
	err := db.read(ctx, op, func() error {
		rows, err := db.pool.Query(ctx, `SELECT `+clientCols+` FROM oauth_clients ORDER BY id`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*storage.OAuthClient, error) { return scanClient(r) })
		return err
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []*storage.OAuthClient{}
	}
	return out, nil
}

// RemoveClient implements storage.OAuthStore.
func (db *DB) RemoveClient(ctx context.Context, id string) error {
	const op = "remove oauth client"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	return db.write(ctx, op, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM oauth_clients WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("client %q: %w", id, storage.ErrNotFound)
		}
		return err
	})
}

// RotateSigningKey implements storage.OAuthStore.
func (db *DB) RotateSigningKey(ctx context.Context, k *storage.SigningKey) error {
	const op = "rotate signing key"
	if k.ID == "" || k.Alg == "" || len(k.Private) == 0 {
		return fmt.Errorf("storage/postgres: %s: %w: empty kid, alg or key", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	now := db.clock()
	err := db.write(ctx, op, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM oauth_keys WHERE kid = $1)`, k.ID).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("%w: kid %q exists", storage.ErrDuplicate, k.ID)
		}
		if _, err := tx.Exec(ctx, `UPDATE oauth_keys SET retired = $1 WHERE retired IS NULL`, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO oauth_keys (kid, alg, private, created) VALUES ($1, $2, $3, $4)`, k.ID, k.Alg, k.Private, now)
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
	var out []*storage.SigningKey
	err := db.read(ctx, op, func() error {
		rows, err := db.pool.Query(ctx, `SELECT kid, alg, private, created, retired FROM oauth_keys
			ORDER BY retired IS NULL DESC, created DESC, kid`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*storage.SigningKey, error) {
			k := new(storage.SigningKey)
			var retired *time.Time
			if err := r.Scan(&k.ID, &k.Alg, &k.Private, &k.Created, &retired); err != nil {
				return nil, err
			}
			k.Created = k.Created.UTC()
			if retired != nil {
				k.Retired = retired.UTC()
			}
			return k, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []*storage.SigningKey{}
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
	err := db.write(ctx, op, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM oauth_keys WHERE retired IS NOT NULL AND retired < $1`, before)
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

// UseJTI implements storage.OAuthStore.
func (db *DB) UseJTI(ctx context.Context, client, jti string, expires time.Time) error {
	const op = "use jti"
	if client == "" || jti == "" {
		return fmt.Errorf("storage/postgres: %s: %w: empty client or jti", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	now := db.clock()
	return db.write(ctx, op, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM oauth_jti WHERE expires <= $1`, now); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO oauth_jti (client, jti, expires) VALUES ($1, $2, $3)
			ON CONFLICT (client, jti) DO NOTHING`, client, jti, expires)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: jti already used", storage.ErrDuplicate)
		}
		return err
	})
}

// RevokeToken implements storage.OAuthStore.
func (db *DB) RevokeToken(ctx context.Context, jti string, expires time.Time) error {
	const op = "revoke token"
	if jti == "" {
		return fmt.Errorf("storage/postgres: %s: %w: empty jti", op, storage.ErrInvalid)
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	now := db.clock()
	return db.write(ctx, op, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM oauth_revoked WHERE expires <= $1`, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO oauth_revoked (jti, expires) VALUES ($1, $2)
			ON CONFLICT (jti) DO UPDATE SET expires = greatest(oauth_revoked.expires, excluded.expires)`, jti, expires)
		return err
	})
}

// TokenRevoked implements storage.OAuthStore.
func (db *DB) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	const op = "token revoked"
	if err := db.begin(ctx, op); err != nil {
		return false, err
	}
	var revoked bool
	err := db.read(ctx, op, func() error {
		return db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM oauth_revoked WHERE jti = $1)`, jti).Scan(&revoked)
	})
	return revoked, err
}
