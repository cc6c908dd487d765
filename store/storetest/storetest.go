// Package storetest is the one test suite every store.Store implementation
// must pass. Drivers call Run from their own tests with a real database.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/foundryhq/foundry/store"
)

// Open returns a store for t. The first call for a given t must return a
// store on a new, empty database; later calls for the same t (after the
// previous store was closed) must return a store on that same database, so
// the suite can check that data survives a reopen. The suite closes every
// store it opens.
type Open func(t *testing.T) store.Store

// Run runs the suite, each part as a parallel subtest on its own database.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Open)
	}{
		{"RoundTrip", testRoundTrip},
		{"IdempotentInsert", testIdempotentInsert},
		{"Unclean text", testUncleanText},
		{"Filters", testFilters},
		{"Pagination", testPagination},
		{"PageLimits", testPageLimits},
		{"InvalidQuery", testInvalidQuery},
		{"Scan", testScan},
		{"Feedback", testFeedback},
		{"Keys", testKeys},
		{"Retention", testRetention},
		{"ConcurrentInserts", testConcurrentInserts},
		{"Reopen", testReopen},
		{"Usage", testUsage},
		{"Routes", testRoutes},
		{"Jobs", testJobs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// openStore opens a store that is closed when t ends.
func openStore(t *testing.T, open Open) store.Store {
	t.Helper()
	s := open(t)
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	})
	return s
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func insert(t *testing.T, s store.Store, recs ...store.Record) {
	t.Helper()
	if err := s.InsertRecords(context.Background(), recs); err != nil {
		t.Fatalf("InsertRecords(%d records): %v", len(recs), err)
	}
}

func get(t *testing.T, s store.Store, id string) store.RecordWithFeedback {
	t.Helper()
	r, err := s.GetRecord(context.Background(), id)
	if err != nil {
		t.Fatalf("GetRecord(%q): %v", id, err)
	}
	return r
}

func count(t *testing.T, s store.Store, q store.Query) int64 {
	t.Helper()
	n, err := s.CountRecords(context.Background(), q)
	if err != nil {
		t.Fatalf("CountRecords(%+v): %v", q, err)
	}
	return n
}

// listAll follows cursors through every page, checking that only the last
// page has no cursor and that no page is larger than asked.
func listAll(t *testing.T, s store.Store, q store.Query) []store.RecordWithFeedback {
	t.Helper()
	var all []store.RecordWithFeedback
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("ListRecords(%+v): cursor never ends", q)
		}
		p, err := s.ListRecords(context.Background(), q)
		if err != nil {
			t.Fatalf("ListRecords(%+v): %v", q, err)
		}
		if q.Limit > 0 && len(p.Records) > q.Limit {
			t.Fatalf("ListRecords: page of %d records, limit %d", len(p.Records), q.Limit)
		}
		all = append(all, p.Records...)
		if p.NextCursor == "" {
			return all
		}
		if len(p.Records) == 0 {
			t.Fatalf("ListRecords: empty page with a next cursor")
		}
		q.Cursor = p.NextCursor
	}
}

func scanAll(t *testing.T, s store.Store, q store.Query) []store.RecordWithFeedback {
	t.Helper()
	var all []store.RecordWithFeedback
	err := s.ScanRecords(context.Background(), q, func(r store.RecordWithFeedback) error {
		all = append(all, r)
		return nil
	})
	if err != nil {
		t.Fatalf("ScanRecords(%+v): %v", q, err)
	}
	return all
}

func idsOf(recs []store.RecordWithFeedback) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return ids
}

func ptr[T any](v T) *T { return &v }

// normalize is what a stored record is expected to read back as: times in
// UTC at microsecond precision, empty collections as nil.
func normalize(r store.Record) store.Record {
	r.CreatedAt = r.CreatedAt.UTC().Truncate(time.Microsecond)
	if len(r.Tags) == 0 {
		r.Tags = nil
	}
	if len(r.Metadata) == 0 {
		r.Metadata = nil
	}
	if len(r.Request) == 0 {
		r.Request = nil
	}
	if len(r.Response) == 0 {
		r.Response = nil
	}
	return r
}

// leanFields keeps the fields a Lean scan must carry (see store.Query.Lean).
func leanFields(r store.Record) store.Record {
	return store.Record{ID: r.ID, CreatedAt: r.CreatedAt, Endpoint: r.Endpoint, Route: r.Route, Provider: r.Provider,
		Model: r.Model, Status: r.Status, Error: r.Error, Request: r.Request, Response: r.Response, Tags: r.Tags, Metadata: r.Metadata}
}

func diffRecord(t *testing.T, got, want store.Record) {
	t.Helper()
	want = normalize(want)
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("%s: CreatedAt location %v, want UTC", want.ID, got.CreatedAt.Location())
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s: CreatedAt %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
	if string(got.Request) != string(want.Request) {
		t.Errorf("%s: Request\n got %q\nwant %q", want.ID, got.Request, want.Request)
	}
	if string(got.Response) != string(want.Response) {
		t.Errorf("%s: Response\n got %q\nwant %q", want.ID, got.Response, want.Response)
	}
	g, w := got, want
	g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
	g.Request, w.Request, g.Response, w.Response = nil, nil, nil, nil
	if fmt.Sprintf("%#v", g) != fmt.Sprintf("%#v", w) {
		t.Errorf("%s: record\n got %#v\nwant %#v", want.ID, g, w)
	}
}

func testRoundTrip(t *testing.T, open Open) {
	s := openStore(t, open)
	ctx := context.Background()
	full := store.Record{
		ID:        "req-full",
		CreatedAt: time.Date(2026, 3, 1, 13, 4, 5, 123456789, time.FixedZone("CET", 3600)),
		Project:   "acme",
		KeyID:     "key-1",
		Endpoint:  "chat.completions",
		Route:     "support-bot",
		Provider:  "openai",
		Model:     "gpt-4o-2024-08-06",
		Stream:    true,
		Status:    502,
		Error:     "upstream: stream broke after 3 chunks",
		// Whitespace, key order, escapes and non-ASCII must survive byte for byte.
		Request:          json.RawMessage("{\"model\":  \"support-bot\",\n \"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9llo \\\"q\\\" \\u0000 ✓ 😀\"}],\"b\":1,\"a\":2.50}"),
		Response:         json.RawMessage(`  {"z":1 , "a":[true,false,null],"n":1e400}  `),
		Latency:          1234567891 * time.Nanosecond,
		TTFT:             987654321 * time.Nanosecond,
		PromptTokens:     12345,
		CompletionTokens: 678,
		UsageEstimated:   true,
		CostUSD:          0.000123456789,
		User:             "user-42",
		Tags:             []string{"prod", "has space", `qu"ote`, "ünï"},
		Metadata:         map[string]string{"team": "red", "we\"ird.key": "va'lue", "empty": ""},
		ParentID:         "req-parent",
		Attempts:         3,
	}
	minimal := store.Record{ID: "req-min", CreatedAt: base}
	empty := store.Record{ID: "req-empty", CreatedAt: base, Request: json.RawMessage{}, Tags: []string{}, Metadata: map[string]string{}}
	insert(t, s, full, minimal, empty)
	for _, want := range []store.Record{full, minimal, empty} {
		got := get(t, s, want.ID)
		diffRecord(t, got.Record, want)
		if got.Feedback != nil {
			t.Errorf("%s: feedback %+v, want none", want.ID, got.Feedback)
		}
	}
	if _, err := s.GetRecord(ctx, "req-missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRecord(missing) = %v, want ErrNotFound", err)
	}
	// The list and scan paths decode the same row as GetRecord.
	listed := listAll(t, s, store.Query{Project: "acme"})
	if len(listed) != 1 {
		t.Fatalf("ListRecords(project acme) = %v, want [req-full]", idsOf(listed))
	}
	diffRecord(t, listed[0].Record, full)
	scanned := scanAll(t, s, store.Query{Project: "acme"})
	if len(scanned) != 1 {
		t.Fatalf("ScanRecords(project acme) = %v, want [req-full]", idsOf(scanned))
	}
	diffRecord(t, scanned[0].Record, full)

	// A Lean scan carries at least what a dataset build reads.
	if err := s.AddFeedback(ctx, store.Feedback{RequestID: "req-full", Score: ptr(0.25), Label: "meh"}); err != nil {
		t.Fatal(err)
	}
	lean := scanAll(t, s, store.Query{Project: "acme", Lean: true})
	if len(lean) != 1 {
		t.Fatalf("ScanRecords(project acme, lean) = %v, want [req-full]", idsOf(lean))
	}
	diffRecord(t, leanFields(lean[0].Record), leanFields(full))
	if f := lean[0].Feedback; f == nil || f.Score == nil || *f.Score != 0.25 {
		t.Errorf("lean scan: feedback %+v, want score 0.25", f)
	}

	// Extreme values survive too.
	odd := store.Record{ID: "req-odd", CreatedAt: time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		Latency: math.MaxInt64, TTFT: -1, PromptTokens: math.MaxInt32, CostUSD: math.SmallestNonzeroFloat64, Status: 599}
	insert(t, s, odd)
	diffRecord(t, get(t, s, "req-odd").Record, odd)
}

// testUncleanText stores text no database's text type takes as is (NUL,
// invalid UTF-8): one such record must not fail its batch. Text fields come
// back with each bad byte as U+FFFD; bodies come back byte for byte.
func testUncleanText(t *testing.T, open Open) {
	s := openStore(t, open)
	ctx := context.Background()
	bad := "a\x00b\xffc"
	want := "a\uFFFDb\uFFFDc"
	rec := store.Record{ID: "dirty", CreatedAt: base, Route: bad, Error: bad, User: bad,
		Request: json.RawMessage("{\"x\":\"\x00\xff\"}"), Tags: []string{bad, "ok"}, Metadata: map[string]string{bad: bad}}
	insert(t, s, rec, store.Record{ID: "clean", CreatedAt: base})
	got := get(t, s, "dirty")
	if got.Route != want || got.Error != want || got.User != want {
		t.Errorf("text fields = %q, %q, %q; want %q", got.Route, got.Error, got.User, want)
	}
	if string(got.Request) != string(rec.Request) {
		t.Errorf("Request = %q, want %q byte for byte", got.Request, rec.Request)
	}
	if !slices.Equal(got.Tags, []string{want, "ok"}) || got.Metadata[want] != want || len(got.Metadata) != 1 {
		t.Errorf("tags %q metadata %q; want %q cleaned", got.Tags, got.Metadata, bad)
	}
	for _, q := range []store.Query{{Tags: []string{want}}, {Routes: []string{want}}, {Metadata: map[string]string{want: want}}, {User: want}} {
		if n := count(t, s, q); n != 1 {
			t.Errorf("CountRecords(%+v) = %d, want 1", q, n)
		}
	}
	if err := s.AddFeedback(ctx, store.Feedback{RequestID: "dirty", Label: bad, Comment: bad}); err != nil {
		t.Fatalf("AddFeedback with unclean text: %v", err)
	}
	if f := get(t, s, "dirty").Feedback; f == nil || f.Label != want || f.Comment != want {
		t.Errorf("feedback = %+v, want label and comment %q", f, want)
	}
}

func testIdempotentInsert(t *testing.T, open Open) {
	s := openStore(t, open)
	first := store.Record{ID: "a", CreatedAt: base, Route: "first", Tags: []string{"v1"}, Metadata: map[string]string{"v": "1"}}
	insert(t, s, first)
	second := first
	second.Route, second.Tags, second.Metadata = "second", []string{"v2"}, map[string]string{"v": "2"}
	b1 := store.Record{ID: "b", CreatedAt: base.Add(time.Second), Route: "b-first"}
	b2 := store.Record{ID: "b", CreatedAt: base.Add(2 * time.Second), Route: "b-second"}
	insert(t, s, second, b1, b2)
	insert(t, s, second) // a whole batch of duplicates
	insert(t, s)         // and an empty one

	// A cancelled batch stores nothing: no record of it is half-written.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.InsertRecords(cctx, []store.Record{{ID: "c1", CreatedAt: base}, {ID: "c2", CreatedAt: base}}); err == nil {
		t.Error("InsertRecords with a cancelled context succeeded")
	}

	if n := count(t, s, store.Query{}); n != 2 {
		t.Errorf("CountRecords = %d, want 2", n)
	}
	diffRecord(t, get(t, s, "a").Record, first)
	diffRecord(t, get(t, s, "b").Record, b1)
	if n := count(t, s, store.Query{Tags: []string{"v2"}}); n != 0 {
		t.Errorf("a duplicate's tags were stored: CountRecords(tag v2) = %d", n)
	}
	if n := count(t, s, store.Query{Metadata: map[string]string{"v": "2"}}); n != 0 {
		t.Errorf("a duplicate's metadata was stored: CountRecords(v=2) = %d", n)
	}
	if n := count(t, s, store.Query{Tags: []string{"v1"}}); n != 1 {
		t.Errorf("CountRecords(tag v1) = %d, want 1", n)
	}
}

// filterFixture is 60 records spread over every filtered field, with feedback.
type filterFixture struct {
	recs     []store.Record
	feedback map[string]*store.Feedback // latest per record
}

func newFilterFixture(t *testing.T, s store.Store) filterFixture {
	ctx := context.Background()
	fx := filterFixture{feedback: map[string]*store.Feedback{}}
	for i := range 60 {
		r := store.Record{
			ID:        fmt.Sprintf("req-%03d", i),
			CreatedAt: base.Add(time.Duration(i/2) * time.Minute), // pairs share a time
			Project:   []string{"", "acme", "globex"}[i%3],
			Route:     []string{"support-bot", "summarize", "classify", "support-bot-v2"}[i%4],
			Model:     []string{"gpt-4o", "gpt-4o-mini", "llama-3-8b", "claude", "qwen"}[i%5],
			Provider:  []string{"openai", "anthropic", "engine"}[(i/3)%3],
			Status:    []int{200, 200, 201, 429, 500, 200, 400}[i%7],
			User:      []string{"u1", "u2", "", "", "", ""}[i%6],
		}
		if i%2 == 0 {
			r.Tags = append(r.Tags, "prod")
		}
		if i%3 == 0 {
			r.Tags = append(r.Tags, "eval")
		}
		if i%5 == 0 {
			r.Tags = append(r.Tags, "gold", "gold") // a repeated tag counts once
		}
		if i%11 == 0 {
			r.Tags = append(r.Tags, `o'dd "tag"`)
		}
		switch i % 4 {
		case 0:
			r.Metadata = map[string]string{"team": "red"}
		case 1:
			r.Metadata = map[string]string{"team": "blue", "tier": "gold"}
		case 2:
			r.Metadata = map[string]string{"tier": "gold"}
		}
		if i%9 == 0 {
			if r.Metadata == nil {
				r.Metadata = map[string]string{}
			}
			r.Metadata[`we"ird key`] = "x"
		}
		fx.recs = append(fx.recs, r)
	}
	// Insert in two batches, out of order, to show order comes from the query.
	shuffled := slices.Clone(fx.recs)
	slices.Reverse(shuffled)
	insert(t, s, shuffled[:25]...)
	insert(t, s, shuffled[25:]...)

	add := func(f store.Feedback) {
		t.Helper()
		if err := s.AddFeedback(ctx, f); err != nil {
			t.Fatalf("AddFeedback(%+v): %v", f, err)
		}
		fx.feedback[f.RequestID] = &f
	}
	for i, r := range fx.recs {
		at := r.CreatedAt.Add(time.Hour)
		switch {
		case i%10 == 3: // rated twice: only the later one counts
			add(store.Feedback{RequestID: r.ID, Score: ptr(0.9), Label: "good", CreatedAt: at})
			add(store.Feedback{RequestID: r.ID, Score: ptr(0.1), Label: "bad", CreatedAt: at.Add(time.Minute)})
		case i%5 == 0:
			add(store.Feedback{RequestID: r.ID, Score: ptr(float64(i) / 60), CreatedAt: at})
		case i%5 == 1:
			add(store.Feedback{RequestID: r.ID, Label: "unscored", Comment: "no score", CreatedAt: at})
		}
	}
	return fx
}

// match is the reference meaning of a Query, in Go.
func (fx filterFixture) match(q store.Query, r store.Record) bool {
	anyOf := func(vals []string, v string) bool { return len(vals) == 0 || slices.Contains(vals, v) }
	if !q.Since.IsZero() && r.CreatedAt.Before(q.Since) || !q.Until.IsZero() && !r.CreatedAt.Before(q.Until) {
		return false
	}
	if q.Project != "" && r.Project != q.Project || q.User != "" && r.User != q.User {
		return false
	}
	if !anyOf(q.Routes, r.Route) || !anyOf(q.Models, r.Model) || !anyOf(q.Providers, r.Provider) {
		return false
	}
	for _, tag := range q.Tags {
		if !slices.Contains(r.Tags, tag) {
			return false
		}
	}
	for k, v := range q.Metadata {
		if got, ok := r.Metadata[k]; !ok || got != v {
			return false
		}
	}
	switch q.Status {
	case "":
	case "ok":
		if r.Status < 200 || r.Status > 299 {
			return false
		}
	case "error":
		if r.Status < 400 {
			return false
		}
	default:
		if fmt.Sprint(r.Status) != q.Status {
			return false
		}
	}
	f := fx.feedback[r.ID]
	if q.HasFeedback != nil && *q.HasFeedback != (f != nil) {
		return false
	}
	if q.MinScore != nil && (f == nil || f.Score == nil || *f.Score < *q.MinScore) {
		return false
	}
	return true
}

func testFilters(t *testing.T, open Open) {
	s := openStore(t, open)
	fx := newFilterFixture(t, s)
	at := func(i int) time.Time { return fx.recs[i].CreatedAt }
	queries := []struct {
		name string
		q    store.Query
		none bool // the query matches no record by design
	}{
		{name: "all", q: store.Query{}},
		{name: "since inclusive", q: store.Query{Since: at(20)}},
		{name: "until exclusive", q: store.Query{Until: at(20)}},
		{name: "range", q: store.Query{Since: at(10), Until: at(31)}},
		{name: "range in another zone", q: store.Query{Since: at(10).In(time.FixedZone("X", -5*3600)), Until: at(31).In(time.FixedZone("Y", 9*3600))}},
		{name: "empty range", q: store.Query{Since: at(30), Until: at(30)}, none: true},
		{name: "project", q: store.Query{Project: "acme"}},
		{name: "unknown project", q: store.Query{Project: "nobody"}, none: true},
		{name: "one route", q: store.Query{Routes: []string{"support-bot"}}},
		{name: "routes", q: store.Query{Routes: []string{"support-bot", "classify", "missing"}}},
		{name: "models", q: store.Query{Models: []string{"gpt-4o-mini", "qwen"}}},
		{name: "providers", q: store.Query{Providers: []string{"engine"}}},
		{name: "tag", q: store.Query{Tags: []string{"prod"}}},
		{name: "all of two tags", q: store.Query{Tags: []string{"prod", "eval"}}},
		{name: "all of three tags", q: store.Query{Tags: []string{"gold", "eval", "prod"}}},
		{name: "odd tag", q: store.Query{Tags: []string{`o'dd "tag"`}}},
		{name: "unknown tag", q: store.Query{Tags: []string{"prod", "nope"}}, none: true},
		{name: "metadata", q: store.Query{Metadata: map[string]string{"team": "blue"}}},
		{name: "metadata two keys", q: store.Query{Metadata: map[string]string{"team": "blue", "tier": "gold"}}},
		{name: "metadata value mismatch", q: store.Query{Metadata: map[string]string{"team": "green"}}, none: true},
		{name: "metadata odd key", q: store.Query{Metadata: map[string]string{`we"ird key`: "x"}}},
		{name: "status ok", q: store.Query{Status: "ok"}},
		{name: "status error", q: store.Query{Status: "error"}},
		{name: "status 429", q: store.Query{Status: "429"}},
		{name: "status 201", q: store.Query{Status: "201"}},
		{name: "status 404", q: store.Query{Status: "404"}, none: true},
		{name: "has feedback", q: store.Query{HasFeedback: ptr(true)}},
		{name: "no feedback", q: store.Query{HasFeedback: ptr(false)}},
		{name: "min score", q: store.Query{MinScore: ptr(0.5)}},
		{name: "min score zero", q: store.Query{MinScore: ptr(0.0)}},
		{name: "min score latest only", q: store.Query{MinScore: ptr(0.8)}},
		{name: "user", q: store.Query{User: "u1"}},
		{name: "combined", q: store.Query{Since: at(4), Project: "acme", Tags: []string{"prod"}, Status: "ok", Routes: []string{"support-bot", "classify"}}},
		{name: "combined feedback", q: store.Query{Providers: []string{"openai", "engine"}, HasFeedback: ptr(true), Metadata: map[string]string{"tier": "gold"}}},
	}
	for _, tt := range queries {
		t.Run(tt.name, func(t *testing.T) {
			var want []store.Record
			for _, r := range fx.recs {
				if fx.match(tt.q, r) {
					want = append(want, r)
				}
			}
			// Newest first, ties broken by id descending.
			sort.Slice(want, func(i, j int) bool {
				if !want[i].CreatedAt.Equal(want[j].CreatedAt) {
					return want[i].CreatedAt.After(want[j].CreatedAt)
				}
				return want[i].ID > want[j].ID
			})
			wantIDs := make([]string, len(want))
			for i, r := range want {
				wantIDs[i] = r.ID
			}
			if (len(want) == 0) != tt.none {
				t.Fatalf("fixture matches %d records: the case tests nothing", len(want))
			}
			if len(want) == len(fx.recs) && tt.name != "all" {
				t.Fatalf("fixture matches every record for %q: the case tests nothing", tt.name)
			}

			q := tt.q
			q.Limit = 7
			listed := listAll(t, s, q)
			if got := idsOf(listed); !slices.Equal(got, wantIDs) {
				t.Errorf("ListRecords:\n got %v\nwant %v", got, wantIDs)
			}
			if n := count(t, s, tt.q); n != int64(len(want)) {
				t.Errorf("CountRecords = %d, want %d", n, len(want))
			}
			scanned := scanAll(t, s, tt.q)
			slices.Reverse(wantIDs)
			if got := idsOf(scanned); !slices.Equal(got, wantIDs) {
				t.Errorf("ScanRecords:\n got %v\nwant %v", got, wantIDs)
			}
			for _, r := range listed {
				wantF := fx.feedback[r.ID]
				switch {
				case wantF == nil && r.Feedback != nil:
					t.Errorf("%s: feedback %+v, want none", r.ID, r.Feedback)
				case wantF != nil && r.Feedback == nil:
					t.Errorf("%s: no feedback, want %+v", r.ID, wantF)
				case wantF != nil && (r.Feedback.Label != wantF.Label || r.Feedback.Comment != wantF.Comment ||
					(r.Feedback.Score == nil) != (wantF.Score == nil) ||
					r.Feedback.Score != nil && *r.Feedback.Score != *wantF.Score ||
					r.Feedback.RequestID != r.ID || !r.Feedback.CreatedAt.Equal(wantF.CreatedAt)):
					t.Errorf("%s: feedback %+v, want %+v", r.ID, r.Feedback, wantF)
				}
			}
		})
	}
}

func testPagination(t *testing.T, open Open) {
	s := openStore(t, open)
	// 125 records in runs of identical timestamps, so pages split ties.
	var recs []store.Record
	for i := range 125 {
		recs = append(recs, store.Record{ID: fmt.Sprintf("p-%03d", (i*37)%125), CreatedAt: base.Add(time.Duration(i/4) * time.Millisecond)})
	}
	insert(t, s, recs...)
	for _, limit := range []int{1, 4, 10, 124, 125, 126} {
		got := listAll(t, s, store.Query{Limit: limit})
		if len(got) != len(recs) {
			t.Errorf("limit %d: %d records through all pages, want %d", limit, len(got), len(recs))
		}
		seen := map[string]bool{}
		for i, r := range got {
			if seen[r.ID] {
				t.Errorf("limit %d: %s on two pages", limit, r.ID)
			}
			seen[r.ID] = true
			if i > 0 {
				prev := got[i-1]
				if r.CreatedAt.After(prev.CreatedAt) || r.CreatedAt.Equal(prev.CreatedAt) && r.ID > prev.ID {
					t.Errorf("limit %d: %s (%v) after %s (%v): not newest first", limit, r.ID, r.CreatedAt, prev.ID, prev.CreatedAt)
				}
			}
		}
	}
	// A page that ends exactly at the last record has no next cursor.
	p, err := s.ListRecords(context.Background(), store.Query{Limit: 125})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 125 || p.NextCursor != "" {
		t.Errorf("Limit 125 of 125: %d records, cursor %q; want 125 and none", len(p.Records), p.NextCursor)
	}
	// Records inserted after a cursor was handed out (newer) do not appear on later pages.
	p, err = s.ListRecords(context.Background(), store.Query{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	insert(t, s, store.Record{ID: "p-new", CreatedAt: base.Add(time.Hour)})
	rest := listAll(t, s, store.Query{Limit: 50, Cursor: p.NextCursor})
	if len(rest) != 115 || slices.Contains(idsOf(rest), "p-new") {
		t.Errorf("after the cursor: %d records (want 115), p-new included: %v", len(rest), slices.Contains(idsOf(rest), "p-new"))
	}

	// Ties break by id compared as bytes ("B" < "_" < "a"), in every driver.
	tie := base.Add(-time.Hour)
	var tied []store.Record
	for _, id := range []string{"a", "B", "b", "_", "A", "a0", "ä"} {
		tied = append(tied, store.Record{ID: id, CreatedAt: tie})
	}
	insert(t, s, tied...)
	got := listAll(t, s, store.Query{Until: tie.Add(time.Microsecond), Limit: 2})
	if want := []string{"ä", "b", "a0", "a", "_", "B", "A"}; !slices.Equal(idsOf(got), want) {
		t.Errorf("ties broken as %q, want %q (bytewise, descending)", idsOf(got), want)
	}
}

func testPageLimits(t *testing.T, open Open) {
	s := openStore(t, open)
	recs := make([]store.Record, 1001)
	for i := range recs {
		recs[i] = store.Record{ID: fmt.Sprintf("l-%04d", i), CreatedAt: base.Add(time.Duration(i) * time.Second)}
	}
	insert(t, s, recs...)
	for _, tt := range []struct{ limit, want int }{{0, 50}, {-3, 50}, {1000, 1000}, {5000, 1000}} {
		p, err := s.ListRecords(context.Background(), store.Query{Limit: tt.limit})
		if err != nil {
			t.Fatalf("ListRecords(limit %d): %v", tt.limit, err)
		}
		if len(p.Records) != tt.want || p.NextCursor == "" {
			t.Errorf("limit %d: %d records, cursor %q; want %d and a cursor", tt.limit, len(p.Records), p.NextCursor, tt.want)
		}
	}
}

func testInvalidQuery(t *testing.T, open Open) {
	s := openStore(t, open)
	ctx := context.Background()
	insert(t, s, store.Record{ID: "x", CreatedAt: base})
	for _, q := range []store.Query{
		{Cursor: "%%% not a cursor"},
		{Cursor: "bm8tc2xhc2g"}, // base64 of "no-slash"
		{Status: "fine"},
		{Status: "42"},
	} {
		if _, err := s.ListRecords(ctx, q); !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("ListRecords(%+v) = %v, want ErrInvalidQuery", q, err)
		}
		if q.Status == "" {
			continue // Count and Scan ignore cursors
		}
		if _, err := s.CountRecords(ctx, q); !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("CountRecords(%+v) = %v, want ErrInvalidQuery", q, err)
		}
		if err := s.ScanRecords(ctx, q, func(store.RecordWithFeedback) error { return nil }); !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("ScanRecords(%+v) = %v, want ErrInvalidQuery", q, err)
		}
	}
}

func testScan(t *testing.T, open Open) {
	s := openStore(t, open)
	ctx := context.Background()
	const n = 2600 // several internal pages of any reasonable size (SQLite reads 1024 at a time)
	recs := make([]store.Record, n)
	for i := range recs {
		recs[i] = store.Record{ID: fmt.Sprintf("s-%04d", n-i), CreatedAt: base.Add(time.Duration(i/3) * time.Second), Route: []string{"a", "b"}[i%2]}
	}
	insert(t, s, recs...)
	if err := s.AddFeedback(ctx, store.Feedback{RequestID: "s-0500", Score: ptr(1.0)}); err != nil {
		t.Fatal(err)
	}
	// Cursor and Limit are ignored.
	got := scanAll(t, s, store.Query{Limit: 3, Cursor: "ignored"})
	if len(got) != n {
		t.Fatalf("ScanRecords: %d records, want %d", len(got), n)
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if b.CreatedAt.Before(a.CreatedAt) || b.CreatedAt.Equal(a.CreatedAt) && b.ID < a.ID {
			t.Fatalf("ScanRecords: %s (%v) after %s (%v): not oldest first", b.ID, b.CreatedAt, a.ID, a.CreatedAt)
		}
	}
	for _, r := range got {
		if (r.Feedback != nil) != (r.ID == "s-0500") {
			t.Errorf("%s: feedback %+v", r.ID, r.Feedback)
		}
	}
	if got := scanAll(t, s, store.Query{Routes: []string{"b"}}); len(got) != n/2 {
		t.Errorf("ScanRecords(route b): %d records, want %d", len(got), n/2)
	}

	// An error from fn stops the scan and comes back unchanged.
	stop := errors.New("stop")
	calls := 0
	err := s.ScanRecords(ctx, store.Query{}, func(store.RecordWithFeedback) error {
		calls++
		if calls == 600 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 600 {
		t.Errorf("ScanRecords with failing fn: err %v after %d calls, want stop after 600", err, calls)
	}

	// fn may write to the store while the scan runs (no lock is held across it).
	calls = 0
	err = s.ScanRecords(ctx, store.Query{Routes: []string{"a"}}, func(r store.RecordWithFeedback) error {
		calls++
		if calls%200 == 0 {
			return s.AddFeedback(ctx, store.Feedback{RequestID: r.ID, Label: "seen"})
		}
		return nil
	})
	if err != nil || calls != n/2 {
		t.Errorf("ScanRecords writing from fn: err %v after %d calls, want nil after %d", err, calls, n/2)
	}

	// A cancelled context stops the scan.
	cctx, cancel := context.WithCancel(ctx)
	calls = 0
	err = s.ScanRecords(cctx, store.Query{}, func(store.RecordWithFeedback) error {
		calls++
		if calls == 1 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls == n {
		t.Errorf("ScanRecords after cancel: err %v after %d calls, want context.Canceled before the end", err, calls)
	}
}

func testFeedback(t *testing.T, open Open) {
	s := openStore(t, open)
	ctx := context.Background()
	insert(t, s, store.Record{ID: "f1", CreatedAt: base}, store.Record{ID: "f2", CreatedAt: base})
	if err := s.AddFeedback(ctx, store.Feedback{RequestID: "nope", Score: ptr(1.0)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AddFeedback(unknown id) = %v, want ErrNotFound", err)
	}
	// Latest means the latest CreatedAt, not the last added.
	late := base.Add(2 * time.Hour).Add(789 * time.Nanosecond)
	for _, f := range []store.Feedback{
		{RequestID: "f1", Score: ptr(0.25), Label: "late", Comment: "c1", CreatedAt: late},
		{RequestID: "f1", Score: ptr(0.75), Label: "early", CreatedAt: base.Add(time.Hour)},
		{RequestID: "f2", Label: "a", CreatedAt: base},
		{RequestID: "f2", Label: "b", CreatedAt: base}, // same time: the one added last wins
	} {
		if err := s.AddFeedback(ctx, f); err != nil {
			t.Fatalf("AddFeedback(%+v): %v", f, err)
		}
	}
	f := get(t, s, "f1").Feedback
	if f == nil || f.Label != "late" || f.Comment != "c1" || f.Score == nil || *f.Score != 0.25 ||
		!f.CreatedAt.Equal(late.Truncate(time.Microsecond)) || f.CreatedAt.Location() != time.UTC || f.RequestID != "f1" {
		t.Errorf("f1 feedback = %+v, want the late one", f)
	}
	if f := get(t, s, "f2").Feedback; f == nil || f.Label != "b" || f.Score != nil {
		t.Errorf("f2 feedback = %+v, want label b without score", f)
	}
	// A zero CreatedAt is filled in with the current time.
	insert(t, s, store.Record{ID: "f3", CreatedAt: base})
	before := time.Now().Add(-time.Second)
	if err := s.AddFeedback(ctx, store.Feedback{RequestID: "f3", Score: ptr(-2.5)}); err != nil {
		t.Fatal(err)
	}
	if f := get(t, s, "f3").Feedback; f == nil || f.CreatedAt.Before(before) || f.CreatedAt.After(time.Now().Add(time.Second)) || *f.Score != -2.5 {
		t.Errorf("f3 feedback = %+v, want CreatedAt ≈ now and score -2.5", f)
	}
}

func testKeys(t *testing.T, open Open) {
	s := openStore(t, open)
	ctx := context.Background()
	k1 := store.Key{ID: "k1", Name: "prod", Project: "acme", Prefix: "fk-abc", Hash: "h1", CreatedAt: base.Add(1234 * time.Nanosecond)}
	k2 := store.Key{ID: "k2", Name: "dev", Project: "acme", Prefix: "fk-def", Hash: "h2", CreatedAt: base.Add(time.Minute)}
	k3 := store.Key{ID: "k3", Name: "other", Project: "globex", Prefix: "fk-ghi", Hash: "h3", CreatedAt: base.Add(-time.Minute)}
	for _, k := range []store.Key{k2, k1, k3} {
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatalf("CreateKey(%s): %v", k.ID, err)
		}
	}
	if err := s.CreateKey(ctx, store.Key{ID: "k4", Project: "acme", Hash: "h1"}); err == nil {
		t.Error("CreateKey with a duplicate hash succeeded")
	}
	if err := s.CreateKey(ctx, store.Key{ID: "k1", Project: "acme", Hash: "h9"}); err == nil {
		t.Error("CreateKey with a duplicate id succeeded")
	}

	got, err := s.KeyByHash(ctx, "h1")
	if err != nil {
		t.Fatalf("KeyByHash(h1): %v", err)
	}
	want := k1
	want.CreatedAt = want.CreatedAt.Truncate(time.Microsecond)
	if fmt.Sprint(got) != fmt.Sprint(want) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("KeyByHash(h1) = %+v, want %+v", got, want)
	}
	if _, err := s.KeyByHash(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("KeyByHash(unknown) = %v, want ErrNotFound", err)
	}

	listIDs := func(project string) []string {
		t.Helper()
		keys, err := s.ListKeys(ctx, project)
		if err != nil {
			t.Fatalf("ListKeys(%q): %v", project, err)
		}
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
		return ids
	}
	if ids := listIDs("acme"); !slices.Equal(ids, []string{"k1", "k2"}) {
		t.Errorf("ListKeys(acme) = %v, want [k1 k2] (oldest first)", ids)
	}
	if ids := listIDs(""); !slices.Equal(ids, []string{"k3", "k1", "k2"}) {
		t.Errorf("ListKeys(\"\") = %v, want every key oldest first", ids)
	}
	if ids := listIDs("nobody"); len(ids) != 0 {
		t.Errorf("ListKeys(nobody) = %v, want none", ids)
	}

	// Revoke: sets RevokedAt once; the key is still found by hash (callers check RevokedAt).
	before := time.Now().Add(-time.Second)
	if err := s.RevokeKey(ctx, "k1"); err != nil {
		t.Fatalf("RevokeKey(k1): %v", err)
	}
	r1, err := s.KeyByHash(ctx, "h1")
	if err != nil || r1.RevokedAt == nil || r1.RevokedAt.Before(before) || r1.RevokedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("after RevokeKey: %+v, %v; want RevokedAt ≈ now", r1, err)
	}
	if err := s.RevokeKey(ctx, "k1"); err != nil {
		t.Errorf("RevokeKey twice: %v", err)
	}
	if r2, _ := s.KeyByHash(ctx, "h1"); r2.RevokedAt == nil || !r2.RevokedAt.Equal(*r1.RevokedAt) {
		t.Errorf("second RevokeKey moved RevokedAt from %v to %v", r1.RevokedAt, r2.RevokedAt)
	}
	if err := s.RevokeKey(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeKey(unknown) = %v, want ErrNotFound", err)
	}
	if k, _ := s.KeyByHash(ctx, "h2"); k.RevokedAt != nil {
		t.Errorf("revoking k1 revoked k2 too")
	}

	// Touch: last use moves forward only.
	t1 := base.Add(time.Hour + 5*time.Microsecond + 7*time.Nanosecond)
	if err := s.TouchKey(ctx, "k2", t1); err != nil {
		t.Fatalf("TouchKey: %v", err)
	}
	if err := s.TouchKey(ctx, "k2", t1.Add(-time.Minute)); err != nil {
		t.Fatalf("TouchKey(earlier): %v", err)
	}
	if err := s.TouchKey(ctx, "k2", t1); err != nil {
		t.Fatalf("TouchKey(same time): %v", err)
	}
	if k, _ := s.KeyByHash(ctx, "h2"); k.LastUsedAt == nil || !k.LastUsedAt.Equal(t1.Truncate(time.Microsecond)) {
		t.Errorf("LastUsedAt = %v, want %v", k.LastUsedAt, t1.Truncate(time.Microsecond))
	}
	t2 := t1.Add(time.Minute)
	if err := s.TouchKey(ctx, "k2", t2); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.KeyByHash(ctx, "h2"); k.LastUsedAt == nil || !k.LastUsedAt.Equal(t2.Truncate(time.Microsecond)) {
		t.Errorf("LastUsedAt = %v, want %v", k.LastUsedAt, t2)
	}
	if err := s.TouchKey(ctx, "nope", t1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TouchKey(unknown) = %v, want ErrNotFound", err)
	}

	// A key created with its optional times keeps them.
	rev, used := base.Add(3*time.Hour), base.Add(2*time.Hour)
	k5 := store.Key{ID: "k5", Project: "p", Hash: "h5", CreatedAt: base, RevokedAt: &rev, LastUsedAt: &used}
	if err := s.CreateKey(ctx, k5); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.KeyByHash(ctx, "h5"); k.RevokedAt == nil || !k.RevokedAt.Equal(rev) || k.LastUsedAt == nil || !k.LastUsedAt.Equal(used) {
		t.Errorf("KeyByHash(h5) = %+v, want RevokedAt %v LastUsedAt %v", k, rev, used)
	}
}

func testRetention(t *testing.T, open Open) {
	s := openStore(t, open)
	ctx := context.Background()
	var recs []store.Record
	for i := range 40 {
		recs = append(recs, store.Record{ID: fmt.Sprintf("r-%02d", i), CreatedAt: base.Add(time.Duration(i) * time.Hour),
			Tags: []string{"old-tag"}, Metadata: map[string]string{"m": "1"}})
	}
	insert(t, s, recs...)
	for _, id := range []string{"r-05", "r-30"} {
		if err := s.AddFeedback(ctx, store.Feedback{RequestID: id, Score: ptr(1.0)}); err != nil {
			t.Fatal(err)
		}
	}
	cut := base.Add(25 * time.Hour)
	n, err := s.DeleteRecordsBefore(ctx, cut)
	if err != nil || n != 25 {
		t.Fatalf("DeleteRecordsBefore = %d, %v; want 25", n, err)
	}
	if n := count(t, s, store.Query{}); n != 15 {
		t.Errorf("after retention: %d records, want 15", n)
	}
	if got := scanAll(t, s, store.Query{}); len(got) != 15 || !got[0].CreatedAt.Equal(cut) {
		t.Errorf("after retention the oldest record is %v, want %v", idsOf(got), cut)
	}
	if _, err := s.GetRecord(ctx, "r-05"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRecord(deleted) = %v, want ErrNotFound", err)
	}
	if err := s.AddFeedback(ctx, store.Feedback{RequestID: "r-05"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AddFeedback(deleted) = %v, want ErrNotFound", err)
	}
	if f := get(t, s, "r-30").Feedback; f == nil {
		t.Error("retention removed feedback of a kept record")
	}
	// A deleted id inserted again starts clean: its old feedback and tags are gone.
	insert(t, s, store.Record{ID: "r-05", CreatedAt: base.Add(100 * time.Hour)})
	if f := get(t, s, "r-05").Feedback; f != nil {
		t.Errorf("re-inserted r-05 has orphaned feedback %+v", f)
	}
	if n := count(t, s, store.Query{Tags: []string{"old-tag"}}); n != 15 {
		t.Errorf("CountRecords(old-tag) = %d, want 15 (orphaned tags?)", n)
	}
	if n := count(t, s, store.Query{HasFeedback: ptr(true)}); n != 1 {
		t.Errorf("CountRecords(has feedback) = %d, want 1", n)
	}
	if n, err := s.DeleteRecordsBefore(ctx, cut); err != nil || n != 0 {
		t.Errorf("second DeleteRecordsBefore = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteRecordsBefore(ctx, base.Add(1000*time.Hour)); err != nil || n != 16 {
		t.Errorf("DeleteRecordsBefore(all) = %d, %v; want 16", n, err)
	}
}

func testConcurrentInserts(t *testing.T, open Open) {
	s := openStore(t, open)
	const writers, batches, size = 6, 15, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				recs := make([]store.Record, size)
				for i := range recs {
					// Writers w and w+1 share half their ids, so duplicates race.
					n := (w/2)*batches*size*2 + (w%2)*batches*size/2 + b*size + i
					recs[i] = store.Record{ID: fmt.Sprintf("c-%06d", n), CreatedAt: base.Add(time.Duration(n) * time.Millisecond),
						Route: fmt.Sprint("w", w), Tags: []string{"t"}}
				}
				if err := s.InsertRecords(context.Background(), recs); err != nil {
					errs <- err
					return
				}
			}
			// Readers run alongside the writers.
			if _, err := s.CountRecords(context.Background(), store.Query{Tags: []string{"t"}}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent InsertRecords: %v", err)
	}
	want := map[string]bool{}
	for w := range writers {
		for k := range batches * size {
			want[fmt.Sprintf("c-%06d", (w/2)*batches*size*2+(w%2)*batches*size/2+k)] = true
		}
	}
	got := scanAll(t, s, store.Query{})
	if len(got) != len(want) {
		t.Errorf("after concurrent inserts: %d records, want %d", len(got), len(want))
	}
	for _, r := range got {
		if !want[r.ID] {
			t.Errorf("unexpected record %s", r.ID)
		}
	}
	if n := count(t, s, store.Query{Tags: []string{"t"}}); n != int64(len(want)) {
		t.Errorf("CountRecords(tag t) = %d, want %d", n, len(want))
	}
}

func testReopen(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t)
	rec := store.Record{ID: "keep", CreatedAt: base.Add(5 * time.Microsecond), Request: json.RawMessage(`{"a": 1}`), Tags: []string{"x"}, Metadata: map[string]string{"k": "v"}}
	insert(t, s, rec)
	if err := s.AddFeedback(ctx, store.Feedback{RequestID: "keep", Score: ptr(0.5), CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, store.Key{ID: "k", Project: "p", Hash: "h", CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openStore(t, open)
	got := get(t, s, "keep")
	diffRecord(t, got.Record, rec)
	if got.Feedback == nil || *got.Feedback.Score != 0.5 {
		t.Errorf("feedback after reopen = %+v", got.Feedback)
	}
	if n := count(t, s, store.Query{Tags: []string{"x"}, Metadata: map[string]string{"k": "v"}}); n != 1 {
		t.Errorf("filters after reopen: %d records, want 1", n)
	}
	if k, err := s.KeyByHash(ctx, "h"); err != nil || k.ID != "k" {
		t.Errorf("KeyByHash after reopen = %+v, %v", k, err)
	}
	insert(t, s, store.Record{ID: "keep", CreatedAt: base, Route: "dup"}, store.Record{ID: "new", CreatedAt: base})
	if n := count(t, s, store.Query{}); n != 2 {
		t.Errorf("after reopen and insert: %d records, want 2", n)
	}
}

// BenchmarkInsertRecords measures batched inserts of realistic records
// (Record: ~1.5 KB of JSON each) in batches of size, reporting rows/s. The
// records are built before the clock starts; each batch gets fresh ids.
func BenchmarkInsertRecords(b *testing.B, s store.Store, size int) {
	tmpl := make([]store.Record, size)
	for i := range tmpl {
		tmpl[i] = Record(i, base)
	}
	benchmarkInsert(b, s, tmpl)
}

// BenchmarkInsertSmallRecords is BenchmarkInsertRecords without request and
// response bodies: what the schema's indexes and tags cost on their own.
func BenchmarkInsertSmallRecords(b *testing.B, s store.Store, size int) {
	tmpl := make([]store.Record, size)
	for i := range tmpl {
		tmpl[i] = Record(i, base)
		tmpl[i].Request, tmpl[i].Response = nil, nil
	}
	benchmarkInsert(b, s, tmpl)
}

func benchmarkInsert(b *testing.B, s store.Store, tmpl []store.Record) {
	ctx := context.Background()
	var bytes int64
	for _, r := range tmpl {
		bytes += int64(len(r.Request) + len(r.Response))
	}
	batch := make([]store.Record, len(tmpl))
	b.SetBytes(bytes)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range batch {
			batch[i] = tmpl[i]
			batch[i].ID = fmt.Sprintf("bench-%010d", n)
			batch[i].CreatedAt = base.Add(time.Duration(n) * time.Millisecond)
			n++
		}
		if err := s.InsertRecords(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}
