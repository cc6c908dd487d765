package judge

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
)

// Cache keeps finished judge verdicts and teacher samples by content hash,
// so re-runs and resumed runs never pay for the same call twice.
// Implementations must be safe for concurrent use.
type Cache interface {
	// Get returns the value stored under key; ok is false when there is none.
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
	// Put stores value under key, replacing any previous value.
	Put(ctx context.Context, key string, value []byte) error
}

// SQLiteCache is a Cache in a SQLite file.
type SQLiteCache struct {
	db   *sql.DB
	path string
}

// OpenCache opens (creating if needed) the SQLite cache file at path.
// Close it when done.
func OpenCache(path string) (*SQLiteCache, error) {
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open judge cache %q: need a file path without '?' or '#'", path)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=10000&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open judge cache %q: %w", path, err)
	}
	// One connection: writes are serialised here rather than failing on
	// SQLite's lock; the cache is small and calls are dominated by upstream latency.
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Two processes (two builds, or a build and foundry eval) may open the
	// same file at once. While one connection switches the file to WAL,
	// SQLite answers the other's first statement SQLITE_BUSY without waiting
	// on busy_timeout, so the schema step is retried until the timeout.
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		_, err = db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS judge_cache (
		key        TEXT PRIMARY KEY,
		value      BLOB NOT NULL,
		created_at INTEGER NOT NULL
	) WITHOUT ROWID`)
		if !isBusy(err) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			continue
		}
		break
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open judge cache %q: %w (is it a SQLite file?)", path, err)
	}
	return &SQLiteCache{db: db, path: path}, nil
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == 5
}

// Get implements Cache.
func (c *SQLiteCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	var v []byte
	err := c.db.QueryRowContext(ctx, `SELECT value FROM judge_cache WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("judge cache %q: get %s: %w", c.path, key, err)
	}
	return v, true, nil
}

// Put implements Cache.
func (c *SQLiteCache) Put(ctx context.Context, key string, value []byte) error {
	_, err := c.db.ExecContext(ctx, `INSERT INTO judge_cache (key, value, created_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, created_at = excluded.created_at`,
		key, value, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("judge cache %q: put %s: %w", c.path, key, err)
	}
	return nil
}

// Len returns the number of cached entries.
func (c *SQLiteCache) Len(ctx context.Context) (int, error) {
	var n int
	if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM judge_cache`).Scan(&n); err != nil {
		return 0, fmt.Errorf("judge cache %q: count: %w", c.path, err)
	}
	return n, nil
}

// Close closes the file.
func (c *SQLiteCache) Close() error { return c.db.Close() }

// cacheKey hashes its parts, each JSON-encoded so that no two different
// part lists give the same bytes.
func cacheKey(parts ...any) (string, error) {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, p := range parts {
		if err := enc.Encode(p); err != nil {
			return "", fmt.Errorf("judge: hash cache key: %T does not encode as JSON: %w", p, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cacheGet decodes a cached value into v; a missing cache, a miss or an
// undecodable entry (an older format) all report false.
func cacheGet(ctx context.Context, c Cache, key string, v any) (bool, error) {
	if c == nil {
		return false, nil
	}
	b, ok, err := c.Get(ctx, key)
	if err != nil || !ok {
		return false, err
	}
	if json.Unmarshal(b, v) != nil {
		return false, nil
	}
	return true, nil
}

func cachePut(ctx context.Context, c Cache, key string, v any) error {
	if c == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("judge cache: encode %T: %w", v, err)
	}
	return c.Put(ctx, key, b)
}
