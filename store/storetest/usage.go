package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/foundryhq/foundry/store"
)

// testUsage checks roll-ups against sums computed here from the same records.
func testUsage(t *testing.T, open Open) {
	s := openStore(t, open)
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var recs []store.Record
	for i := 0; i < 200; i++ {
		recs = append(recs, Record(i, base.Add(time.Duration(i)*47*time.Second)))
	}
	insert(t, s, recs...)
	type key struct {
		start           time.Time
		provider, model string
	}
	want := map[key]store.UsageBucket{}
	q := store.Query{Since: base.Add(10 * time.Minute)}
	for _, r := range recs {
		if r.CreatedAt.Before(q.Since) {
			continue
		}
		k := key{r.CreatedAt.Truncate(time.Hour), r.Provider, r.Model}
		u := want[k]
		u.Start, u.Provider, u.Model = k.start, k.provider, k.model
		u.Requests++
		if r.Status >= 400 {
			u.Errors++
		}
		u.PromptTokens += int64(r.PromptTokens)
		u.CompletionTokens += int64(r.CompletionTokens)
		u.CostUSD += r.CostUSD
		u.Latency += r.Latency
		want[k] = u
	}
	got, err := s.Usage(context.Background(), q, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d buckets, want %d", len(got), len(want))
	}
	for i, u := range got {
		if i > 0 && u.Start.Before(got[i-1].Start) {
			t.Fatalf("buckets not oldest first: %v after %v", u.Start, got[i-1].Start)
		}
		w, ok := want[key{u.Start, u.Provider, u.Model}]
		if !ok {
			t.Fatalf("unexpected bucket %+v", u)
		}
		if u.Requests != w.Requests || u.Errors != w.Errors || u.PromptTokens != w.PromptTokens || u.CompletionTokens != w.CompletionTokens ||
			u.Latency.Round(time.Microsecond) != w.Latency.Round(time.Microsecond) || abs(u.CostUSD-w.CostUSD) > 1e-9 {
			t.Fatalf("bucket %v %s/%s: got %+v want %+v", u.Start, u.Provider, u.Model, u, w)
		}
	}
	// Filters apply.
	got, err = s.Usage(context.Background(), store.Query{Models: []string{"gpt-4o"}, Status: "error"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range got {
		if u.Model != "gpt-4o" || u.Requests != u.Errors {
			t.Fatalf("filtered bucket %+v", u)
		}
	}
	if _, err := s.Usage(context.Background(), store.Query{}, time.Millisecond); !errors.Is(err, store.ErrInvalidQuery) {
		t.Fatalf("sub-second bucket: %v", err)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
