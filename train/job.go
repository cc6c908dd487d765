package train

import (
	"context"
	"encoding/json"
	"path/filepath"
	"time"

	"github.com/foundryhq/foundry/internal/atomicfile"
)

// Job statuses.
const (
	StatusQueued       = "queued" // submitted to the jobs API, waiting for a free runner
	StatusRunning      = "running"
	StatusSucceeded    = "succeeded"
	StatusStoppedEarly = "stopped_early" // early stopping: validation loss stopped improving
	StatusInterrupted  = "interrupted"   // cancelled or stopped after Options.StopAfter; resumable
	StatusFailed       = "failed"
)

// Job is the record of one training run: what it was asked, how it went
// and what it made. It is saved after every evaluation and at the end.
type Job struct {
	ID      string    `json:"id"`
	Status  string    `json:"status"`
	Error   string    `json:"error,omitempty"`
	Config  Config    `json:"config"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`

	Step int `json:"step"` // optimizer steps done
	// ResumedFrom is the checkpoint step this run continued from (0: a fresh start).
	ResumedFrom int `json:"resumed_from,omitempty"`
	Steps       int `json:"steps"` // planned
	// Train holds the training loss of every optimizer step; Val the
	// validation loss at every evaluation.
	Train []Point `json:"train_loss"`
	Val   []Point `json:"val_loss"`

	TrainExamples int   `json:"train_examples"`
	ValExamples   int   `json:"val_examples"`
	Truncated     int   `json:"truncated"`
	Dropped       int   `json:"dropped"`
	Tokens        int64 `json:"tokens"` // tokens processed (inputs, padding excluded)

	Device          string  `json:"device"`
	DeviceSeconds   float64 `json:"device_seconds"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	Cost            float64 `json:"cost_usd"` // DeviceSeconds at Config.PricePerHour
	// PeakMemoryBytes is the most memory seen at a step, of the kind
	// MemoryKind names (MemoryProcessRSS or MemoryGoRuntime: host memory,
	// also on XLA, where GoMLX does not expose the device's).
	PeakMemoryBytes int64  `json:"peak_memory_bytes,omitempty"`
	MemoryKind      string `json:"memory_kind,omitempty"`

	// Runner is what runs the job: "gateway" for the jobs API's, "" for
	// foundry train's. A gateway restarting marks only its own unfinished
	// jobs interrupted, never a CLI run still training.
	Runner string `json:"runner,omitempty"`

	// Artifacts maps a kind ("adapter", "model", "checkpoint", "job") to its path.
	Artifacts map[string]string `json:"artifacts"`
}

// Point is one value of a loss curve.
type Point struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`
}

// JobStore persists job records. DirStore writes job.json; StoreJobs writes
// the store's jobs table; MultiStore does several.
type JobStore interface {
	SaveJob(ctx context.Context, job *Job) error
}

// DirStore keeps a job as Dir/job.json.
type DirStore struct{ Dir string }

// SaveJob writes the job atomically.
func (s DirStore) SaveJob(_ context.Context, job *Job) error {
	b, err := json.MarshalIndent(job, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(s.Dir, "job.json"), append(b, '\n'))
}
