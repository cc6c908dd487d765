package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foundryhq/foundry/store"
)

// TestFiltersUseIndexes checks that each selective filter of a newest-first
// page is answered from an index, not by scanning every record.
func TestFiltersUseIndexes(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		q     store.Query
		index string
	}{
		{store.Query{}, "records_created_at"},
		{store.Query{Since: at}, "records_created_at"},
		{store.Query{Project: "acme"}, "records_project"},
		{store.Query{Routes: []string{"support-bot"}}, "records_route"},
		{store.Query{Models: []string{"gpt-4o"}}, "records_model"},
		{store.Query{Providers: []string{"engine"}}, "records_provider"},
		{store.Query{Status: "429"}, "records_status"},
		{store.Query{Status: "error"}, "records_status"},
		{store.Query{User: "u1"}, "records_end_user"},
		{store.Query{Tags: []string{"gold"}}, "t0 USING PRIMARY KEY"},
		{store.Query{Tags: []string{"gold", "prod"}}, "t0 USING PRIMARY KEY"},
	} {
		w, err := where(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		query := recordColumns + w.from() + latestFeedback + w.sql() + " ORDER BY " + w.at + " DESC, r.id DESC LIMIT ?"
		rows, err := db.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, append(w.args, 51)...)
		if err != nil {
			t.Fatalf("explain %+v: %v", tt.q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, tt.index) || strings.Contains(text, "SCAN r\n") || strings.HasSuffix(text, "SCAN r") {
			t.Errorf("query %+v: plan does not use %s:\n%s", tt.q, tt.index, text)
		}
	}
}

// TestScanWalksCreatedAtForRangesAndLists checks that a scan filtered by a
// status range or several models reads records_created_at in order, not an
// index whose rows each keyset page would have to sort again.
func TestScanWalksCreatedAtForRangesAndLists(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []store.Query{{Status: "ok"}, {Status: "error"}, {Models: []string{"a", "b"}}, {Routes: []string{"a", "b"}, Status: "ok"}} {
		w, err := where(q)
		if err != nil {
			t.Fatal(err)
		}
		w.add("("+w.at+", r.id) > (?, ?)", 0, "")
		query := recordColumns + w.scanFrom() + latestFeedback + w.sql() + " ORDER BY " + w.at + ", r.id LIMIT ?"
		rows, err := db.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, append(w.args, 256)...)
		if err != nil {
			t.Fatalf("explain %+v: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, "records_created_at") || strings.Contains(text, "TEMP B-TREE FOR ORDER BY") {
			t.Errorf("scan %+v: plan sorts or skips records_created_at:\n%s", q, text)
		}
	}
}
