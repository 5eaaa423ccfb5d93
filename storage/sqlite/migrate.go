package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// The schema version is kept in SQLite's PRAGMA user_version, which is part
// of the database header and therefore changes atomically with the
// migration's DDL in the same transaction.

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded schema step; version n is file n_*.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations in version order, checking
// that they are numbered 1, 2, 3, ... without gaps or duplicates.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("storage/sqlite: migration %q: name must be NNNN_description.sql", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("storage/sqlite: migration %q: want version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this package writes: the number of
// the newest embedded migration.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate brings the database up to the newest embedded schema, one
// transaction per migration. It is idempotent, and safe against another
// process migrating the same file at the same time: each step re-reads the
// version inside its write transaction. A database newer than this code is
// refused.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		applied, err := db.applyMigration(ctx, m, len(ms))
		if err != nil {
			return err
		}
		if applied {
			db.log.Info("storage/sqlite: schema migrated", "path", db.path, "version", m.version, "migration", m.name)
		}
	}
	return nil
}

func (db *DB) applyMigration(ctx context.Context, m migration, newest int) (bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return false, db.mapErr(ctx, "migrate: begin", err)
	}
	defer tx.Rollback()
	v, err := userVersion(ctx, tx)
	if err != nil {
		return false, db.mapErr(ctx, "migrate: read version", err)
	}
	if v > newest {
		return false, fmt.Errorf("storage/sqlite: %s: schema version %d is newer than this program's %d", db.path, v, newest)
	}
	if v >= m.version {
		return false, nil
	}
	if v != m.version-1 {
		return false, fmt.Errorf("storage/sqlite: %s: schema version %d, cannot apply migration %d", db.path, v, m.version)
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, db.mapErr(ctx, "migrate: "+m.name, err)
	}
	// PRAGMA takes no bound parameters; m.version is an int we control.
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(m.version)); err != nil {
		return false, db.mapErr(ctx, "migrate: set version", err)
	}
	if err := tx.Commit(); err != nil {
		return false, db.mapErr(ctx, "migrate: commit", err)
	}
	return true, nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func userVersion(ctx context.Context, q queryer) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}
