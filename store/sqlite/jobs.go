package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/internal/clean"
)

// SaveJob inserts j or replaces the job with its ID, keeping the first Created.
func (db *DB) SaveJob(ctx context.Context, j store.Job) error {
	j.ID, j.Kind, j.Status = clean.Text(j.ID), clean.Text(j.Kind), clean.Text(j.Status)
	if j.ID == "" {
		return fmt.Errorf("save job: no id: %w", store.ErrInvalidQuery)
	}
	if !json.Valid(j.Record) {
		return fmt.Errorf("save job %q: the record is not valid JSON: %w", j.ID, store.ErrInvalidQuery)
	}
	now := time.Now()
	if j.Created.IsZero() {
		j.Created = now
	}
	if j.Updated.IsZero() {
		j.Updated = now
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO jobs (id, kind, status, created_at, updated_at, record)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, status = excluded.status,
			updated_at = excluded.updated_at, record = excluded.record`,
		j.ID, j.Kind, j.Status, micros(j.Created), micros(j.Updated), []byte(j.Record))
	if err != nil {
		return fmt.Errorf("save job %q: %w", j.ID, err)
	}
	return nil
}

const selectJob = `SELECT id, kind, status, created_at, updated_at, record FROM jobs `

// GetJob returns the job with id, or store.ErrNotFound.
func (db *DB) GetJob(ctx context.Context, id string) (store.Job, error) {
	id = clean.Text(id)
	j, err := scanJob(db.r.QueryRowContext(ctx, selectJob+"WHERE id = ?", id))
	if err != nil {
		return store.Job{}, fmt.Errorf("get job %q: %w", id, errNoRows(err))
	}
	return j, nil
}

// ListJobs returns the jobs matching q, newest first.
func (db *DB) ListJobs(ctx context.Context, q store.JobQuery) ([]store.Job, error) {
	var (
		where []string
		args  []any
	)
	if q.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, clean.Text(q.Kind))
	}
	if len(q.Status) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?,", len(q.Status)), ",")
		where = append(where, "status IN ("+marks+")")
		for _, s := range q.Status {
			args = append(args, clean.Text(s))
		}
	}
	query := selectJob
	if len(where) > 0 {
		query += "WHERE " + strings.Join(where, " AND ") + " "
	}
	query += "ORDER BY created_at DESC, id LIMIT ?"
	args = append(args, jobLimit(q.Limit))
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

// jobLimit applies store.JobQuery's default and cap.
func jobLimit(n int) int {
	if n <= 0 {
		return 50
	}
	return min(n, 1000)
}

func scanJob(row interface{ Scan(...any) error }) (store.Job, error) {
	var (
		j                store.Job
		record           []byte
		created, updated int64
	)
	if err := row.Scan(&j.ID, &j.Kind, &j.Status, &created, &updated, &record); err != nil {
		return store.Job{}, err
	}
	j.Created, j.Updated, j.Record = fromMicros(created), fromMicros(updated), record
	return j, nil
}
