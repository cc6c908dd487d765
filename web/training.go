package web

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/foundryhq/foundry/store"
)

// trainJob is the job.json a training run writes into its output directory
// (train.Job). It is decoded here rather than imported so that the dashboard
// does not link the training package's ML runtime; web's tests write it with
// train.DirStore to keep the two in step.
type trainJob struct {
	ID      string          `json:"id"`
	Status  string          `json:"status"`
	Error   string          `json:"error"`
	Config  json.RawMessage `json:"config"`
	Created time.Time       `json:"created"`
	Updated time.Time       `json:"updated"`

	Step        int         `json:"step"`
	ResumedFrom int         `json:"resumed_from"`
	Steps       int         `json:"steps"`
	Train       []lossPoint `json:"train_loss"`
	Val         []lossPoint `json:"val_loss"`

	TrainExamples int   `json:"train_examples"`
	ValExamples   int   `json:"val_examples"`
	Truncated     int   `json:"truncated"`
	Dropped       int   `json:"dropped"`
	Tokens        int64 `json:"tokens"`

	Device          string            `json:"device"`
	DeviceSeconds   float64           `json:"device_seconds"`
	TokensPerSecond float64           `json:"tokens_per_second"`
	Cost            float64           `json:"cost_usd"`
	PeakMemoryBytes int64             `json:"peak_memory_bytes"`
	MemoryKind      string            `json:"memory_kind"`
	Artifacts       map[string]string `json:"artifacts"`

	// From Config, for the list and the break-even.
	Base         string  `json:"-"`
	Rank         int     `json:"-"`
	Full         bool    `json:"-"`
	PricePerHour float64 `json:"-"`
	Dir          string  `json:"-"`
}

type lossPoint struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`
}

// jobsDepth is how deep below the data dir job.json files are looked for
// (DATA/jobs/NAME/job.json is two directories down).
const jobsDepth = 3

// listJobs finds every job.json under dir, newest first. Dataset and eval
// directories and checkpoints are skipped: they hold no jobs. A job.json that
// does not read as a job is reported in unreadable, not fatal: one damaged
// file must not hide every other job.
func listJobs(dir string) (jobs []*trainJob, unreadable []string, err error) {
	root := filepath.Clean(dir)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return fs.SkipAll
			}
			return err
		}
		rel, _ := filepath.Rel(root, path)
		depth := strings.Count(rel, string(filepath.Separator)) + 1
		if d.IsDir() {
			switch {
			case path == root:
				return nil
			case depth == 1 && (d.Name() == "datasets" || d.Name() == "evals"),
				d.Name() == "checkpoint", strings.HasPrefix(d.Name(), "."), depth > jobsDepth:
				return fs.SkipDir
			}
			return nil
		}
		if d.Name() != "job.json" || depth < 2 {
			return nil
		}
		j, err := readJob(path)
		if err != nil {
			unreadable = append(unreadable, err.Error())
			return nil
		}
		jobs = append(jobs, j)
		return nil
	})
	slices.SortFunc(jobs, func(a, b *trainJob) int {
		return cmp.Or(b.Created.Compare(a.Created), strings.Compare(a.ID, b.ID))
	})
	return jobs, unreadable, err
}

func readJob(path string) (*trainJob, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	j, err := decodeJob(b)
	if err != nil {
		return nil, fmt.Errorf("%s is not a training job's record: %v (foundry train rewrites it at every evaluation)", path, err)
	}
	j.Dir = filepath.Dir(path)
	if j.ID == "" {
		j.ID = filepath.Base(j.Dir)
	}
	return j, nil
}

// decodeJob reads a job record, from job.json or the store's jobs table.
func decodeJob(b []byte) (*trainJob, error) {
	var j trainJob
	if err := json.Unmarshal(b, &j); err != nil || j.Status == "" {
		if err == nil {
			err = errors.New("it has no status")
		}
		return nil, err
	}
	var cfg struct {
		Base         string  `json:"base"`
		Out          string  `json:"out"`
		Full         bool    `json:"full"`
		PricePerHour float64 `json:"price_per_hour"`
		LoRA         struct {
			Rank int
		} `json:"lora"`
	}
	_ = json.Unmarshal(j.Config, &cfg)
	j.Base, j.Rank, j.Full, j.PricePerHour, j.Dir = cfg.Base, cfg.LoRA.Rank, cfg.Full, cfg.PricePerHour, cfg.Out
	return &j, nil
}

// storeJobsLimit bounds how many of the store's jobs the pages read.
const storeJobsLimit = 1000

// allJobs is listJobs merged with the training jobs in the store (those of
// the jobs API and of foundry train --db), one per ID: the copy updated
// last wins, so a job.json and its store row never show twice.
func (h *Handler) allJobs(ctx context.Context) (jobs []*trainJob, unreadable []string, err error) {
	jobs, unreadable, err = listJobs(h.opts.DataDir)
	if err != nil || h.st == nil {
		return jobs, unreadable, err
	}
	sjs, err := h.st.ListJobs(ctx, store.JobQuery{Kind: "train", Limit: storeJobsLimit})
	if err != nil {
		return jobs, unreadable, fmt.Errorf("list the store's training jobs: %w", err)
	}
	at := map[string]int{}
	for i, j := range jobs {
		at[j.ID] = i
	}
	for _, sj := range sjs {
		j, err := decodeJob(sj.Record)
		if err != nil {
			unreadable = append(unreadable, fmt.Sprintf("training job %s in the store: %v", sj.ID, err))
			continue
		}
		if j.ID == "" {
			j.ID = sj.ID
		}
		if i, ok := at[j.ID]; ok {
			if j.Updated.After(jobs[i].Updated) {
				if j.Dir == "" {
					j.Dir = jobs[i].Dir
				}
				jobs[i] = j
			}
			continue
		}
		at[j.ID] = len(jobs)
		jobs = append(jobs, j)
	}
	slices.SortFunc(jobs, func(a, b *trainJob) int {
		return cmp.Or(b.Created.Compare(a.Created), strings.Compare(a.ID, b.ID))
	})
	return jobs, unreadable, nil
}

func jobHref(j *trainJob) string { return "/ui/training/" + url.PathEscape(j.ID) }

// Running reports whether the job is still training or waiting to (its page polls).
func (j *trainJob) Running() bool { return j.Status == "running" || j.Status == "queued" }

// PeakMemory describes the most memory the run used, "" when unrecorded.
func (j *trainJob) PeakMemory() string {
	if j.PeakMemoryBytes <= 0 {
		return ""
	}
	n, unit := float64(j.PeakMemoryBytes), "B"
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if n < 1024 {
			break
		}
		n, unit = n/1024, u
	}
	kind := "host memory"
	if j.MemoryKind == "process_rss" {
		kind = "host memory (process RSS)"
	}
	return fmt.Sprintf("%.1f %s %s", n, unit, kind)
}

// StatusClass is the pill colour of the job's status.
func (j *trainJob) StatusClass() string {
	switch j.Status {
	case "succeeded", "stopped_early":
		return "ok"
	case "running", "queued", "interrupted":
		return "warn"
	case "failed":
		return "err"
	}
	return "unknown"
}

// Progress is the fraction of planned steps done.
func (j *trainJob) Progress() float64 {
	if j.Steps == 0 {
		return 0
	}
	return min(1, float64(j.Step)/float64(j.Steps))
}

// LastTrain and BestVal are the loss numbers of the job's header.
func (j *trainJob) LastTrain() *float64 {
	if len(j.Train) == 0 {
		return nil
	}
	return &j.Train[len(j.Train)-1].Loss
}

func (j *trainJob) BestVal() *float64 {
	if len(j.Val) == 0 {
		return nil
	}
	best := j.Val[0].Loss
	for _, p := range j.Val {
		best = min(best, p.Loss)
	}
	return &best
}

type jobsPage struct {
	Dir        string
	Jobs       []jobRow
	Unreadable []string
}

// AnyRunning says the list polls: a running job's numbers change.
func (p jobsPage) AnyRunning() bool {
	for _, j := range p.Jobs {
		if j.Running() {
			return true
		}
	}
	return false
}

type jobRow struct {
	*trainJob
	Href string
}

func (h *Handler) handleJobs(w http.ResponseWriter, r *http.Request) {
	jobs, unreadable, err := h.allJobs(r.Context())
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "List training jobs under "+h.opts.DataDir+": the directory could not be read.", err)
		return
	}
	p := jobsPage{Dir: h.opts.DataDir, Unreadable: unreadable}
	for _, j := range jobs {
		p.Jobs = append(p.Jobs, jobRow{j, jobHref(j)})
	}
	h.render(w, r, http.StatusOK, "training", "Training", "Training", p)
}

// jobPage is one job: loss curves, numbers, config and artifacts.
type jobPage struct {
	Job       *trainJob
	Href      string
	Config    []keyValue
	Artifacts []keyValue
	Loss      lossChart
	DataHref  string // the dataset version trained on, when it is stored here
	DataRef   string
}

// lossChart is the job's loss curves on one step axis, as app.js draws them
// (val is null between evaluations).
type lossChart struct {
	Steps []int      `json:"steps"`
	Train []*float64 `json:"train"`
	Val   []*float64 `json:"val"`
}

func (j *trainJob) lossChart() lossChart {
	at := map[int]int{}
	var steps []int
	for _, ps := range [][]lossPoint{j.Train, j.Val} {
		for _, p := range ps {
			if _, ok := at[p.Step]; !ok {
				at[p.Step] = 0
				steps = append(steps, p.Step)
			}
		}
	}
	slices.Sort(steps)
	c := lossChart{Steps: steps, Train: make([]*float64, len(steps)), Val: make([]*float64, len(steps))}
	for i, s := range steps {
		at[s] = i
	}
	for _, p := range j.Train {
		c.Train[at[p.Step]] = &p.Loss
	}
	for _, p := range j.Val {
		c.Val[at[p.Step]] = &p.Loss
	}
	if c.Steps == nil {
		c.Steps = []int{}
	}
	return c
}

func (h *Handler) findJob(ctx context.Context, id string) (*trainJob, error) {
	jobs, _, err := h.allJobs(ctx)
	for _, j := range jobs {
		if j.ID == id {
			return j, nil
		}
	}
	return nil, err
}

func (h *Handler) handleJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	j, err := h.findJob(r.Context(), id)
	if j == nil {
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, "List training jobs under "+h.opts.DataDir+": the directory could not be read.", err)
			return
		}
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("No training job %q under %s or in the store. A job appears once `foundry train` has written job.json to its --out directory there, or the jobs API (/api/v1/jobs) has queued it.", id, h.opts.DataDir), nil)
		return
	}
	p := jobPage{Job: j, Href: jobHref(j), Loss: j.lossChart()}
	p.Config = configValues(j.Config)
	for _, kv := range p.Config {
		if kv.Key == "data" {
			p.DataHref, p.DataRef = datasetLink(h.opts.DataDir, kv.Value)
		}
	}
	for k, v := range j.Artifacts {
		p.Artifacts = append(p.Artifacts, keyValue{k, v})
	}
	sortKeyValues(p.Artifacts)
	if isHTMX(r) {
		h.renderPart(w, r, "job", "job-live", p)
		return
	}
	h.render(w, r, http.StatusOK, "job", "Training", "Job "+j.ID, p)
}

// configValues flattens a job's config to "lora.Rank: 16" lines.
func configValues(raw json.RawMessage) []keyValue {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var out []keyValue
	for k, v := range m {
		var sub map[string]json.RawMessage
		if json.Unmarshal(v, &sub) == nil {
			for sk, sv := range sub {
				out = append(out, keyValue{k + "." + sk, compactJSON(sv)})
			}
			continue
		}
		out = append(out, keyValue{k, compactJSON(v)})
	}
	sortKeyValues(out)
	return out
}

func compactJSON(v json.RawMessage) string {
	if string(v) == "null" {
		return "—"
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}
