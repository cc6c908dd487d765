package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/foundryhq/foundry/store"
)

// testJobs: SaveJob upserts (keeping the first Created), the record comes
// back byte for byte, lists are newest first and filter by kind and status,
// and the limit applies.
func testJobs(t *testing.T, open Open) {
	s := open(t) // closed below, then reopened
	ctx := context.Background()
	if _, err := s.GetJob(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetJob(missing) = %v, want ErrNotFound", err)
	}
	if js, err := s.ListJobs(ctx, store.JobQuery{}); err != nil || len(js) != 0 {
		t.Fatalf("ListJobs(empty) = %v, %v", js, err)
	}
	if err := s.SaveJob(ctx, store.Job{ID: "bad", Kind: "train", Status: "running", Record: json.RawMessage(`{"id":`)}); err == nil {
		t.Error("SaveJob(invalid JSON record): want an error")
	}
	if err := s.SaveJob(ctx, store.Job{Kind: "train", Status: "running", Record: json.RawMessage(`{}`)}); err == nil {
		t.Error("SaveJob(no id): want an error")
	}

	statuses := []string{"succeeded", "running", "queued", "failed", "interrupted"}
	for i, st := range statuses {
		created := base.Add(time.Duration(i) * time.Minute).Add(789 * time.Nanosecond)
		j := store.Job{ID: fmt.Sprintf("job-%d", i), Kind: "train", Status: st, Created: created, Updated: created,
			Record: json.RawMessage(fmt.Sprintf(`{"id": "job-%d",  "status":"%s", "note":"ünïcode ✓"}`, i, st))}
		if err := s.SaveJob(ctx, j); err != nil {
			t.Fatalf("SaveJob(%s): %v", j.ID, err)
		}
	}
	if err := s.SaveJob(ctx, store.Job{ID: "eval-1", Kind: "eval", Status: "running", Created: base.Add(time.Hour), Record: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}

	got, err := s.GetJob(ctx, "job-1")
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	wantCreated := base.Add(time.Minute).Truncate(time.Microsecond)
	if got.Kind != "train" || got.Status != "running" || !got.Created.Equal(wantCreated) || got.Created.Location() != time.UTC ||
		string(got.Record) != `{"id": "job-1",  "status":"running", "note":"ünïcode ✓"}` {
		t.Errorf("GetJob = %+v (record %s)", got, got.Record)
	}

	// An update replaces status, updated and record, and keeps the first Created.
	later := base.Add(2 * time.Hour)
	if err := s.SaveJob(ctx, store.Job{ID: "job-1", Kind: "train", Status: "succeeded", Created: later, Updated: later,
		Record: json.RawMessage(`{"id":"job-1","status":"succeeded"}`)}); err != nil {
		t.Fatalf("SaveJob(update): %v", err)
	}
	got, err = s.GetJob(ctx, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "succeeded" || !got.Created.Equal(wantCreated) || !got.Updated.Equal(later) || string(got.Record) != `{"id":"job-1","status":"succeeded"}` {
		t.Errorf("after update: %+v (record %s)", got, got.Record)
	}

	ids := func(js []store.Job) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}
	for _, tt := range []struct {
		q    store.JobQuery
		want string
	}{
		{store.JobQuery{}, "[eval-1 job-4 job-3 job-2 job-1 job-0]"},
		{store.JobQuery{Kind: "train"}, "[job-4 job-3 job-2 job-1 job-0]"},
		{store.JobQuery{Kind: "train", Status: []string{"running", "queued"}}, "[job-2]"},
		{store.JobQuery{Status: []string{"running"}}, "[eval-1]"},
		{store.JobQuery{Status: []string{"succeeded"}}, "[job-1 job-0]"},
		{store.JobQuery{Kind: "train", Limit: 2}, "[job-4 job-3]"},
		{store.JobQuery{Kind: "none"}, "[]"},
	} {
		js, err := s.ListJobs(ctx, tt.q)
		if err != nil {
			t.Fatalf("ListJobs(%+v): %v", tt.q, err)
		}
		if g := fmt.Sprint(ids(js)); g != tt.want {
			t.Errorf("ListJobs(%+v) = %s, want %s", tt.q, g, tt.want)
		}
	}

	// Jobs survive a reopen.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := openStore(t, open)
	if got, err := s2.GetJob(ctx, "job-3"); err != nil || got.Status != "failed" {
		t.Errorf("GetJob after reopen = %+v, %v", got, err)
	}
}
