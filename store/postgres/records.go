package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/internal/clean"
	"github.com/foundryhq/foundry/store/internal/filter"
)

// columns are the records columns InsertRecords writes, in its row order.
const columns = "id, created_at, project, key_id, endpoint, route, provider, model, stream, " +
	"status, error, request, response, latency_ns, ttft_ns, prompt_tokens, completion_tokens, " +
	"usage_estimated, cost_usd, end_user, tags, metadata, parent_id, attempts"

// InsertRecords COPYs recs into a per-connection temporary table, then moves
// them into records with ON CONFLICT DO NOTHING, in input order, so a
// duplicate ID (stored before, by another replica, or earlier in recs) keeps
// its first copy.
func (db *DB) InsertRecords(ctx context.Context, recs []store.Record) error {
	if len(recs) == 0 {
		return nil
	}
	rows := make([][]any, len(recs))
	for i := range recs {
		r := clean.Record(recs[i])
		var meta any
		if len(r.Metadata) > 0 {
			b, err := json.Marshal(r.Metadata)
			if err != nil {
				return fmt.Errorf("insert record %q: metadata: %w", r.ID, err)
			}
			meta = string(b)
		}
		var tags any
		if len(r.Tags) > 0 {
			tags = r.Tags
		}
		rows[i] = []any{i,
			r.ID, filter.Micro(r.CreatedAt), r.Project, r.KeyID, r.Endpoint, r.Route, r.Provider, r.Model,
			r.Stream, r.Status, r.Error, body(r.Request), body(r.Response), int64(r.Latency), int64(r.TTFT),
			r.PromptTokens, r.CompletionTokens, r.UsageEstimated, r.CostUSD, r.User, tags, meta,
			r.ParentID, r.Attempts}
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// ON COMMIT DELETE ROWS keeps one empty table per connection instead
		// of creating and dropping catalog entries for every batch.
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS records_in (ord integer, LIKE records) ON COMMIT DELETE ROWS`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"records_in"}, strings.Split("ord, "+columns, ", "), pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO records ("+columns+") SELECT "+columns+" FROM records_in ORDER BY ord ON CONFLICT (id) DO NOTHING")
		return err
	})
	if err != nil {
		return fmt.Errorf("insert %d records: %w", len(recs), err)
	}
	return nil
}

// body stores an empty body as NULL.
func body(b json.RawMessage) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// selectRecord reads a record and its latest feedback (f.* NULL when none).
const selectRecord = `SELECT r.id, r.created_at, r.project, r.key_id, r.endpoint, r.route, r.provider,
	r.model, r.stream, r.status, r.error, r.request, r.response, r.latency_ns, r.ttft_ns,
	r.prompt_tokens, r.completion_tokens, r.usage_estimated, r.cost_usd, r.end_user, r.tags,
	r.metadata, r.parent_id, r.attempts, f.id, f.score, f.label, f.comment, f.created_at
FROM records r
` + latestFeedback

const latestFeedback = `LEFT JOIN LATERAL (
	SELECT id, score, label, comment, created_at FROM feedback
	WHERE request_id = r.id ORDER BY created_at DESC, id DESC LIMIT 1
) f ON true
`

// GetRecord returns one record with its latest feedback, or store.ErrNotFound.
func (db *DB) GetRecord(ctx context.Context, id string) (store.RecordWithFeedback, error) {
	id = clean.Text(id)
	recs, err := db.query(ctx, selectRecord+"WHERE r.id = $1", id)
	if err != nil {
		return store.RecordWithFeedback{}, fmt.Errorf("get record %q: %w", id, err)
	}
	if len(recs) == 0 {
		return store.RecordWithFeedback{}, fmt.Errorf("get record %q: %w", id, store.ErrNotFound)
	}
	return recs[0], nil
}

// ListRecords returns one page of matching records, newest first.
func (db *DB) ListRecords(ctx context.Context, q store.Query) (store.Page, error) {
	q = clean.Query(q)
	w, err := where(q)
	if err != nil {
		return store.Page{}, fmt.Errorf("list records: %w", err)
	}
	cur, ok, err := filter.Decode(q.Cursor)
	if err != nil {
		return store.Page{}, fmt.Errorf("list records: %w", err)
	}
	if ok {
		w.add("(r.created_at, r.id) < ($, $)", cur.CreatedAt, cur.ID)
	}
	limit := filter.Limit(q.Limit)
	w.args = append(w.args, limit+1)
	recs, err := db.query(ctx, selectRecord+w.sql()+" ORDER BY r.created_at DESC, r.id DESC LIMIT $"+strconv.Itoa(len(w.args)), w.args...)
	if err != nil {
		return store.Page{}, fmt.Errorf("list records: %w", err)
	}
	var page store.Page
	if len(recs) > limit {
		recs = recs[:limit]
		last := recs[limit-1]
		page.NextCursor = filter.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}.Encode()
	}
	page.Records = recs
	return page, nil
}

// scanPage is how many records ScanRecords reads per query.
const scanPage = 256

// ScanRecords calls fn for every matching record, oldest first. It reads
// scanPage records at a time by keyset and returns the connection to the
// pool before calling fn, so a slow fn pins neither a connection nor a long
// transaction. Records inserted during the scan are seen if they sort after
// the current position.
func (db *DB) ScanRecords(ctx context.Context, q store.Query, fn func(store.RecordWithFeedback) error) error {
	q = clean.Query(q)
	base, err := where(q)
	if err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	var after *filter.Cursor
	for {
		w := base.clone()
		if after != nil {
			w.add("(r.created_at, r.id) > ($, $)", after.CreatedAt, after.ID)
		}
		w.args = append(w.args, scanPage)
		recs, err := db.query(ctx, selectRecord+w.sql()+" ORDER BY r.created_at, r.id LIMIT $"+strconv.Itoa(len(w.args)), w.args...)
		if err != nil {
			return fmt.Errorf("scan records: %w", err)
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(recs) < scanPage {
			return nil
		}
		last := recs[len(recs)-1]
		after = &filter.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
}

// CountRecords counts matching records.
func (db *DB) CountRecords(ctx context.Context, q store.Query) (int64, error) {
	q = clean.Query(q)
	w, err := where(q)
	if err != nil {
		return 0, fmt.Errorf("count records: %w", err)
	}
	from := "SELECT count(*) FROM records r "
	if w.feedback {
		from += latestFeedback
	}
	var n int64
	if err := db.pool.QueryRow(ctx, from+w.sql(), w.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count records: %w", err)
	}
	return n, nil
}

// Usage rolls matching records up per time bucket, provider and model.
func (db *DB) Usage(ctx context.Context, q store.Query, bucket time.Duration) ([]store.UsageBucket, error) {
	if bucket < time.Second {
		return nil, fmt.Errorf("usage: bucket %v is shorter than a second: %w", bucket, store.ErrInvalidQuery)
	}
	q = clean.Query(q)
	w, err := where(q)
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	n := len(w.args) + 1
	sel := fmt.Sprintf("SELECT (floor(extract(epoch FROM r.created_at) * 1000000 / $%d)::bigint * $%d) AS b, r.provider, r.model, count(*), "+
		"count(*) FILTER (WHERE r.status >= 400), coalesce(sum(r.prompt_tokens), 0)::bigint, coalesce(sum(r.completion_tokens), 0)::bigint, "+
		"coalesce(sum(r.cost_usd), 0)::float8, coalesce(sum(r.latency_ns), 0)::bigint FROM records r ", n, n)
	if w.feedback {
		sel += latestFeedback
	}
	args := append(w.args, bucket.Microseconds())
	rows, err := db.pool.Query(ctx, sel+w.sql()+" GROUP BY b, r.provider, r.model ORDER BY b, r.provider, r.model", args...)
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	defer rows.Close()
	var out []store.UsageBucket
	for rows.Next() {
		var u store.UsageBucket
		var start, lat int64
		if err := rows.Scan(&start, &u.Provider, &u.Model, &u.Requests, &u.Errors, &u.PromptTokens, &u.CompletionTokens, &u.CostUSD, &lat); err != nil {
			return nil, fmt.Errorf("usage: %w", err)
		}
		u.Start, u.Latency = time.UnixMicro(start).UTC(), time.Duration(lat)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	return out, nil
}

// deleteChunk bounds one retention transaction, so locks are short and
// capture writes interleave with a large delete.
const deleteChunk = 5000

// DeleteRecordsBefore removes records created before t, with their feedback
// (by ON DELETE CASCADE), in chunks of deleteChunk.
func (db *DB) DeleteRecordsBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	for {
		tag, err := db.pool.Exec(ctx,
			`DELETE FROM records WHERE id IN (SELECT id FROM records WHERE created_at < $1 ORDER BY created_at LIMIT $2)`,
			filter.Micro(t), deleteChunk)
		if err != nil {
			return total, fmt.Errorf("delete records before %s: %w", t.Format(time.RFC3339), err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < deleteChunk {
			return total, nil
		}
	}
}

// conds is a WHERE clause under construction; "$" in a term is replaced by
// the next parameter number.
type conds struct {
	terms    []string
	args     []any
	feedback bool // a term reads the latest feedback, aliased f
}

func (c *conds) add(term string, args ...any) {
	var b strings.Builder
	n := len(c.args)
	for _, part := range strings.SplitAfter(term, "$") {
		b.WriteString(part)
		if strings.HasSuffix(part, "$") {
			n++
			b.WriteString(strconv.Itoa(n))
		}
	}
	c.terms = append(c.terms, b.String())
	c.args = append(c.args, args...)
}

func (c *conds) clone() conds {
	return conds{terms: slices.Clone(c.terms), args: slices.Clone(c.args), feedback: c.feedback}
}

func (c *conds) sql() string {
	if len(c.terms) == 0 {
		return ""
	}
	return "WHERE " + strings.Join(c.terms, " AND ")
}

// where translates every filter of q except the cursor.
func where(q store.Query) (conds, error) {
	var c conds
	if !q.Since.IsZero() {
		c.add("r.created_at >= $", filter.Micro(q.Since))
	}
	if !q.Until.IsZero() {
		c.add("r.created_at < $", filter.Micro(q.Until))
	}
	if q.Project != "" {
		c.add("r.project = $ AND r.project <> ''", q.Project)
	}
	if len(q.Routes) > 0 {
		c.add("r.route = ANY($)", q.Routes)
	}
	if len(q.Models) > 0 {
		c.add("r.model = ANY($)", q.Models)
	}
	if len(q.Providers) > 0 {
		c.add("r.provider = ANY($)", q.Providers)
	}
	if len(q.Tags) > 0 {
		c.add("r.tags @> $::text[]", q.Tags)
	}
	if len(q.Metadata) > 0 {
		b, err := json.Marshal(q.Metadata)
		if err != nil {
			return conds{}, fmt.Errorf("metadata: %w", err)
		}
		c.add("r.metadata @> $::jsonb", string(b))
	}
	lo, hi, ok, err := filter.StatusRange(q.Status)
	if err != nil {
		return conds{}, err
	}
	switch {
	case ok && lo == hi: // equality keeps records_status in created_at order
		c.add("r.status = $", lo)
	case ok:
		c.add("r.status BETWEEN $ AND $", lo, hi)
	}
	if q.HasFeedback != nil {
		// A semi-join, not a test on the lateral f, so the planner may start
		// from the (usually much smaller) feedback table.
		if *q.HasFeedback {
			c.add("EXISTS (SELECT 1 FROM feedback fe WHERE fe.request_id = r.id)")
		} else {
			c.add("NOT EXISTS (SELECT 1 FROM feedback fe WHERE fe.request_id = r.id)")
		}
	}
	if q.MinScore != nil {
		c.feedback = true
		c.add("f.score >= $", *q.MinScore)
	}
	if q.User != "" {
		c.add("r.end_user = $ AND r.end_user <> ''", q.User)
	}
	return c, nil
}

// query runs a selectRecord query and reads every row.
func (db *DB) query(ctx context.Context, sql string, args ...any) ([]store.RecordWithFeedback, error) {
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.RecordWithFeedback
	for rows.Next() {
		var (
			r                 store.RecordWithFeedback
			latency, ttft     int64
			meta              []byte
			fID               *int64
			fScore            *float64
			fLabel, fComment  *string
			fCreated          *time.Time
			request, response []byte
		)
		err := rows.Scan(&r.ID, &r.CreatedAt, &r.Project, &r.KeyID, &r.Endpoint, &r.Route, &r.Provider,
			&r.Model, &r.Stream, &r.Status, &r.Error, &request, &response, &latency, &ttft,
			&r.PromptTokens, &r.CompletionTokens, &r.UsageEstimated, &r.CostUSD, &r.User, &r.Tags,
			&meta, &r.ParentID, &r.Attempts, &fID, &fScore, &fLabel, &fComment, &fCreated)
		if err != nil {
			return nil, fmt.Errorf("scan record: %w", err)
		}
		r.CreatedAt = r.CreatedAt.UTC()
		r.Latency, r.TTFT = time.Duration(latency), time.Duration(ttft)
		if len(request) > 0 {
			r.Request = request
		}
		if len(response) > 0 {
			r.Response = response
		}
		if len(r.Tags) == 0 {
			r.Tags = nil
		}
		if meta != nil {
			if err := json.Unmarshal(meta, &r.Metadata); err != nil {
				return nil, fmt.Errorf("record %q: metadata: %w", r.ID, err)
			}
		}
		if fID != nil {
			r.Feedback = &store.Feedback{RequestID: r.ID, Score: fScore, Label: *fLabel, Comment: *fComment, CreatedAt: fCreated.UTC()}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// isForeignKeyViolation reports whether err is PostgreSQL's 23503.
func isForeignKeyViolation(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "23503"
}
