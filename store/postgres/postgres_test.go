package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/postgres"
	"github.com/foundryhq/foundry/store/storetest"
)

// serverDSN is the test server: FOUNDRY_TEST_POSTGRES or a local default.
func serverDSN() string {
	if dsn := os.Getenv("FOUNDRY_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// requireServer skips the test when the server is unreachable, or fails it
// when FOUNDRY_REQUIRE_ALL=1 (CI must never count a skip as a pass).
func requireServer(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverDSN())
	if err == nil {
		conn.Close(ctx)
		return
	}
	msg := fmt.Sprintf("PostgreSQL at FOUNDRY_TEST_POSTGRES (%s) is unreachable: %v; "+
		"start one (scripts/test.sh does) or point FOUNDRY_TEST_POSTGRES at one", redact(serverDSN()), err)
	if os.Getenv("FOUNDRY_REQUIRE_ALL") == "1" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxx")
			return u.String()
		}
	}
	return dsn
}

// newSchema creates an empty schema, dropped when tb ends, and returns a DSN
// whose search_path selects it.
func newSchema(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	schema := "foundry_test_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, serverDSN())
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, serverDSN())
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withParam(serverDSN(), "search_path", schema)
}

// withParam adds a run-time parameter to a URL or key=value DSN.
func withParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

// schemas gives each test one schema, the same on every call for that test,
// which is what storetest.Open asks for.
type schemas struct {
	mu   sync.Mutex
	dsns map[*testing.T]string
}

func (s *schemas) open(t *testing.T) store.Store {
	t.Helper()
	s.mu.Lock()
	dsn, ok := s.dsns[t]
	if !ok {
		dsn = newSchema(t)
		s.dsns[t] = dsn
	}
	s.mu.Unlock()
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	return db
}

func TestStore(t *testing.T) {
	requireServer(t)
	s := &schemas{dsns: map[*testing.T]string{}}
	storetest.Run(t, s.open)
}

// TestReplicasMigrateTogether starts several stores on one empty schema at
// once, as gateway replicas would: the advisory lock lets exactly one run the
// migrations, and all of them then work.
func TestReplicasMigrateTogether(t *testing.T) {
	requireServer(t)
	dsn := newSchema(t)
	ctx := context.Background()
	const n = 4
	dbs := make([]*postgres.DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = postgres.Open(ctx, dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Open: %v", i, err)
		}
		defer dbs[i].Close()
	}
	for i, db := range dbs {
		if err := db.InsertRecords(ctx, []store.Record{{ID: fmt.Sprint("r", i), CreatedAt: time.Now()}, {ID: "shared", CreatedAt: time.Now()}}); err != nil {
			t.Fatalf("replica %d: InsertRecords: %v", i, err)
		}
	}
	for i, db := range dbs {
		if got, err := db.CountRecords(ctx, store.Query{}); err != nil || got != n+1 {
			t.Errorf("replica %d: CountRecords = %d, %v; want %d", i, got, err, n+1)
		}
	}
}

func TestOpenBadDSN(t *testing.T) {
	if db, err := postgres.Open(context.Background(), "postgres://u@127.0.0.1:1/x?connect_timeout=1&sslmode=disable"); err == nil {
		db.Close()
		t.Fatal("Open on a closed port succeeded")
	}
}

func BenchmarkInsertRecords(b *testing.B) {
	requireServer(b)
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db, err := postgres.Open(context.Background(), newSchema(b))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			storetest.BenchmarkInsertRecords(b, db, size)
		})
	}
}

func BenchmarkInsertSmallRecords(b *testing.B) {
	requireServer(b)
	db, err := postgres.Open(context.Background(), newSchema(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchmarkInsertSmallRecords(b, db, 1000)
}
