package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/internal/clean"
	"github.com/foundryhq/foundry/store/internal/filter"
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
	_, err := db.pool.Exec(ctx, `INSERT INTO jobs (id, kind, status, created_at, updated_at, record)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, status = excluded.status,
			updated_at = excluded.updated_at, record = excluded.record`,
		j.ID, j.Kind, j.Status, filter.Micro(j.Created), filter.Micro(j.Updated), []byte(j.Record))
	if err != nil {
		return fmt.Errorf("save job %q: %w", j.ID, err)
	}
	return nil
}

const selectJob = `SELECT id, kind, status, created_at, updated_at, record FROM jobs `

// GetJob returns the job with id, or store.ErrNotFound.
func (db *DB) GetJob(ctx context.Context, id string) (store.Job, error) {
	id = clean.Text(id)
	j, err := scanJob(db.pool.QueryRow(ctx, selectJob+"WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Job{}, fmt.Errorf("get job %q: %w", id, err)
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
		args = append(args, clean.Text(q.Kind))
		where = append(where, fmt.Sprintf("kind = $%d", len(args)))
	}
	if len(q.Status) > 0 {
		args = append(args, clean.Texts(q.Status))
		where = append(where, fmt.Sprintf("status = ANY($%d)", len(args)))
	}
	query := selectJob
	if len(where) > 0 {
		query += "WHERE " + strings.Join(where, " AND ") + " "
	}
	args = append(args, jobLimit(q.Limit))
	query += fmt.Sprintf("ORDER BY created_at DESC, id LIMIT $%d", len(args))
	rows, err := db.pool.Query(ctx, query, args...)
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

func scanJob(row pgx.Row) (store.Job, error) {
	var (
		j                store.Job
		record           []byte
		created, updated time.Time
	)
	if err := row.Scan(&j.ID, &j.Kind, &j.Status, &created, &updated, &record); err != nil {
		return store.Job{}, err
	}
	j.Created, j.Updated, j.Record = created.UTC(), updated.UTC(), record
	return j, nil
}
