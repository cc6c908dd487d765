package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foundryhq/foundry/jobs"
	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
	"github.com/foundryhq/foundry/tokenizer/tokenizertest"
	"github.com/foundryhq/foundry/train"
)

// mux mounts the API as a gateway would, without auth (the gateway's
// AdminOnly is tested with the gateway).
type mux struct{ *http.ServeMux }

func (mux) AdminOnly(h http.HandlerFunc) http.HandlerFunc { return h }

// tinyModel writes a random tiny Llama with a byte-level ChatML tokenizer.
func tinyModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := model.RandomConfig()
	cfg.VocabSize, cfg.BOSTokenID, cfg.EOSTokenIDs = 260, 258, []int{257}
	if err := model.WriteRandom(dir, cfg, 1); err != nil {
		t.Fatal(err)
	}
	tok := tokenizertest.ByteLevel(map[int]string{256: "<|im_start|>", 257: "<|im_end|>", 258: "<|endoftext|>"})
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644); err != nil {
		t.Fatal(err)
	}
	tc, _ := json.Marshal(map[string]any{"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
		"chat_template": `{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}`})
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), tc, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeData(t *testing.T, path string, n int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		line, _ := json.Marshal(map[string]any{"messages": []map[string]string{
			{"role": "user", "content": fmt.Sprintf("q%d", i)}, {"role": "assistant", "content": fmt.Sprintf("a%d", i)}}})
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

type env struct {
	t      *testing.T
	url    string
	st     store.Store
	runner *jobs.Runner
	data   string // DATA dir
	base   string
	train  string // a JSONL file
}

func newEnv(t *testing.T) *env {
	t.Helper()
	tmp := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(tmp, "foundry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st, data: filepath.Join(tmp, "data"), base: tinyModel(t), train: filepath.Join(tmp, "train.jsonl")}
	writeData(t, e.train, 8)
	e.runner = jobs.New(jobs.Options{Store: st, DataDir: e.data})
	if err := e.runner.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	m := mux{http.NewServeMux()}
	e.runner.Mount(m)
	srv := httptest.NewServer(m)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.runner.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	e.url = srv.URL
	return e
}

// do sends a request and decodes the JSON answer into out (when non-nil).
func (e *env) do(method, path, body string, out any) int {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func (e *env) submit(cfg map[string]any) *train.Job {
	e.t.Helper()
	b, _ := json.Marshal(cfg)
	var j train.Job
	if code := e.do("POST", "/api/v1/jobs", string(b), &j); code != http.StatusCreated {
		e.t.Fatalf("submit: status %d, %+v", code, j)
	}
	return &j
}

// poll reads the job until ok says it is done, or fails after a minute.
func (e *env) poll(id string, what string, ok func(*train.Job) bool) *train.Job {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var j train.Job
		if code := e.do("GET", "/api/v1/jobs/"+id, "", &j); code != http.StatusOK {
			e.t.Fatalf("GET job %s: %d", id, code)
		}
		if ok(&j) {
			return &j
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s: not %s after a minute: status %s step %d/%d, error %q", id, what, j.Status, j.Step, j.Steps, j.Error)
		}
		<-tick.C
	}
}

func status(s string) func(*train.Job) bool { return func(j *train.Job) bool { return j.Status == s } }

// TestSubmitRunsToSuccess: a job submitted over HTTP trains the real tiny
// model to the end; its record has curves, device-seconds, cost, memory and
// artifacts, in the store and in job.json under DATA/jobs/<id>.
func TestSubmitRunsToSuccess(t *testing.T) {
	e := newEnv(t)
	j := e.submit(map[string]any{"base": e.base, "data": e.train, "rank": 2, "epochs": 2, "batch": 2, "lr": 1e-3, "price_per_hour": 3.6})
	if j.Status != train.StatusQueued || !strings.HasPrefix(j.ID, "job-") {
		t.Fatalf("submitted job: %s %q", j.ID, j.Status)
	}
	done := e.poll(j.ID, "finished", func(j *train.Job) bool {
		return j.Status != train.StatusQueued && j.Status != train.StatusRunning
	})
	if done.Status != train.StatusSucceeded {
		t.Fatalf("job ended %s: %s", done.Status, done.Error)
	}
	if done.Runner != "gateway" {
		t.Errorf("runner %q, want gateway", done.Runner)
	}
	if !done.Created.Equal(j.Created) {
		t.Errorf("created %v when queued, %v when done", j.Created, done.Created)
	}
	if len(done.Train) != done.Steps || done.Steps == 0 || len(done.Val) == 0 {
		t.Errorf("curves: %d train points for %d steps, %d val points (val_fraction defaults to 0.1)", len(done.Train), done.Steps, len(done.Val))
	}
	if done.DeviceSeconds <= 0 || math.Abs(done.Cost-done.DeviceSeconds/1000) > 1e-9 || done.PeakMemoryBytes <= 0 || done.Config.LoRA.Rank != 2 {
		t.Errorf("device-seconds %g, cost %g, peak memory %d, rank %d", done.DeviceSeconds, done.Cost, done.PeakMemoryBytes, done.Config.LoRA.Rank)
	}
	out := filepath.Join(e.data, "jobs", j.ID)
	if done.Config.Out != out || done.Artifacts["adapter"] != out {
		t.Errorf("out %s, artifacts %v; want %s", done.Config.Out, done.Artifacts, out)
	}
	raw, err := os.ReadFile(filepath.Join(out, "job.json"))
	if err != nil || !bytes.Contains(raw, []byte(`"status": "succeeded"`)) {
		t.Errorf("job.json: %v\n%s", err, raw)
	}

	var list struct{ Data []train.Job }
	if code := e.do("GET", "/api/v1/jobs?status=succeeded", "", &list); code != 200 || len(list.Data) != 1 || list.Data[0].ID != j.ID || list.Data[0].Train != nil {
		t.Errorf("list: %d %+v", code, list)
	}
	if code := e.do("GET", "/api/v1/jobs?status=running", "", &list); code != 200 || len(list.Data) != 0 {
		t.Errorf("list running: %d %+v", code, list)
	}
	var apiErr struct {
		Error struct{ Message, Type string }
	}
	if code := e.do("POST", "/api/v1/jobs/"+j.ID+"/cancel", "", &apiErr); code != http.StatusConflict || !strings.Contains(apiErr.Error.Message, "succeeded") {
		t.Errorf("cancel a finished job: %d %+v", code, apiErr)
	}
}

// TestCancelQueueAndResume: with one runner, a second job waits queued;
// cancelling it ends it interrupted without running; cancelling the long
// first job ends it interrupted with a checkpoint; the second, resumed,
// then runs to success.
func TestCancelQueueAndResume(t *testing.T) {
	e := newEnv(t)
	long := e.submit(map[string]any{"base": e.base, "data": e.train, "rank": 2, "epochs": 5000, "batch": 2, "eval_every": 1, "val_fraction": 0})
	e.poll(long.ID, "past step 1", func(j *train.Job) bool { return j.Status == train.StatusRunning && j.Step >= 1 })

	b, _ := json.Marshal(map[string]any{"base": e.base, "data": e.train, "out": long.Config.Out})
	if code := e.do("POST", "/api/v1/jobs", string(b), nil); code != http.StatusConflict {
		t.Errorf("a second job into the running job's out: %d, want 409", code)
	}
	short := e.submit(map[string]any{"base": e.base, "data": e.train, "rank": 2, "batch": 4, "val_fraction": 0})
	var j train.Job
	if code := e.do("GET", "/api/v1/jobs/"+short.ID, "", &j); code != 200 || j.Status != train.StatusQueued {
		t.Fatalf("second job while the first runs: %d %s", code, j.Status)
	}
	if code := e.do("POST", "/api/v1/jobs/"+short.ID+"/cancel", "", nil); code != http.StatusAccepted {
		t.Fatalf("cancel queued: %d", code)
	}
	e.poll(short.ID, "interrupted", status(train.StatusInterrupted))

	if code := e.do("POST", "/api/v1/jobs/"+long.ID+"/cancel", "", nil); code != http.StatusAccepted {
		t.Fatalf("cancel running: %d", code)
	}
	stopped := e.poll(long.ID, "interrupted", status(train.StatusInterrupted))
	if stopped.Artifacts["checkpoint"] == "" || !strings.Contains(stopped.Error, "resume") || stopped.Step < 1 {
		t.Errorf("cancelled job: step %d, artifacts %v, error %q", stopped.Step, stopped.Artifacts, stopped.Error)
	}
	if _, err := os.Stat(filepath.Join(stopped.Artifacts["checkpoint"], "trainer.json")); err != nil {
		t.Errorf("no checkpoint to resume from: %v", err)
	}

	if code := e.do("POST", "/api/v1/jobs/"+short.ID+"/resume", "", nil); code != http.StatusAccepted {
		t.Fatalf("resume: %d", code)
	}
	if done := e.poll(short.ID, "succeeded", status(train.StatusSucceeded)); done.Error != "" {
		t.Errorf("resumed job error: %q", done.Error)
	}
}

// TestBadRequests: bad configs are 400 with an OpenAI-style error naming
// the field; unknown ids are 404.
func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		body, param, want string
	}{
		{`{`, "", "must be a JSON training config"},
		{`{"data": "x.jsonl"}`, "base", "give the base model"},
		{fmt.Sprintf(`{"base": %q}`, e.base), "data", "give the training data"},
		{fmt.Sprintf(`{"base": %q, "data": "/nonexistent.jsonl"}`, e.base), "data", "not a readable file"},
		{fmt.Sprintf(`{"base": %q, "data": %q}`, e.data, e.train), "base", "neither a model directory"},
		{fmt.Sprintf(`{"base": %q, "data": %q, "lr": -1}`, e.base, e.train), "", "learning rate must be positive"},
		{fmt.Sprintf(`{"base": %q, "data": %q, "targets": "q,lm_head"}`, e.base, e.train), "targets", "lm_head"},
		{fmt.Sprintf(`{"base": %q, "data": %q, "epoch": 2}`, e.base, e.train), "", `unknown field "epoch"`},
	} {
		var body struct {
			Error struct {
				Message, Type string
				Param         *string
			}
		}
		code := e.do("POST", "/api/v1/jobs", tt.body, &body)
		param := ""
		if body.Error.Param != nil {
			param = *body.Error.Param
		}
		if code != 400 || body.Error.Type != "invalid_request_error" || param != tt.param || !strings.Contains(body.Error.Message, tt.want) {
			t.Errorf("POST %s: %d %+v (param %q); want 400 param %q with %q", tt.body, code, body.Error, param, tt.param, tt.want)
		}
	}
	for _, p := range []string{"GET /api/v1/jobs/job-none", "POST /api/v1/jobs/job-none/cancel", "POST /api/v1/jobs/job-none/resume"} {
		method, path, _ := strings.Cut(p, " ")
		var raw map[string]map[string]any
		if code := e.do(method, path, "", &raw); code != 404 || raw["error"]["type"] != "not_found_error" || raw["error"]["code"] != "job_not_found" {
			t.Errorf("%s: %d %v", p, code, raw)
		}
	}
	var raw map[string]map[string]any
	if code := e.do("GET", "/api/v1/jobs?status=done", "", &raw); code != 400 || raw["error"]["param"] != "status" {
		t.Errorf("bad status filter: %d %v", code, raw)
	}
}

// TestStartMarksLeftoverJobsInterrupted: jobs a killed gateway left running
// or queued are interrupted when the next one starts, not lost.
func TestStartMarksLeftoverJobsInterrupted(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "foundry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// job-3 is foundry train's, maybe still training in its own process: left alone.
	for i, s := range []string{train.StatusRunning, train.StatusQueued, train.StatusSucceeded, train.StatusRunning} {
		j := &train.Job{ID: fmt.Sprintf("job-%d", i), Status: s, Step: 3, Runner: "gateway"}
		if i == 3 {
			j.Runner = ""
		}
		if err := (train.StoreJobs{Store: st}).SaveJob(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	}
	r := jobs.New(jobs.Options{Store: st, DataDir: t.TempDir()})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	for i, want := range []string{train.StatusInterrupted, train.StatusInterrupted, train.StatusSucceeded, train.StatusRunning} {
		j, err := train.StoreJobs{Store: st}.Job(t.Context(), fmt.Sprintf("job-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != want || j.Step != 3 || (want == train.StatusInterrupted && !strings.Contains(j.Error, "gateway stopped")) {
			t.Errorf("job-%d: %s step %d %q; want %s", i, j.Status, j.Step, j.Error, want)
		}
	}
}
