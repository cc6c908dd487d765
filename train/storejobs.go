package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/foundryhq/foundry/store"
)

// JobKind is the kind of a training job in the store's jobs table.
const JobKind = "train"

// StoreJobs keeps job records in a store's jobs table, where the jobs API
// and the dashboard read them.
type StoreJobs struct{ Store store.Store }

// SaveJob upserts the job as kind "train", its whole record as JSON.
func (s StoreJobs) SaveJob(ctx context.Context, job *Job) error {
	b, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("save job %s: %w", job.ID, err)
	}
	return s.Store.SaveJob(ctx, store.Job{ID: job.ID, Kind: JobKind, Status: job.Status,
		Created: job.Created, Updated: job.Updated, Record: b})
}

// Job reads a job back; the error wraps store.ErrNotFound when there is none.
func (s StoreJobs) Job(ctx context.Context, id string) (*Job, error) {
	sj, err := s.Store.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	return DecodeJob(sj)
}

// DecodeJob decodes a stored job's record.
func DecodeJob(sj store.Job) (*Job, error) {
	var j Job
	if err := json.Unmarshal(sj.Record, &j); err != nil {
		return nil, fmt.Errorf("job %s: the stored record is not a training job: %w", sj.ID, err)
	}
	if j.ID == "" {
		j.ID = sj.ID
	}
	return &j, nil
}

// MultiStore saves a job to every store in it, so that one failing store
// does not keep the record from the others; the errors are joined.
type MultiStore []JobStore

// SaveJob saves to each store in turn.
func (m MultiStore) SaveJob(ctx context.Context, job *Job) error {
	var errs []error
	for _, s := range m {
		if err := s.SaveJob(ctx, job); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
