package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/hub"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/train"
)

// Mounter is where the management API is mounted: *gateway.Server is one.
type Mounter interface {
	Handle(pattern string, h http.Handler)
	AdminOnly(h http.HandlerFunc) http.HandlerFunc
}

// Mount registers the jobs API, admin only:
//
//	POST /api/v1/jobs                 submit a training job (body: Request); 201 with the queued job
//	GET  /api/v1/jobs                 jobs newest first, without loss curves (?status=running,queued&limit=50)
//	GET  /api/v1/jobs/{id}            one job: status, config, loss curves, device-seconds, cost, memory, artifacts
//	POST /api/v1/jobs/{id}/cancel     cancel a queued or running job; it ends "interrupted" (202)
//	POST /api/v1/jobs/{id}/resume     queue an interrupted or failed job again, from its checkpoint (202)
//
// A job's body is the train.Job record, as job.json holds it. Errors are
// OpenAI-style bodies: 400 for a bad config (param names the field), 404 for
// an unknown id, 409 for an action the job's status does not allow or an
// out directory another queued or running job writes to.
func (r *Runner) Mount(m Mounter) {
	m.Handle("POST /api/v1/jobs", m.AdminOnly(r.handleSubmit))
	m.Handle("GET /api/v1/jobs", m.AdminOnly(r.handleList))
	m.Handle("GET /api/v1/jobs/{id}", m.AdminOnly(r.handleGet))
	m.Handle("POST /api/v1/jobs/{id}/cancel", m.AdminOnly(r.handleCancel))
	m.Handle("POST /api/v1/jobs/{id}/resume", m.AdminOnly(r.handleResume))
}

// Request is the body of POST /api/v1/jobs: a train.Config in its JSON form
// (job.json's "config": base, data, val, val_fraction, out, epochs, lr,
// batch, ...), plus foundry train's flat LoRA names, which win over "lora"
// when given. Defaults are foundry train's: rank 16, alpha 2×rank, dropout
// 0.05, all seven projections, val_fraction 0.1 without val; out is
// DATA/jobs/<id>. Paths are on the gateway's machine.
type Request struct {
	train.Config
	Rank    int      `json:"rank,omitempty"`
	Alpha   float64  `json:"alpha,omitempty"`
	Dropout *float64 `json:"dropout,omitempty"`
	Targets string   `json:"targets,omitempty"` // "q,k,v,o,gate,up,down" or "all"
	RSLoRA  bool     `json:"rslora,omitempty"`
}

// Check turns a request body into the config a job will run, or an
// *api.Error (400) naming the field that is wrong and what to do.
func Check(body []byte) (train.Config, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return train.Config{}, api.BadRequest("", "submit job: the body must be a JSON training config such as "+
			`{"base": "MODEL_DIR", "data": "train.jsonl", "epochs": 2}: `+err.Error())
	}
	var present map[string]json.RawMessage
	_ = json.Unmarshal(body, &present)
	cfg := req.Config
	if req.Rank != 0 {
		cfg.LoRA.Rank = req.Rank
	}
	if req.Alpha != 0 {
		cfg.LoRA.Alpha = req.Alpha
	}
	if req.RSLoRA {
		cfg.LoRA.RSLoRA = true
	}
	switch {
	case req.Dropout != nil:
		cfg.LoRA.Dropout = *req.Dropout
	case cfg.LoRA.Dropout == 0:
		cfg.LoRA.Dropout = 0.05
	}
	if _, ok := present["val_fraction"]; !ok && cfg.Val == "" {
		cfg.ValFraction = 0.1
	}
	bad := func(param, format string, args ...any) (train.Config, error) {
		return train.Config{}, api.BadRequest(param, "submit job: "+fmt.Sprintf(format, args...))
	}
	if req.Targets != "" {
		t, err := train.ParseTargets(req.Targets)
		if err != nil {
			return bad("targets", "%v", err)
		}
		cfg.LoRA.Targets = t
	}
	switch {
	case cfg.Base == "":
		return bad("base", "give the base model: a directory on the gateway's machine (config.json, *.safetensors, tokenizer.json) or ORG/NAME from its hub cache")
	case cfg.Data == "":
		return bad("data", "give the training data: an OpenAI fine-tuning JSONL file on the gateway's machine")
	}
	if fi, err := os.Stat(cfg.Base); err == nil {
		if !fi.IsDir() {
			return bad("base", "%s is a file; give the model's directory", cfg.Base)
		}
		if _, err := os.Stat(filepath.Join(cfg.Base, "config.json")); err != nil {
			return bad("base", "%s has no config.json: is it a model directory?", cfg.Base)
		}
	} else if _, _, perr := hub.ParseRepoRef(cfg.Base); perr != nil {
		return bad("base", "%q is neither a model directory on the gateway's machine nor ORG/NAME", cfg.Base)
	}
	for _, f := range []struct{ param, path string }{{"data", cfg.Data}, {"val", cfg.Val}} {
		if f.path == "" {
			continue
		}
		if fi, err := os.Stat(f.path); err != nil || fi.IsDir() {
			return bad(f.param, "%s is not a readable file on the gateway's machine", f.path)
		}
	}
	check := cfg.Defaults()
	if check.Out == "" {
		check.Out = "DATA/jobs/ID" // Submit's default
	}
	if err := check.Validate(); err != nil {
		return bad("", "%s", strings.TrimPrefix(err.Error(), "train: "))
	}
	return cfg, nil
}

func (r *Runner) handleSubmit(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		api.WriteError(w, api.BadRequest("", "submit job: read the body: "+err.Error()))
		return
	}
	cfg, err := Check(body)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	j, err := r.Submit(req.Context(), cfg)
	if err != nil {
		r.writeError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, j)
}

// statuses are the values ?status= accepts.
var statuses = []string{train.StatusQueued, train.StatusRunning, train.StatusSucceeded, train.StatusStoppedEarly,
	train.StatusInterrupted, train.StatusFailed}

func (r *Runner) handleList(w http.ResponseWriter, req *http.Request) {
	q := store.JobQuery{Kind: train.JobKind}
	v := req.URL.Query()
	for _, s := range strings.Split(v.Get("status"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(statuses, s) {
			api.WriteError(w, api.BadRequest("status", fmt.Sprintf("list jobs: unknown status %q: use %s", s, strings.Join(statuses, ", "))))
			return
		}
		q.Status = append(q.Status, s)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			api.WriteError(w, api.BadRequest("limit", fmt.Sprintf("list jobs: limit %q: give a positive number (at most 1000)", s)))
			return
		}
		q.Limit = n
	}
	sjs, err := r.opts.Store.ListJobs(req.Context(), q)
	if err != nil {
		r.writeError(w, err)
		return
	}
	out := make([]*train.Job, 0, len(sjs))
	for _, sj := range sjs {
		j, err := train.DecodeJob(sj)
		if err != nil {
			r.log.Warn("jobs: unreadable record", "job", sj.ID, "err", err)
			continue
		}
		j.Train, j.Val = nil, nil // lists stay small; GET /api/v1/jobs/{id} has the curves
		out = append(out, j)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (r *Runner) handleGet(w http.ResponseWriter, req *http.Request) {
	sj, err := r.opts.Store.GetJob(req.Context(), req.PathValue("id"))
	if err != nil {
		r.writeError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, json.RawMessage(sj.Record))
}

func (r *Runner) handleCancel(w http.ResponseWriter, req *http.Request) {
	j, err := r.Cancel(req.Context(), req.PathValue("id"))
	if err != nil {
		r.writeError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusAccepted, j)
}

func (r *Runner) handleResume(w http.ResponseWriter, req *http.Request) {
	j, err := r.Resume(req.Context(), req.PathValue("id"))
	if err != nil {
		r.writeError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusAccepted, j)
}

// writeError maps the runner's and the store's errors to statuses.
func (r *Runner) writeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		api.WriteError(w, api.NewError(http.StatusNotFound, "job_not_found", "no such training job: "+err.Error()))
	case errors.Is(err, errState):
		api.WriteError(w, api.NewError(http.StatusConflict, "job_state", err.Error()))
	case errors.Is(err, ErrClosed):
		api.WriteError(w, api.NewError(http.StatusServiceUnavailable, "shutting_down", err.Error()+"; submit again once it is back"))
	default:
		r.log.Error("jobs: request failed", "err", err)
		api.WriteError(w, err)
	}
}
