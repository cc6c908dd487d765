package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
	"github.com/foundryhq/foundry/store/storetest"
)

// files gives each test one database file, the same on every call for that
// test, which is what storetest.Open asks for.
type files struct {
	mu    sync.Mutex
	paths map[*testing.T]string
}

func (f *files) open(t *testing.T) store.Store {
	t.Helper()
	f.mu.Lock()
	path, ok := f.paths[t]
	if !ok {
		path = filepath.Join(t.TempDir(), "foundry.db")
		f.paths[t] = path
	}
	f.mu.Unlock()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("sqlite.Open(%q): %v", path, err)
	}
	return db
}

func TestStore(t *testing.T) {
	f := &files{paths: map[*testing.T]string{}}
	storetest.Run(t, f.open)
}

func TestOpenRejectsNonFilePaths(t *testing.T) {
	for _, path := range []string{"", ":memory:", "a.db?mode=ro", "file:a.db"} {
		if db, err := sqlite.Open(context.Background(), path); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

// TestOpenOddPath opens a file whose name a URI parser would change, and
// checks that it is created private.
func TestOpenOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a%20b #1.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	if err := db.InsertRecords(context.Background(), []store.Record{{ID: "x", CreatedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the database is not at %q: %v", path, err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "foundry.db")
	if db, err := sqlite.Open(context.Background(), path); err == nil {
		db.Close()
		t.Errorf("Open(%q) succeeded, want an error", path)
	}
}

func BenchmarkInsertRecords(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(sizeName(size), func(b *testing.B) {
			db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			storetest.BenchmarkInsertRecords(b, db, size)
		})
	}
}

func sizeName(n int) string {
	return fmt.Sprintf("batch=%d", n)
}

// BenchmarkInsertSmallRecords inserts records without request or response
// bodies: the cost of the schema (indexes, tags) alone.
func BenchmarkInsertSmallRecords(b *testing.B) {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchmarkInsertSmallRecords(b, db, 1000)
}

// TestRetentionInChunks deletes more records than one retention transaction
// holds, while another handle on the same file (as a second process would)
// sees the result.
func TestRetentionInChunks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "foundry.db")
	a, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]store.Record, 12345)
	for i := range recs {
		recs[i] = store.Record{ID: fmt.Sprint("r", i), CreatedAt: base.Add(time.Duration(i) * time.Second), Tags: []string{"t"}}
	}
	if err := a.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	n, err := b.DeleteRecordsBefore(ctx, base.Add(12000*time.Second))
	if err != nil || n != 12000 {
		t.Fatalf("DeleteRecordsBefore = %d, %v; want 12000", n, err)
	}
	for _, s := range []store.Store{a, b} {
		if got, err := s.CountRecords(ctx, store.Query{Tags: []string{"t"}}); err != nil || got != 345 {
			t.Errorf("CountRecords(tag t) = %d, %v; want 345", got, err)
		}
	}
}
