// Package postgres is Foundry's shared store for several gateway replicas:
// one PostgreSQL database through pgx. Captured calls are written with COPY.
package postgres

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/foundryhq/foundry/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a store.Store on a PostgreSQL database. It is safe for concurrent
// use, and several processes may share one database.
type DB struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*DB)(nil)

// Open connects to the database at dsn (a postgres:// URL or key=value
// string; search_path selects the schema) and migrates it to the current
// schema. Replicas starting together take turns through an advisory lock.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", target(cfg), err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", target(cfg), err)
	}
	return &DB{pool: pool}, nil
}

// target names the server and database for errors, never the password.
func target(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// migrate applies the embedded migrations under a session advisory lock, so
// replicas starting at once never run them twice. The lock id is derived
// from the schema, so databases in different schemas migrate independently.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	var schema string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("foundry migrations " + schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64()>>1)),
		lock.WithLockTimeout(1, 300), // poll every second for up to 5 minutes
	)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate schema %q: %w", schema, err)
	}
	return nil
}

// Close waits for queries in flight and closes every connection.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}
