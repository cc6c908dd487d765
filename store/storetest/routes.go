package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/foundryhq/foundry/store"
)

// testRoutes: versions count up from 1, a stale version conflicts (also under
// concurrent writers), history is oldest first, list has the latest of each.
func testRoutes(t *testing.T, open Open) {
	s := openStore(t, open)
	ctx := context.Background()
	if _, err := s.GetRoute(ctx, "support-bot"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRoute(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.RouteHistory(ctx, "support-bot"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RouteHistory(missing) = %v, want ErrNotFound", err)
	}
	if rs, err := s.ListRoutes(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("ListRoutes(empty) = %v, %v", rs, err)
	}
	if err := s.PutRoute(ctx, store.RouteVersion{Name: "support-bot", Version: 2, Policy: json.RawMessage(`{}`)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("PutRoute(version 2 of a new route) = %v, want ErrConflict", err)
	}
	policies := []string{`{"arms":[{"model":"teacher"}]}`, `{"arms": [ {"model":"teacher","weight":90}, {"model":"student","weight":10} ]}`, "{\"comment\":\"ünïcode ✓\"}"}
	for i, p := range policies {
		rv := store.RouteVersion{Name: "support-bot", Version: i + 1, Policy: json.RawMessage(p), Actor: "alice", Comment: fmt.Sprintf("change %d", i+1),
			CreatedAt: base.Add(time.Duration(i) * time.Minute).Add(123 * time.Nanosecond)}
		if err := s.PutRoute(ctx, rv); err != nil {
			t.Fatalf("PutRoute(version %d): %v", i+1, err)
		}
	}
	if err := s.PutRoute(ctx, store.RouteVersion{Name: "support-bot", Version: 3, Policy: json.RawMessage(`{}`)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("PutRoute(stale version 3) = %v, want ErrConflict", err)
	}
	if err := s.PutRoute(ctx, store.RouteVersion{Name: "a-route", Version: 1, Policy: json.RawMessage(`{"x":1}`), Actor: "bob"}); err != nil {
		t.Fatalf("PutRoute(a-route): %v", err)
	}
	got, err := s.GetRoute(ctx, "support-bot")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 3 || string(got.Policy) != policies[2] || got.Actor != "alice" || got.Comment != "change 3" ||
		!got.CreatedAt.Equal(base.Add(2*time.Minute)) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("GetRoute = %+v (policy %s), want version 3 with policy %s at %v UTC", got, got.Policy, policies[2], base.Add(2*time.Minute))
	}
	hist, err := s.RouteHistory(ctx, "support-bot")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 {
		t.Fatalf("RouteHistory: %d versions, want 3", len(hist))
	}
	for i, h := range hist {
		if h.Version != i+1 || string(h.Policy) != policies[i] || h.Comment != fmt.Sprintf("change %d", i+1) {
			t.Errorf("history[%d] = version %d policy %s comment %q", i, h.Version, h.Policy, h.Comment)
		}
	}
	list, err := s.ListRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "a-route" || list[0].Version != 1 || list[1].Name != "support-bot" || list[1].Version != 3 {
		t.Fatalf("ListRoutes = %+v, want a-route v1 then support-bot v3", list)
	}
	if list[0].CreatedAt.IsZero() {
		t.Errorf("a zero CreatedAt was not set to now")
	}

	// Concurrent writers of the same next version: exactly one wins.
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.PutRoute(ctx, store.RouteVersion{Name: "support-bot", Version: 4, Policy: json.RawMessage(fmt.Sprintf(`{"w":%d}`, i)), Actor: "race"})
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("writer %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent writers of version 4 succeeded, want exactly 1", won)
	}
	if got, err := s.GetRoute(ctx, "support-bot"); err != nil || got.Version != 4 {
		t.Fatalf("after the race: %+v, %v; want version 4", got, err)
	}
}
