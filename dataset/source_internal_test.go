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
	} {
		r := store.RecordWithFeedback{Record: c.r}
		if got := residual(&r); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
}
