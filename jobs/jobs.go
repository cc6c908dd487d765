// Package jobs runs training jobs inside the gateway and serves their
// management API. A job is a train.Config submitted over HTTP; it waits
// "queued" for a free runner (one at a time by default), trains in a
// goroutine through train.Run, and is recorded in the store's jobs table and
// in job.json in its output directory, as `foundry train` records its runs.
//
// Cancelling a job, or stopping the gateway, cancels its run: it ends
// "interrupted" with a checkpoint, and POST /api/v1/jobs/{id}/resume
// continues it. Jobs the store still shows as running or queued when a
// gateway starts (it was killed) are marked interrupted, never left hanging.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/foundryhq/foundry/hub"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/train"
)

// Options configure a Runner.
type Options struct {
	Store store.Store // required: where jobs are recorded
	// DataDir holds each job's default output directory, DataDir/jobs/<id>
	// (where the dashboard looks for job.json); "" is ./foundry-data.
	DataDir string
	// Concurrency is how many jobs train at once; 0 means 1. Training takes
	// a whole device (or every CPU core), so more rarely helps.
	Concurrency int
	Logger      *slog.Logger // nil: slog.Default()
}

// Runner queues and runs training jobs. Create it with New, then Start it.
type Runner struct {
	opts  Options
	jobs  train.StoreJobs
	log   *slog.Logger
	slots chan struct{} // one token per job training now

	mu     sync.Mutex
	active map[string]activeJob // queued or running here, by id
	ctx    context.Context      // parent of every job's context; cancelled by Close
	stop   context.CancelFunc
	closed bool
	wg     sync.WaitGroup
}

// New returns a runner over opts.Store.
func New(opts Options) *Runner {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Runner{opts: opts, jobs: train.StoreJobs{Store: opts.Store}, log: opts.Logger,
		slots: make(chan struct{}, opts.Concurrency), active: map[string]activeJob{}, ctx: ctx, stop: stop}
}

type activeJob struct {
	cancel context.CancelFunc
	out    string // two jobs must not write one directory
}

// Start marks the jobs that a previous gateway left running or queued (it
// stopped without saving them) as interrupted, so none is silently lost.
//
// With several gateway replicas on one Postgres store this also marks the
// jobs other live replicas are running: run jobs on one replica.
func (r *Runner) Start(ctx context.Context) error {
	stale, err := r.opts.Store.ListJobs(ctx, store.JobQuery{Kind: train.JobKind,
		Status: []string{train.StatusRunning, train.StatusQueued}, Limit: 1000})
	if err != nil {
		return fmt.Errorf("jobs: find jobs left running: %w", err)
	}
	for _, sj := range stale {
		j, err := train.DecodeJob(sj)
		if err != nil {
			r.log.Warn("jobs: unreadable record left running", "job", sj.ID, "err", err)
			continue
		}
		if j.Runner != runnerName {
			continue // foundry train's: its own process saves it
		}
		was := j.Status
		j.Status, j.Updated = train.StatusInterrupted, time.Now().UTC()
		j.Error = fmt.Sprintf("the gateway stopped while the job was %s; POST /api/v1/jobs/%s/resume continues it", was, j.ID)
		// job.json is rewritten where it still exists; a directory that is gone stays gone.
		ss := train.MultiStore{r.jobs}
		if _, err := os.Stat(filepath.Join(j.Config.Out, "job.json")); err == nil && j.Config.Out != "" {
			ss = append(ss, train.DirStore{Dir: j.Config.Out})
		}
		if err := ss.SaveJob(ctx, j); err != nil {
			return fmt.Errorf("jobs: mark job %s interrupted: %w", j.ID, err)
		}
		r.log.Warn("jobs: a job was left unfinished by the last gateway; marked interrupted", "job", j.ID, "was", was)
	}
	return nil
}

// runnerName marks the jobs this package runs (train.Job.Runner).
const runnerName = "gateway"

// ownJobs stamps every record it saves as the gateway's.
type ownJobs struct{ train.JobStore }

func (o ownJobs) SaveJob(ctx context.Context, j *train.Job) error {
	j.Runner = runnerName
	return o.JobStore.SaveJob(ctx, j)
}

// Close cancels every job, queued and running, and waits until each has
// saved its record (running ones end interrupted with a checkpoint) or ctx
// ends.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.stop()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jobs: training jobs still stopping: %w", ctx.Err())
	}
}

// ErrClosed is returned for a submission after Close.
var ErrClosed = errors.New("jobs: the runner is stopping")

// Submit records cfg as a new queued job and starts it when a runner is
// free. cfg must have passed Check. It returns the queued record.
func (r *Runner) Submit(ctx context.Context, cfg train.Config) (*train.Job, error) {
	id := newID()
	if cfg.Out == "" {
		cfg.Out = filepath.Join(r.dataDir(), "jobs", id)
	}
	now := time.Now().UTC()
	j := &train.Job{ID: id, Status: train.StatusQueued, Config: cfg, Created: now, Updated: now,
		Artifacts: map[string]string{"job": filepath.Join(cfg.Out, "job.json")}}
	return j, r.enqueue(ctx, j, false)
}

// Resume queues an interrupted (or failed) job again; its run continues
// from its checkpoint when it has one.
func (r *Runner) Resume(ctx context.Context, id string) (*train.Job, error) {
	j, err := r.jobs.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.Status != train.StatusInterrupted && j.Status != train.StatusFailed {
		return nil, fmt.Errorf("job %s is %s: only an interrupted or failed job can be resumed: %w", id, j.Status, errState)
	}
	j.Status, j.Error, j.Updated = train.StatusQueued, "", time.Now().UTC()
	return j, r.enqueue(ctx, j, true)
}

// errState is wrapped by the error for an action the job's status does not allow.
var errState = errors.New("not in a state for that")

func (r *Runner) enqueue(ctx context.Context, j *train.Job, resume bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if _, ok := r.active[j.ID]; ok {
		return fmt.Errorf("job %s is already queued or running: %w", j.ID, errState)
	}
	out := filepath.Clean(j.Config.Out)
	for id, a := range r.active {
		if a.out == out {
			return fmt.Errorf("job %s, queued or running, already writes to %s; give another out: %w", id, j.Config.Out, errState)
		}
	}
	if err := r.save(ctx, j); err != nil {
		return fmt.Errorf("jobs: record job %s: %w", j.ID, err)
	}
	jctx, cancel := context.WithCancel(r.ctx)
	r.active[j.ID] = activeJob{cancel: cancel, out: out}
	r.wg.Add(1)
	go r.run(jctx, j, resume)
	return nil
}

// Cancel cancels a queued or running job: a queued one ends interrupted at
// once, a running one at its next step, with a checkpoint. The error wraps
// store.ErrNotFound for an unknown job, and errState for one that is not
// queued or running here.
func (r *Runner) Cancel(ctx context.Context, id string) (*train.Job, error) {
	j, err := r.jobs.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	a, ok := r.active[id]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("job %s is %s, not queued or running on this gateway: %w", id, j.Status, errState)
	}
	a.cancel()
	return j, nil
}

// run waits for a free slot, then trains j.
func (r *Runner) run(ctx context.Context, j *train.Job, resume bool) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		r.active[j.ID].cancel()
		delete(r.active, j.ID)
		r.mu.Unlock()
	}()
	log := r.log.With("job", j.ID)
	defer func() {
		// A bug in one job must not take the gateway down with it.
		if p := recover(); p != nil {
			log.Error("jobs: training panicked", "panic", p)
			r.end(j, train.StatusFailed, fmt.Sprintf("training panicked: %v", p))
		}
	}()
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		r.end(j, train.StatusInterrupted, "cancelled while queued, before it started")
		log.Info("jobs: cancelled while queued")
		return
	}
	defer func() { <-r.slots }()
	if ctx.Err() != nil { // cancelled as the slot came free
		r.end(j, train.StatusInterrupted, "cancelled while queued, before it started")
		return
	}
	cfg := j.Config
	if _, err := os.Stat(cfg.Base); err != nil {
		repo, rev, _ := hub.ParseRepoRef(cfg.Base) // Check has vetted it
		dir, err := hub.Snapshot(ctx, repo, rev)
		if err != nil {
			r.end(j, statusFor(ctx), fmt.Sprintf("get base model %s: %v", cfg.Base, err))
			return
		}
		cfg.Base = dir
	}
	log.Info("jobs: training", "out", cfg.Out, "resume", resume)
	store := ownJobs{train.MultiStore{train.DirStore{Dir: cfg.Out}, r.jobs}}
	done, err := train.Run(ctx, cfg, train.Options{Logger: log, Store: store, ID: j.ID, Created: j.Created, Resume: resume})
	switch {
	case done == nil && err != nil: // refused before it had a record
		r.end(j, statusFor(ctx), err.Error())
		log.Warn("jobs: training did not start", "err", err)
	case err != nil:
		log.Warn("jobs: training ended", "status", done.Status, "err", err)
	default:
		log.Info("jobs: training ended", "status", done.Status, "steps", done.Step)
	}
}

func statusFor(ctx context.Context) string {
	if ctx.Err() != nil {
		return train.StatusInterrupted
	}
	return train.StatusFailed
}

// end saves j with a final status when train.Run did not.
func (r *Runner) end(j *train.Job, status, msg string) {
	j.Status, j.Error, j.Updated = status, msg, time.Now().UTC()
	if err := r.save(context.Background(), j); err != nil {
		r.log.Error("jobs: save job record", "job", j.ID, "err", err)
	}
}

// save records j in the store and, where its output directory exists or
// can be made, in job.json, as train.Run does.
func (r *Runner) save(ctx context.Context, j *train.Job) error {
	var ss train.MultiStore
	if j.Config.Out != "" && os.MkdirAll(j.Config.Out, 0o755) == nil {
		ss = append(ss, train.DirStore{Dir: j.Config.Out})
	}
	return ownJobs{append(ss, r.jobs)}.SaveJob(context.WithoutCancel(ctx), j)
}

func (r *Runner) dataDir() string {
	if r.opts.DataDir == "" {
		return "./foundry-data" // dataset.DefaultDataDir, the CLI's default
	}
	return r.opts.DataDir
}

// newID returns a job id such as "job-4f1c2a9be07d".
func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "job-" + hex.EncodeToString(b[:])
}
