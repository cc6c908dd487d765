// Package dsn opens the store a data source name points at (FOUNDRY_DB):
// PostgreSQL for postgres:// and postgresql:// URLs, SQLite for anything else.
package dsn

import (
	"context"
	"fmt"
	"strings"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/postgres"
	"github.com/foundryhq/foundry/store/sqlite"
)

// Open opens the store named by s:
//
//	postgres://user@host:5432/db?sslmode=disable   PostgreSQL (also postgresql://)
//	sqlite:path/to/foundry.db, sqlite:///abs/path   SQLite
//	file:path/to/foundry.db                         SQLite
//	path/to/foundry.db                              SQLite
func Open(ctx context.Context, s string) (store.Store, error) {
	if isPostgres(s) {
		db, err := postgres.Open(ctx, s)
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	path := SQLitePath(s)
	if path == "" {
		return nil, fmt.Errorf("open store: empty database path in %q", s)
	}
	if strings.Contains(s, "dbname=") || strings.Contains(s, "host=") {
		// Without this, a key=value PostgreSQL DSN would become a SQLite file name.
		return nil, fmt.Errorf("open store: %q looks like a key=value PostgreSQL DSN: write it as a postgres:// URL", s)
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// isPostgres matches the URL schemes pgx parses (lower case only, as pgx).
func isPostgres(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// SQLitePath returns the file path of a SQLite DSN: s without a "sqlite:" or
// "file:" prefix (and the "//" of a URL form such as sqlite:///var/foundry.db).
func SQLitePath(s string) string {
	for _, prefix := range []string{"sqlite:", "file:"} {
		if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
			return strings.TrimPrefix(s[len(prefix):], "//")
		}
	}
	return s
}
