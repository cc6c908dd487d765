package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/internal/clean"
	"github.com/foundryhq/foundry/store/internal/filter"
)

const insertRecord = `INSERT INTO records (
	id, created_at, project, key_id, endpoint, route, provider, model, stream, status, error,
	request, response, latency_ns, ttft_ns, prompt_tokens, completion_tokens, usage_estimated,
	cost_usd, end_user, tags, metadata, parent_id, attempts
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`

// InsertRecords writes recs in one transaction with one prepared statement.
// A record whose ID is already stored (or repeated within recs) is skipped.
func (db *DB) InsertRecords(ctx context.Context, recs []store.Record) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("insert records: %w", err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, insertRecord)
	if err != nil {
		return fmt.Errorf("insert records: %w", err)
	}
	defer ins.Close()
	var tag *sql.Stmt
	for i := range recs {
		r := clean.Record(recs[i])
		tags, meta, err := encodeLabels(&r)
		if err != nil {
			return fmt.Errorf("insert record %q: %w", r.ID, err)
		}
		res, err := ins.ExecContext(ctx,
			r.ID, micros(r.CreatedAt), r.Project, r.KeyID, r.Endpoint, r.Route, r.Provider, r.Model,
			r.Stream, r.Status, r.Error, blob(r.Request), blob(r.Response),
			int64(r.Latency), int64(r.TTFT), r.PromptTokens, r.CompletionTokens, r.UsageEstimated,
			r.CostUSD, r.User, tags, meta, r.ParentID, r.Attempts)
		if err != nil {
			return fmt.Errorf("insert record %q: %w", r.ID, err)
		}
		if len(r.Tags) == 0 {
			continue
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("insert record %q: %w", r.ID, err)
		}
		if n == 0 {
			continue // a duplicate: the first copy keeps its own tags
		}
		seq, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("insert record %q: %w", r.ID, err)
		}
		if tag == nil {
			if tag, err = tx.PrepareContext(ctx, `INSERT OR IGNORE INTO record_tags (tag, created_at, record_seq) VALUES (?, ?, ?)`); err != nil {
				return fmt.Errorf("insert records: %w", err)
			}
			defer tag.Close()
		}
		for _, t := range r.Tags {
			if _, err := tag.ExecContext(ctx, t, micros(r.CreatedAt), seq); err != nil {
				return fmt.Errorf("insert record %q: tag %q: %w", r.ID, t, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("insert records: %w", err)
	}
	return nil
}

// encodeLabels returns tags and metadata as JSON text, nil when empty.
func encodeLabels(r *store.Record) (tags, meta any, err error) {
	if len(r.Tags) > 0 {
		b, err := json.Marshal(r.Tags)
		if err != nil {
			return nil, nil, fmt.Errorf("tags: %w", err)
		}
		tags = string(b)
	}
	if len(r.Metadata) > 0 {
		b, err := json.Marshal(r.Metadata)
		if err != nil {
			return nil, nil, fmt.Errorf("metadata: %w", err)
		}
		meta = string(b)
	}
	return tags, meta, nil
}

// recordColumns are a record and its latest feedback (f.* NULL when none),
// in the order scanRows reads them.
const recordColumns = `SELECT r.id, r.created_at, r.project, r.key_id, r.endpoint, r.route, r.provider,
	r.model, r.stream, r.status, r.error, r.request, r.response, r.latency_ns, r.ttft_ns,
	r.prompt_tokens, r.completion_tokens, r.usage_estimated, r.cost_usd, r.end_user, r.tags,
	r.metadata, r.parent_id, r.attempts, f.seq, f.score, f.label, f.comment, f.created_at
`

// leanColumns are what ScanRecords reads for a Lean query (see store.Query).
const leanColumns = `SELECT r.id, r.created_at, r.endpoint, r.route, r.provider, r.model, r.status, r.error,
	r.request, r.response, r.tags, r.metadata, f.seq, f.score
`

const latestFeedback = `LEFT JOIN feedback f ON f.seq = (SELECT seq FROM feedback WHERE request_id = r.id ORDER BY created_at DESC, seq DESC LIMIT 1)
`

// GetRecord returns one record with its latest feedback, or store.ErrNotFound.
func (db *DB) GetRecord(ctx context.Context, id string) (store.RecordWithFeedback, error) {
	id = clean.Text(id)
	rows, err := db.r.QueryContext(ctx, recordColumns+"FROM records r "+latestFeedback+"WHERE r.id = ?", id)
	if err != nil {
		return store.RecordWithFeedback{}, fmt.Errorf("get record %q: %w", id, err)
	}
	recs, err := scanRows(rows, false)
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
		w.add("("+w.at+", r.id) < (?, ?)", micros(cur.CreatedAt), cur.ID)
	}
	limit := filter.Limit(q.Limit)
	rows, err := db.r.QueryContext(ctx,
		recordColumns+w.from()+latestFeedback+w.sql()+" ORDER BY "+w.at+" DESC, r.id DESC LIMIT ?",
		append(w.args, limit+1)...)
	if err != nil {
		return store.Page{}, fmt.Errorf("list records: %w", err)
	}
	recs, err := scanRows(rows, false)
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

// scanPage is how many records ScanRecords reads per query: each query
// starts by seeking its cursor, and at 1024 records (a few MiB of bodies)
// that costs 5% less of a dataset build than at 256.
const scanPage = 1024

// ScanRecords calls fn for every matching record, oldest first. It reads
// scanPage records at a time by keyset and releases the connection before
// calling fn, so a slow fn holds neither memory nor a read transaction (a
// long read would keep the WAL from being checkpointed). Records inserted
// during the scan are seen if they sort after the current position.
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
			w.add("("+w.at+", r.id) > (?, ?)", micros(after.CreatedAt), after.ID)
		}
		cols := recordColumns
		if q.Lean {
			cols = leanColumns
		}
		rows, err := db.r.QueryContext(ctx,
			cols+w.scanFrom()+latestFeedback+w.sql()+" ORDER BY "+w.at+", r.id LIMIT ?", append(w.args, scanPage)...)
		if err != nil {
			return fmt.Errorf("scan records: %w", err)
		}
		recs, err := scanRows(rows, q.Lean)
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
	from := "SELECT count(*) " + w.from()
	if w.feedback {
		from += latestFeedback
	}
	var n int64
	if err := db.r.QueryRowContext(ctx, from+w.sql(), w.args...).Scan(&n); err != nil {
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
	us := bucket.Microseconds()
	sel := "SELECT (r.created_at / ?) * ? AS b, r.provider, r.model, count(*), sum(r.status >= 400), sum(r.prompt_tokens), " +
		"sum(r.completion_tokens), sum(r.cost_usd), sum(r.latency_ns) " + w.from()
	if w.feedback {
		sel += latestFeedback
	}
	args := append([]any{us, us}, w.args...)
	rows, err := db.r.QueryContext(ctx, sel+w.sql()+" GROUP BY b, r.provider, r.model ORDER BY b, r.provider, r.model", args...)
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
		u.Start, u.Latency = fromMicros(start), time.Duration(lat)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	return out, nil
}

// deleteChunk bounds one retention transaction, so capture writes interleave
// with a large delete instead of waiting for all of it.
const deleteChunk = 5000

// DeleteRecordsBefore removes records created before t, with their tags and
// feedback (by ON DELETE CASCADE), in chunks of deleteChunk.
func (db *DB) DeleteRecordsBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	for {
		res, err := db.w.ExecContext(ctx,
			`DELETE FROM records WHERE seq IN (SELECT seq FROM records WHERE created_at < ? ORDER BY created_at LIMIT ?)`,
			micros(t), deleteChunk)
		if err != nil {
			return total, fmt.Errorf("delete records before %s: %w", t.Format(time.RFC3339), err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("delete records before %s: %w", t.Format(time.RFC3339), err)
		}
		total += n
		if n < deleteChunk {
			return total, nil
		}
	}
}

// conds is a WHERE clause under construction.
type conds struct {
	terms    []string
	args     []any
	feedback bool // a term reads the latest feedback, aliased f
	// at is the created_at column to filter and order on: r.created_at, or
	// t0.created_at (the same value) when a tag filter drives the query
	// from record_tags, whose key is (tag, created_at).
	at string
	// unordered: an index these terms would pick does not yield rows in
	// created_at order (a range, or IN over several values).
	unordered bool
}

// scanFrom is the FROM clause of ScanRecords' pages. A status range or a
// list of several routes/models/providers reads its index out of
// created_at order, so every keyset page would sort all the remaining
// matches again (quadratic over a long scan): such scans walk created_at
// instead and filter as they go.
func (c *conds) scanFrom() string {
	if c.unordered && c.at == "r.created_at" {
		return "FROM records r INDEXED BY records_created_at "
	}
	return c.from()
}

// from is the FROM clause the terms read.
func (c *conds) from() string {
	if c.at == "t0.created_at" {
		return "FROM records r JOIN record_tags t0 ON t0.record_seq = r.seq "
	}
	return "FROM records r "
}

func (c *conds) add(term string, args ...any) {
	c.terms = append(c.terms, term)
	c.args = append(c.args, args...)
}

func (c *conds) in(col string, vals []string) {
	if len(vals) == 0 {
		return
	}
	if len(vals) > 1 {
		c.unordered = true
	}
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	c.add(col+" IN (?"+strings.Repeat(", ?", len(vals)-1)+")", args...)
}

func (c *conds) clone() conds {
	return conds{terms: slices.Clone(c.terms), args: slices.Clone(c.args), feedback: c.feedback, at: c.at, unordered: c.unordered}
}

func (c *conds) sql() string {
	if len(c.terms) == 0 {
		return ""
	}
	return "WHERE " + strings.Join(c.terms, " AND ")
}

// where translates every filter of q except the cursor.
func where(q store.Query) (conds, error) {
	c := conds{at: "r.created_at"}
	if len(q.Tags) > 0 {
		// The first tag's rows in record_tags are the candidates, newest
		// first; further tags are point lookups on the same key.
		c.at = "t0.created_at"
		c.add("t0.tag = ?", q.Tags[0])
		for _, t := range q.Tags[1:] {
			c.add("EXISTS (SELECT 1 FROM record_tags WHERE tag = ? AND created_at = r.created_at AND record_seq = r.seq)", t)
		}
	}
	if !q.Since.IsZero() {
		c.add(c.at+" >= ?", micros(q.Since))
	}
	if !q.Until.IsZero() {
		c.add(c.at+" < ?", micros(q.Until))
	}
	if q.Project != "" {
		c.add("r.project = ? AND r.project <> ''", q.Project)
	}
	c.in("r.route", q.Routes)
	c.in("r.model", q.Models)
	c.in("r.provider", q.Providers)
	for _, k := range sortedKeys(q.Metadata) {
		c.add("EXISTS (SELECT 1 FROM json_each(r.metadata) WHERE key = ? AND type = 'text' AND value = ?)", k, q.Metadata[k])
	}
	lo, hi, ok, err := filter.StatusRange(q.Status)
	if err != nil {
		return conds{}, err
	}
	switch {
	case ok && lo == hi: // equality keeps records_status in created_at order
		c.add("r.status = ?", lo)
	case ok:
		c.add("r.status BETWEEN ? AND ?", lo, hi)
		c.unordered = true
	}
	if q.HasFeedback != nil {
		c.feedback = true
		if *q.HasFeedback {
			c.add("f.seq IS NOT NULL")
		} else {
			c.add("f.seq IS NULL")
		}
	}
	if q.MinScore != nil {
		c.feedback = true
		c.add("f.score >= ?", *q.MinScore)
	}
	if q.User != "" {
		c.add("r.end_user = ? AND r.end_user <> ''", q.User)
	}
	return c, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// scanRows reads every row of a recordColumns query and closes rows.
// scanRows reads rows of recordColumns, or of leanColumns when lean.
func scanRows(rows *sql.Rows, lean bool) ([]store.RecordWithFeedback, error) {
	defer rows.Close()
	var out []store.RecordWithFeedback
	for rows.Next() {
		var (
			r                 store.RecordWithFeedback
			created           int64
			latency, ttft     int64
			tags, meta        sql.NullString
			fSeq, fCreated    sql.NullInt64
			fScore            sql.NullFloat64
			fLabel, fComment  sql.NullString
			request, response []byte
			err               error
		)
		if lean {
			err = rows.Scan(&r.ID, &created, &r.Endpoint, &r.Route, &r.Provider, &r.Model, &r.Status, &r.Error,
				&request, &response, &tags, &meta, &fSeq, &fScore)
		} else {
			err = rows.Scan(&r.ID, &created, &r.Project, &r.KeyID, &r.Endpoint, &r.Route, &r.Provider,
				&r.Model, &r.Stream, &r.Status, &r.Error, &request, &response, &latency, &ttft,
				&r.PromptTokens, &r.CompletionTokens, &r.UsageEstimated, &r.CostUSD, &r.User, &tags,
				&meta, &r.ParentID, &r.Attempts, &fSeq, &fScore, &fLabel, &fComment, &fCreated)
		}
		if err != nil {
			return nil, fmt.Errorf("scan record: %w", err)
		}
		r.CreatedAt = fromMicros(created)
		r.Latency, r.TTFT = time.Duration(latency), time.Duration(ttft)
		if len(request) > 0 {
			r.Request = request
		}
		if len(response) > 0 {
			r.Response = response
		}
		if tags.Valid {
			if err := decodeTags(tags.String, &r.Tags); err != nil {
				return nil, fmt.Errorf("record %q: tags: %w", r.ID, err)
			}
		}
		if meta.Valid {
			if err := decodeMetadata(meta.String, &r.Metadata); err != nil {
				return nil, fmt.Errorf("record %q: metadata: %w", r.ID, err)
			}
		}
		if fSeq.Valid {
			f := &store.Feedback{RequestID: r.ID, Label: fLabel.String, Comment: fComment.String}
			if fCreated.Valid {
				f.CreatedAt = fromMicros(fCreated.Int64)
			}
			if fScore.Valid {
				f.Score = &fScore.Float64
			}
			r.Feedback = f
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	return out, nil
}

// decodeTags decodes tags as stored by encodeLabels. json.Marshal's compact
// form of plain strings (no escapes) is split directly: a long scan reads
// it for every record, and encoding/json cost more than the rest of the row.
func decodeTags(s string, tags *[]string) error {
	if elems, ok := plainStrings(s, '[', ']'); ok {
		*tags = elems
		return nil
	}
	return json.Unmarshal([]byte(s), tags)
}

// decodeMetadata is decodeTags for the metadata object.
func decodeMetadata(s string, meta *map[string]string) error {
	elems, ok := plainStrings(s, '{', '}')
	if !ok || len(elems)%2 != 0 {
		return json.Unmarshal([]byte(s), meta)
	}
	m := make(map[string]string, len(elems)/2)
	for i := 0; i < len(elems); i += 2 {
		if _, dup := m[elems[i]]; dup {
			return json.Unmarshal([]byte(s), meta)
		}
		m[elems[i]] = elems[i+1]
	}
	*meta = m
	return nil
}

// plainStrings splits open"a",...close (or, for '{', open"k":"v",...close)
// without whitespace into its strings, reporting false for anything else:
// escapes, control characters, invalid UTF-8, other separators.
func plainStrings(s string, open, close byte) ([]string, bool) {
	if len(s) < 2 || s[0] != open || s[len(s)-1] != close {
		return nil, false
	}
	body := s[1 : len(s)-1]
	if body == "" {
		return []string{}, true
	}
	out := make([]string, 0, 4)
	for i := 0; ; {
		if i >= len(body) || body[i] != '"' {
			return nil, false
		}
		end := strings.IndexByte(body[i+1:], '"')
		if end < 0 {
			return nil, false
		}
		v := body[i+1 : i+1+end]
		ascii := true
		for j := 0; j < len(v); j++ {
			switch c := v[j]; {
			case c < 0x20 || c == '\\':
				return nil, false
			case c >= utf8.RuneSelf:
				ascii = false
			}
		}
		if !ascii && !utf8.ValidString(v) {
			return nil, false
		}
		out = append(out, v)
		i += end + 2
		if i == len(body) {
			return out, true
		}
		sep := byte(',')
		if open == '{' && len(out)%2 == 1 {
			sep = ':'
		}
		if body[i] != sep {
			return nil, false
		}
		i++
	}
}

// micros is how times are stored: unix microseconds, UTC.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// blob stores an empty body as NULL.
func blob(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

// errNoRows maps sql.ErrNoRows to store.ErrNotFound.
func errNoRows(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}
