package web

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/eval"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/train"
)

// The pages' fixture: a dataset version, two training jobs, an eval and a
// routed canary with its history, written with the packages' own writers
// into a data dir and the store, as a quickstart run leaves them.
const (
	fxDataset  = "support-triage"
	fxJob      = "support-lora-3f2a"
	fxJobLive  = "support-lora-live"
	fxEval     = "triage-eval-1"
	fxRoute    = "support-bot"
	fxTeacher  = "gpt-4o"
	fxStudent  = "support-v3"
	fxTrainUSD = 1.75
)

// fxPrices prices the student as the gateway's config would (a self-hosted
// model at its serving cost).
var fxPrices = pricing.New(map[string]pricing.Price{fxStudent: {Input: 0.02, Output: 0.08}})

type pagesFixture struct {
	dataDir string
	dataset *dataset.Built
	routed  []store.Record // calls to the route, client calls and their children
}

// seedPages fills dataDir and st with the pages' fixture; now is the
// dashboard's clock.
func seedPages(t testing.TB, st store.Store, dataDir string, now time.Time) *pagesFixture {
	t.Helper()
	ctx := context.Background()
	f := &pagesFixture{dataDir: dataDir}

	// Dataset: a file of tickets with planted faults, built by the real pipeline.
	triage := func(user, answer string) string {
		b, _ := json.Marshal(map[string]any{"messages": []any{
			map[string]any{"role": "system", "content": "Triage the ticket. Answer JSON: category, priority, sentiment."},
			map[string]any{"role": "user", "content": user},
			map[string]any{"role": "assistant", "content": answer},
		}})
		return string(b)
	}
	var lines []string
	lines = append(lines, triage(xssText+" my invoice is wrong", `{"category":"billing","priority":"high","sentiment":"negative"}`))
	for i, tk := range fixtureTickets {
		for j := range 3 {
			// Lengths vary like real tickets: some customers write a lot.
			lines = append(lines, triage(fmt.Sprintf("%s (ticket %d-%d)", strings.Repeat(tk+" ", 1+i*j*j), i, j), fmt.Sprintf(`{"category":"c%d","priority":"p%d","sentiment":"neutral"}`, i, j)))
		}
	}
	lines = append(lines,
		triage(fixtureTickets[0]+"  (ticket 0-0)", `{"category":"c0","priority":"p0","sentiment":"neutral"}`), // exact duplicate
		triage("Where is my parcel?", `Sure! Here is the triage: {"category":"shipping"`),                     // broken JSON
		triage("Please call me back at +44 20 7946 0958.", `{"category":"account","priority":"low","sentiment":"neutral"}`),
		triage("Cancel my plan.", ""), // empty answer
	)
	src := filepath.Join(t.TempDir(), "tickets.jsonl")
	if err := os.WriteFile(src, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := &dataset.Spec{Name: fxDataset, Sources: []dataset.SourceSpec{{File: src}}, Validate: dataset.ValidateSpec{JSON: true}, Sample: 3}
	built, err := dataset.Build(ctx, spec, dataset.BuildOptions{DataDir: dataDir, Now: func() time.Time { return now.Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatalf("build the fixture dataset: %v", err)
	}
	f.dataset = built

	// Training: a finished LoRA job and one still running.
	curve := func(steps, every int, from, to float64) []train.Point {
		var ps []train.Point
		for s := every; s <= steps; s += every {
			x := float64(s) / float64(steps)
			ps = append(ps, train.Point{Step: s, Loss: to + (from-to)*(1-x)*(1-x) + 0.03*float64(s%3)})
		}
		return ps
	}
	// The adapter's shape is set field by field: the LoRA type is the train
	// package's to move.
	doneCfg := train.Config{Base: "tiny-llama-" + xssText, Data: built.Dir + "/train.jsonl", Out: filepath.Join(dataDir, "jobs", fxStudent+"-adapter"),
		Epochs: 3, EvalEvery: 20, PricePerHour: 2.5}
	doneCfg.LoRA.Rank, doneCfg.LoRA.Alpha = 8, 16
	doneCfg = doneCfg.Defaults()
	done := &train.Job{ID: fxJob, Status: train.StatusSucceeded,
		Config:  doneCfg,
		Created: now.Add(-90 * time.Minute), Updated: now.Add(-80 * time.Minute), Step: 120, Steps: 120,
		Train: curve(120, 1, 2.9, 0.6), Val: curve(120, 20, 2.8, 0.75), TrainExamples: 12, ValExamples: 2, Tokens: 48_000,
		Device: "cpu", DeviceSeconds: 2520, TokensPerSecond: 19, Cost: fxTrainUSD,
		Artifacts: map[string]string{"adapter": filepath.Join(dataDir, "jobs", fxStudent+"-adapter"), "job": filepath.Join(dataDir, "jobs", fxStudent+"-adapter", "job.json")}}
	// The curation ablation's student, trained later on every raw row: not
	// the deployed student, so not what the break-even charges.
	ablation := *done
	ablation.ID, ablation.Created, ablation.Cost = "support-lora-raw", done.Created.Add(20*time.Minute), 0.9
	ablation.Config.Out = filepath.Join(dataDir, "jobs", fxStudent+"-raw-adapter")
	live := &train.Job{ID: fxJobLive, Status: train.StatusRunning,
		Config:  train.Config{Base: "tiny-llama", Out: filepath.Join(dataDir, "jobs", fxJobLive), EvalEvery: 10}.Defaults(),
		Created: now.Add(-5 * time.Minute), Updated: now, Step: 30, Steps: 200, Train: curve(30, 1, 3, 2), Val: curve(30, 10, 3, 2.2), Device: "cpu", DeviceSeconds: 300}
	for _, j := range []*train.Job{done, &ablation, live} {
		if err := os.MkdirAll(j.Config.Out, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := (train.DirStore{Dir: j.Config.Out}).SaveJob(ctx, j); err != nil {
			t.Fatalf("save fixture job: %v", err)
		}
	}

	// Eval: teacher against student, with a judge.
	ref := `{"category":"billing","priority":"high","sentiment":"negative"}`
	sum := &eval.Summary{ID: fxEval, Updated: now.Add(-30 * time.Minute), Data: fxDataset + "@" + built.Manifest.Short(), Examples: 40,
		Reference: fxTeacher, Judge: "gpt-4o-judge", Seed: 1, Resamples: 1000,
		Candidates: []eval.CandidateSummary{
			{Name: fxTeacher, Requests: 40, ExactMatch: eval.Stat{Mean: 0.62, Lo: 0.47, Hi: 0.77, N: 40}, RougeL: eval.Stat{Mean: 0.81, Lo: 0.74, Hi: 0.88, N: 40},
				JSONValid: &eval.Stat{Mean: 0.85, Lo: 0.72, Hi: 0.95, N: 40}, FieldAccuracy: &eval.Stat{Mean: 0.78, Lo: 0.69, Hi: 0.86, N: 40},
				LatencyP50MS: 1400, LatencyP95MS: 2900, CostUSD: 0.2, CostPer1K: eval.Stat{Mean: 5.1, Lo: 4.6, Hi: 5.6, N: 40}},
			{Name: fxStudent, Requests: 40, Errors: 1, ExactMatch: eval.Stat{Mean: 0.80, Lo: 0.67, Hi: 0.92, N: 40}, RougeL: eval.Stat{Mean: 0.90, Lo: 0.85, Hi: 0.95, N: 40},
				JSONValid: &eval.Stat{Mean: 0.97, Lo: 0.92, Hi: 1, N: 40}, FieldAccuracy: &eval.Stat{Mean: 0.91, Lo: 0.85, Hi: 0.96, N: 40},
				WinRate: &eval.Stat{Mean: 0.64, Lo: 0.52, Hi: 0.76, N: 40}, Tally: &eval.WinTally{Wins: 22, Losses: 11, Ties: 7, Inconsistent: 3},
				LatencyP50MS: 180, LatencyP95MS: 420, CostUSD: 0.004, CostPer1K: eval.Stat{Mean: 0.1, Lo: 0.09, Hi: 0.11, N: 40}},
		},
		Samples: []eval.Sample{
			{Example: "ex01", Prompt: "I was charged twice for March.", Reference: ref, Answers: map[string]string{fxTeacher: "Sure! " + ref, fxStudent: ref}},
			{Example: "ex02", Prompt: xssText, Reference: `{"category":"other"}`, Answers: map[string]string{fxTeacher: `{"category":"other"}`, fxStudent: "error: upstream timed out"}},
		}}
	if err := os.MkdirAll(filepath.Join(dataDir, "evals", fxEval), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := eval.WriteDir(filepath.Join(dataDir, "evals", fxEval), sum); err != nil {
		t.Fatalf("write fixture eval: %v", err)
	}

	// Routes: a canary ramped up, then rolled back automatically.
	policy := func(teacherW, studentW int) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"arms":[{"name":"teacher","model":%q,"weight":%d},{"name":"student","model":%q,"weight":%d}],"rollback":{"min_feedback":0.6}}`, fxTeacher, teacherW, fxStudent, studentW))
	}
	versions := []store.RouteVersion{
		{Name: fxRoute, Version: 1, Policy: policy(90, 10), Actor: "quickstart", Comment: "canary the student", CreatedAt: now.Add(-20 * time.Hour)},
		{Name: fxRoute, Version: 2, Policy: policy(50, 50), Actor: "alice", Comment: "ramp up " + xssText, CreatedAt: now.Add(-8 * time.Hour)},
		{Name: fxRoute, Version: 3, Policy: policy(90, 10), Actor: "auto-rollback", Comment: "student feedback 0.41 below 0.6 over 40 calls: back to v1", CreatedAt: now.Add(-3 * time.Hour)},
		{Name: "embeddings", Version: 1, Policy: json.RawMessage(`{"arms":[{"model":"text-embedding-3-small"}]}`), Actor: "api", CreatedAt: now.Add(-30 * time.Hour)},
	}
	for _, rv := range versions {
		if err := st.PutRoute(ctx, rv); err != nil {
			t.Fatalf("put fixture route: %v", err)
		}
	}
	// Routed calls: the split follows the version live at the time; a few
	// student answers escalated to the teacher (a child record each).
	var recs []store.Record
	for i := range 160 {
		at := now.Add(-time.Minute - time.Duration(i)*7*time.Minute)
		version, studentShare := 3, 10
		switch {
		case at.Before(versions[1].CreatedAt):
			version = 1
		case at.Before(versions[2].CreatedAt):
			version, studentShare = 2, 50
		}
		arm, m := "teacher", fixtureModel{route: fxRoute, provider: "openai", model: fxTeacher, inPrice: 2.5, outPrice: 10, latency: 1500 * time.Millisecond}
		if i*37%100 < studentShare {
			arm, m = "student", fixtureModel{route: fxRoute, provider: "engine", model: fxStudent, latency: 150 * time.Millisecond}
		}
		r := chatRecord(fmt.Sprintf("req_route_%03d", i), at, m, fixtureTickets[i%len(fixtureTickets)], nil)
		r.Metadata = map[string]string{"route": fxRoute, "route.version": strconv.Itoa(version), "route.arm": arm}
		if arm == "student" && i%4 == 0 {
			child := r
			child.ID += "_candidate"
			child.ParentID = r.ID
			child.Metadata = map[string]string{"route": fxRoute, "route.version": strconv.Itoa(version), "route.arm": arm, "route.escalated": "true"}
			r.Model, r.Provider = fxTeacher, "openai"
			r.Metadata["route.escalated"] = "true"
			recs = append(recs, child)
		}
		recs = append(recs, r)
	}
	if err := st.InsertRecords(ctx, recs); err != nil {
		t.Fatalf("insert routed calls: %v", err)
	}
	f.routed = recs
	return f
}

// routeCounts are what the route page should show for the last 24 hours.
func (f *pagesFixture) routeCounts(now time.Time) (perArm map[string]int, escalations int) {
	perArm = map[string]int{}
	for _, r := range f.routed {
		if r.ParentID != "" || r.CreatedAt.Before(now.Add(-24*time.Hour)) {
			continue
		}
		perArm[r.Metadata["route.arm"]]++
		if r.Metadata["route.escalated"] == "true" {
			escalations++
		}
	}
	return perArm, escalations
}
