package dataset

import (
	"testing"

	"github.com/foundryhq/foundry/store"
)

func TestScanQueryKeepsTheStoreScanLinear(t *testing.T) {
	sel := Selection{Routes: []string{"a", "b"}, Models: []string{"m"}, Providers: []string{"p", "q"}, Tags: []string{"prod"}}
	q, residual := sel.scanQuery()
	if q.Status != "" || q.Routes != nil || q.Providers != nil || len(q.Models) != 1 || len(q.Tags) != 1 {
		t.Fatalf("pushed down %+v", q)
	}
	for _, c := range []struct {
		r    store.Record
		want string
	}{
		{store.Record{Status: 200, Route: "a", Provider: "p"}, ""},
		{store.Record{Status: 500, Route: "a", Provider: "p"}, "status not ok"},
		{store.Record{Status: 200, Route: "c", Provider: "p"}, "other route"},
		{store.Record{Status: 204, Route: "b", Provider: "z"}, "other provider"},
		{store.Record{Status: 200, Route: "a", Provider: "p", Tags: []string{"judge", "dataset"}}, "a judge or teacher call"},
		{store.Record{Status: 200, Route: "a", Provider: "p", Tags: []string{"prod", "teacher"}}, "a judge or teacher call"},
	} {
		r := store.RecordWithFeedback{Record: c.r}
		if got := residual(&r); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
	// Asking for the tag selects them.
	_, residual = Selection{Tags: []string{"judge"}}.scanQuery()
	r := store.RecordWithFeedback{Record: store.Record{Status: 200, Tags: []string{"judge", "dataset"}}}
	if got := residual(&r); got != "" {
		t.Errorf("a selection of tags [judge] skips a judge call: %q", got)
	}
}
