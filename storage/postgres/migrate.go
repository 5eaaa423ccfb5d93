package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded schema step; version n is file n_*.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations in version order. Numbers
// need not be consecutive (features add theirs with numbers of their own),
// but each is used once.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("storage/postgres: migration %q: name must be NNNN_description.sql", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("storage/postgres: migrations %q and %q have one number", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// SchemaVersion is the newest embedded migration's number.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrateLock is the key of the advisory lock migrations run under.
const migrateLock int64 = 0x7361736c6d696772 // "saslmigr"

// migrate applies, in one transaction under an advisory lock (so that
// processes starting together take turns and the later ones find nothing
// to do), every embedded migration the database has not recorded in
// saslcert_migrations yet. A database that has a migration this program
// does not know, numbered above its newest, is refused: it was migrated by
// a newer program.
func (db *DB) migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return db.mapErr(ctx, "migrate: begin", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return db.mapErr(ctx, "migrate: lock", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS saslcert_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return db.mapErr(ctx, "migrate: create table", err)
	}
	rows, err := tx.Query(ctx, `SELECT version FROM saslcert_migrations`)
	if err != nil {
		return db.mapErr(ctx, "migrate: read versions", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return db.mapErr(ctx, "migrate: read versions", err)
	}
	newest := 0
	if len(ms) > 0 {
		newest = ms[len(ms)-1].version
	}
	for _, v := range applied {
		if v > newest {
			return fmt.Errorf("storage/postgres: the database has schema migration %d, newer than this program's %d", v, newest)
		}
	}
	var done []string
	for _, m := range ms {
		if slices.Contains(applied, m.version) {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return db.mapErr(ctx, "migrate: "+m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO saslcert_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return db.mapErr(ctx, "migrate: record "+m.name, err)
		}
		done = append(done, m.name)
	}
	if err := tx.Commit(ctx); err != nil {
		return db.mapErr(ctx, "migrate: commit", err)
	}
	for _, n := range done {
		db.log.Info("storage/postgres: schema migrated", "migration", n)
	}
	return nil
}
