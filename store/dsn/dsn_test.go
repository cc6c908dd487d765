package dsn_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/dsn"
	"github.com/foundryhq/foundry/store/postgres"
	"github.com/foundryhq/foundry/store/sqlite"
)

func TestSQLitePath(t *testing.T) {
	for in, want := range map[string]string{
		"foundry.db":               "foundry.db",
		"/var/lib/foundry.db":      "/var/lib/foundry.db",
		"sqlite:foundry.db":        "foundry.db",
		"sqlite:///var/foundry.db": "/var/foundry.db",
		"SQLite://rel/foundry.db":  "rel/foundry.db",
		"file:foundry.db":          "foundry.db",
		"file:///tmp/x/foundry.db": "/tmp/x/foundry.db",
		"./sqlite:odd/name.db":     "./sqlite:odd/name.db",
		"":                         "",
	} {
		if got := dsn.SQLitePath(in); got != want {
			t.Errorf("SQLitePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, s := range []string{
		filepath.Join(dir, "plain.db"),
		"sqlite:" + filepath.Join(dir, "prefixed.db"),
		"sqlite://" + filepath.Join(dir, "url.db"),
		"file:" + filepath.Join(dir, "file.db"),
	} {
		st, err := dsn.Open(ctx, s)
		if err != nil {
			t.Fatalf("Open(%q): %v", s, err)
		}
		if _, ok := st.(*sqlite.DB); !ok {
			t.Errorf("Open(%q) = %T, want *sqlite.DB", s, st)
		}
		if err := st.InsertRecords(ctx, []store.Record{{ID: "x", CreatedAt: time.Now()}}); err != nil {
			t.Errorf("Open(%q): InsertRecords: %v", s, err)
		}
		st.Close()
		if _, err := os.Stat(dsn.SQLitePath(s)); err != nil {
			t.Errorf("Open(%q) did not create the file: %v", s, err)
		}
	}
	for _, s := range []string{"", "sqlite:", "file:", "host=localhost dbname=foundry", "POSTGRES://u@h/db"} {
		if st, err := dsn.Open(ctx, s); err == nil {
			st.Close()
			t.Errorf("Open(%q) succeeded, want an error", s)
		}
	}
}

func TestOpenPostgres(t *testing.T) {
	ctx := context.Background()
	server := os.Getenv("FOUNDRY_TEST_POSTGRES")
	if server == "" {
		server = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, server)
	if err != nil {
		msg := "PostgreSQL at FOUNDRY_TEST_POSTGRES is unreachable: " + err.Error()
		if os.Getenv("FOUNDRY_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "foundry_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("FOUNDRY_TEST_POSTGRES must be a postgres:// URL for this test: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	for _, scheme := range []string{"postgres", "postgresql"} {
		u.Scheme = scheme
		st, err := dsn.Open(ctx, u.String())
		if err != nil {
			t.Fatalf("Open(%s://...): %v", scheme, err)
		}
		if _, ok := st.(*postgres.DB); !ok {
			t.Errorf("Open(%s://...) = %T, want *postgres.DB", scheme, st)
		}
		st.Close()
	}
	var tables int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'records'", schema).Scan(&tables); err != nil || tables != 1 {
		t.Errorf("records table in %s: %d, %v; want the migrations to have run there", schema, tables, err)
	}
}
