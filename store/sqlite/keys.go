package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/internal/clean"
)

// AddFeedback stores f; store.ErrNotFound when no record has f.RequestID.
// A zero CreatedAt means now.
func (db *DB) AddFeedback(ctx context.Context, f store.Feedback) error {
	f = clean.Feedback(f)
	at := f.CreatedAt
	if at.IsZero() {
		at = time.Now()
	}
	var score any
	if f.Score != nil {
		score = *f.Score
	}
	res, err := db.w.ExecContext(ctx, `INSERT INTO feedback (request_id, score, label, comment, created_at)
		SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM records WHERE id = ?)`,
		f.RequestID, score, f.Label, f.Comment, micros(at), f.RequestID)
	if err != nil {
		return fmt.Errorf("add feedback for %q: %w", f.RequestID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("add feedback for %q: %w", f.RequestID, err)
	} else if n == 0 {
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
	_, err := db.w.ExecContext(ctx, `INSERT INTO keys (id, name, project, prefix, hash, created_at, revoked_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Name, k.Project, k.Prefix, k.Hash, micros(k.CreatedAt), optMicros(k.RevokedAt), optMicros(k.LastUsedAt))
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
	k, err := scanKey(db.r.QueryRowContext(ctx, selectKey+"WHERE hash = ?", hash))
	if err != nil {
		return store.Key{}, fmt.Errorf("key by hash: %w", errNoRows(err))
	}
	return k, nil
}

// ListKeys returns the keys of project, or of every project when project is
// "", oldest first.
func (db *DB) ListKeys(ctx context.Context, project string) ([]store.Key, error) {
	project = clean.Text(project)
	rows, err := db.r.QueryContext(ctx, selectKey+"WHERE ? = '' OR project = ? ORDER BY created_at, id", project, project)
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
		`UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, micros(time.Now()), id)
}

// TouchKey records that a key was used at at; an earlier time than the one
// stored is ignored, so out-of-order touches never move it back.
func (db *DB) TouchKey(ctx context.Context, id string, at time.Time) error {
	id = clean.Text(id)
	return db.updateKey(ctx, "touch key", id,
		`UPDATE keys SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)`, micros(at), id)
}

// updateKey runs an UPDATE on one key; when it changes nothing, it tells a
// missing key (store.ErrNotFound) from a no-op.
func (db *DB) updateKey(ctx context.Context, what, id, query string, args ...any) error {
	res, err := db.w.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s %q: %w", what, id, err)
	} else if n > 0 {
		return nil
	}
	var one int
	if err := db.w.QueryRowContext(ctx, `SELECT 1 FROM keys WHERE id = ?`, id).Scan(&one); err != nil {
		return fmt.Errorf("%s %q: %w", what, id, errNoRows(err))
	}
	return nil
}

func scanKey(row interface{ Scan(...any) error }) (store.Key, error) {
	var (
		k                 store.Key
		created           int64
		revoked, lastUsed sql.NullInt64
	)
	if err := row.Scan(&k.ID, &k.Name, &k.Project, &k.Prefix, &k.Hash, &created, &revoked, &lastUsed); err != nil {
		return store.Key{}, err
	}
	k.CreatedAt = fromMicros(created)
	if revoked.Valid {
		t := fromMicros(revoked.Int64)
		k.RevokedAt = &t
	}
	if lastUsed.Valid {
		t := fromMicros(lastUsed.Int64)
		k.LastUsedAt = &t
	}
	return k, nil
}

func optMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}
