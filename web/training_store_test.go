package web

import (
	"strings"
	"testing"
	"time"

	"github.com/foundryhq/foundry/train"
)

// TestTrainingPagesShowStoreJobs: jobs in the store's jobs table (the jobs
// API's, foundry train --db's) list beside the job.json ones, once per ID,
// the copy updated last winning.
func TestTrainingPagesShowStoreJobs(t *testing.T) {
	d := newDash(t, dashOpts{pages: true})
	jobs := train.StoreJobs{Store: d.st}
	queued := &train.Job{ID: "job-api-1", Status: train.StatusQueued, Config: train.Config{Base: "tiny-base", Out: "/data/jobs/job-api-1"}.Defaults(),
		Created: d.now, Updated: d.now, Steps: 0}
	later := &train.Job{ID: fxJobLive, Status: train.StatusRunning, Config: train.Config{Base: "tiny-llama", EvalEvery: 10}.Defaults(),
		Created: d.now.Add(-5 * time.Minute), Updated: d.now.Add(time.Minute), Step: 40, Steps: 200,
		Train: []train.Point{{Step: 40, Loss: 1.5}}, PeakMemoryBytes: 3 << 29, MemoryKind: train.MemoryProcessRSS}
	for _, j := range []*train.Job{queued, later} {
		if err := jobs.SaveJob(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	}
	list := d.page("/ui/training")
	mustContain(t, "jobs list", list, `href="/ui/training/job-api-1"`, `<span class="status warn">queued</span>`, "40 / 200")
	if n := strings.Count(list, `<a href="/ui/training/`+fxJobLive+`"`); n != 1 {
		t.Errorf("the job in both job.json and the store is listed %d times", n)
	}
	if strings.Index(list, "job-api-1") > strings.Index(list, fxJobLive) {
		t.Error("the store's newer job is not listed first")
	}
	page := d.page("/ui/training/" + fxJobLive)
	mustContain(t, "job page from the store", page, "40 / 200", "peak 1.5 GiB host memory (process RSS)")
	queuedPage := d.page("/ui/training/job-api-1")
	mustContain(t, "queued job page", queuedPage, `hx-trigger="every 3s"`, "tiny-base")
}
