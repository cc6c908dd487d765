package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/internal/clean"
	"github.com/foundryhq/foundry/store/internal/filter"
)

// AddFeedback stores f; store.ErrNotFound when no record has f.RequestID.
// A zero CreatedAt means now.
func (db *DB) AddFeedback(ctx context.Context, f store.Feedback) error {
	f = clean.Feedback(f)
	at := f.CreatedAt
	if at.IsZero() {
		at = time.Now()
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO feedback (request_id, score, label, comment, created_at)
		SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM records WHERE id = $1)`,
		f.RequestID, f.Score, f.Label, f.Comment, filter.Micro(at))
	switch {
	case isForeignKeyViolation(err): // the record was deleted since EXISTS saw it
		return fmt.Errorf("add feedback for %q: %w", f.RequestID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("add feedback for %q: %w", f.RequestID, err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("add feedback for %q: %w", f.RequestID, store.ErrNotFound)
	}
	return nil
}

// CreateKey stores k. A zero CreatedAt means now; IDs and hashes are unique.
func (db *DB) CreateKey(ctx context.Context, k store.Key) error {
	k = clean.Key(k)
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO keys (id, name, project, prefix, hash, created_at, revoked_at, last_used_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.Name, k.Project, k.Prefix, k.Hash, filter.Micro(k.CreatedAt), optMicro(k.RevokedAt), optMicro(k.LastUsedAt))
	if err != nil {
		return fmt.Errorf("create key %q: %w", k.ID, err)
	}
	return nil
}

const selectKey = `SELECT id, name, project, prefix, hash, created_at, revoked_at, last_used_at FROM keys `

// KeyByHash returns the key whose secret hashes to hash, revoked or not, or
// store.ErrNotFound.
func (db *DB) KeyByHash(ctx context.Context, hash string) (store.Key, error) {
	hash = clean.Text(hash)
	k, err := scanKey(db.pool.QueryRow(ctx, selectKey+"WHERE hash = $1", hash))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("key by hash: %w", err)
	}
	return k, nil
}

// ListKeys returns the keys of project, or of every project when project is
// "", oldest first.
func (db *DB) ListKeys(ctx context.Context, project string) ([]store.Key, error) {
	project = clean.Text(project)
	rows, err := db.pool.Query(ctx, selectKey+"WHERE $1 = '' OR project = $1 ORDER BY created_at, id", project)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var keys []store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return keys, nil
}

// RevokeKey marks a key revoked now; revoking it again keeps the first time.
func (db *DB) RevokeKey(ctx context.Context, id string) error {
	id = clean.Text(id)
	return db.updateKey(ctx, "revoke key", id,
		`UPDATE keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1`, filter.Micro(time.Now()))
}

// TouchKey records that a key was used at at; an earlier time than the one
// stored is ignored, so out-of-order touches never move it back.
func (db *DB) TouchKey(ctx context.Context, id string, at time.Time) error {
	id = clean.Text(id)
	return db.updateKey(ctx, "touch key", id,
		`UPDATE keys SET last_used_at = greatest(last_used_at, $2) WHERE id = $1`, filter.Micro(at))
}

// updateKey runs an UPDATE on the key id ($1); store.ErrNotFound when no
// row has that id.
func (db *DB) updateKey(ctx context.Context, what, id, query string, arg any) error {
	tag, err := db.pool.Exec(ctx, query, id, arg)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s %q: %w", what, id, store.ErrNotFound)
	}
	return nil
}

func scanKey(row pgx.Row) (store.Key, error) {
	var k store.Key
	if err := row.Scan(&k.ID, &k.Name, &k.Project, &k.Prefix, &k.Hash, &k.CreatedAt, &k.RevokedAt, &k.LastUsedAt); err != nil {
		return store.Key{}, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	for _, t := range []*time.Time{k.RevokedAt, k.LastUsedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return k, nil
}

func optMicro(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	m := filter.Micro(*t)
	return &m
}
