package dataset_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/dataset"
)

func TestPlantedRowsRemovedAtTheRightStage(t *testing.T) {
	ctx := context.Background()
	st, rows := plantedStore(t)
	spec, err := dataset.ReadSpec("testdata/planted.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	built, err := dataset.Build(ctx, spec, dataset.BuildOptions{Store: st, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f := built.Manifest.Funnel
	for _, r := range f {
		t.Logf("%-9s in %3d out %3d %v", r.Stage, r.In, r.Out, r.Counters)
		for _, d := range r.Dropped {
			t.Logf("          - %-45s %2d  e.g. %+v", d.Reason, d.Count, d.Samples[:min(1, len(d.Samples))])
		}
	}
	// Expected drops per stage and reason, counted from the fixture's plant labels.
	want := map[string]map[string]int64{}
	var pii = map[string]int64{}
	var piiRows int64
	survivors := int64(0)
	for _, r := range rows {
		if r.Plant == "" {
			survivors++
		}
		for k, v := range r.PII {
			pii[k] += int64(v)
		}
		if len(r.PII) > 0 {
			piiRows++
		}
		stage, reason, ok := strings.Cut(r.Plant, ":")
		if !ok || stage == "none" {
			continue
		}
		if want[stage] == nil {
			want[stage] = map[string]int64{}
		}
		want[stage][reason]++
	}
	for stage, reasons := range want {
		rep := f.Stage(stage)
		if rep == nil {
			t.Fatalf("no %s stage in the funnel", stage)
		}
		var total int64
		for reason, n := range reasons {
			total += n
			if got := rep.DroppedFor(reason); got != n {
				t.Errorf("%s dropped %d rows for %q, want %d", stage, got, reason, n)
			}
		}
		if got := rep.In - rep.Out; got != total {
			t.Errorf("%s dropped %d rows in all, want %d", stage, got, total)
		}
	}
	if got := f.Stage("select").In; got != int64(len(rows))-1 { // the other route is never read
		t.Errorf("select read %d records, want %d", got, len(rows)-1)
	}
	sc := f.Stage("scrub")
	for typ, n := range pii {
		if got := sc.Counters[typ]; got != n {
			t.Errorf("scrub found %d %s, want %d", got, typ, n)
		}
	}
	if sc.Counters["rows with PII"] != piiRows {
		t.Errorf("scrub: %d rows with PII, want %d", sc.Counters["rows with PII"], piiRows)
	}
	var total int64
	for _, n := range built.Manifest.Rows {
		total += n
	}
	if total != survivors {
		t.Errorf("the version holds %d rows, want %d survivors", total, survivors)
	}
	// The written rows carry placeholders, consistent within a conversation.
	b, err := os.ReadFile(filepath.Join(built.Dir, "train.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range []string{"val", "test"} {
		more, _ := os.ReadFile(filepath.Join(built.Dir, sp+".jsonl"))
		b = append(b, more...)
	}
	all := string(b)
	for _, leak := range []string{"jane.doe@example.com", "4111 1111 1111 1111", "DE89 3704", "203.0.113.45", "sk-proj-4fG7", "7946 0958", "2001:db8::"} {
		if strings.Contains(all, leak) {
			t.Errorf("%q survived the scrub", leak)
		}
	}
	if strings.Count(all, "<EMAIL_1>") != 3 || strings.Count(all, "<EMAIL_2>") != 1 {
		t.Errorf("email placeholders not consistent: %d <EMAIL_1>, %d <EMAIL_2>", strings.Count(all, "<EMAIL_1>"), strings.Count(all, "<EMAIL_2>"))
	}
	// The near duplicate with the better score replaced its original.
	if !strings.Contains(all, "platypus") {
		t.Error("the better-scored near duplicate was not the one kept")
	}
}
