// Package sqlite is Foundry's embedded store: one SQLite file in WAL mode,
// through the pure-Go modernc.org/sqlite driver.
//
// Writes go through a single connection (SQLite allows one writer at a time;
// queuing in the Go pool is cheaper than retrying SQLITE_BUSY), reads through
// a separate pool of read-only connections that WAL lets run alongside it.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/foundryhq/foundry/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a store.Store on one SQLite file. It is safe for concurrent use.
type DB struct {
	path string
	w    *sql.DB // exactly one connection: every write
	r    *sql.DB // read-only connections
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the SQLite database at path and migrates it
// to the current schema.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		return nil, fmt.Errorf("open sqlite %q: need a plain file path, without '?'", path)
	}
	// The file holds captured prompts and key hashes: create it private.
	// SQLite gives the -wal and -shm files the same permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	f.Close()
	// busy_timeout covers other processes on the same file; within this one
	// the single writer connection serialises writes. BEGIN IMMEDIATE takes the
	// write lock up front so a transaction never fails upgrading a read lock.
	// Records carry kilobytes of JSON: 16 KiB pages (effective only when the
	// file is created) cut write syscalls by ~4x over the 4 KiB default.
	// journal_size_limit shrinks the WAL back after a burst has grown it.
	// A plain name (not a file: URI) reaches SQLite verbatim, '%' and '#'
	// included; the driver strips and applies the parameters after '?'.
	common := "_busy_timeout=10000&_pragma=cache_size(-16000)&_pragma=temp_store(memory)"
	w, err := sql.Open("sqlite", path+"?"+common+"&_pragma=page_size(16384)&_pragma=journal_size_limit(67108864)"+
		"&_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=1&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(0)
	return &DB{path: path, w: w, r: r}, nil
}

// migrate applies the embedded migrations that the file does not have yet.
func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes the database. The writer closes last, so SQLite checkpoints
// the WAL into the main file as its last connection goes.
func (db *DB) Close() error {
	return errors.Join(db.r.Close(), db.w.Close())
}
