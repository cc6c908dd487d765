package quickstart

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/train"
)

// TestRunSmall runs the whole flywheel in its reduced size and checks what
// each step left behind.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two students: skipped with -short")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out bytes.Buffer
	pages := map[string]string{}
	res, err := Run(context.Background(), Options{Dir: dir, Listener: ln, Out: &out, Seed: 1, Small: true, Backend: "go",
		OnResults: func(ctx context.Context, res *Result) error {
			for _, p := range []string{"/", "/ui/traffic", "/ui/datasets", "/ui/training", "/ui/evals", "/ui/routes/" + Route, "/ui/costs"} {
				pages[p] = get(t, res.URL+p)
			}
			return nil
		}})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != int64(120) {
		t.Errorf("captured %d app calls, want 120", res.Records)
	}
	if res.Feedback == 0 {
		t.Error("no feedback was posted")
	}
	f := res.Curated.Manifest.Funnel
	if v := f.Stage("validate"); v == nil || v.Out >= v.In || v.In != res.Records {
		t.Errorf("validate stage %+v: want every record in and some invalid answers dropped", v)
	}
	if fb := f.Stage("feedback"); fb == nil || fb.DroppedFor("thumbs down") == 0 {
		t.Errorf("feedback stage %+v: want thumbs-down rows dropped", fb)
	}
	if d := f.Stage("dedupe"); d == nil || d.Out > d.In {
		t.Errorf("dedupe stage %+v", d)
	}
	cur, raw := res.Curated.Manifest.Rows["train"], res.Raw.Manifest.Rows["train"]
	if cur == 0 || cur >= raw {
		t.Errorf("curated train rows %d, raw %d: want fewer, but some, curated rows", cur, raw)
	}
	if st, err := os.Stat(res.Export); err != nil || st.Size() == 0 {
		t.Errorf("export %s: %v", res.Export, err)
	}
	for _, d := range []string{res.StudentDir, res.RawDir} {
		for _, f := range []string{train.AdapterConfigFile, train.AdapterWeightsFile, "job.json"} {
			if _, err := os.Stat(filepath.Join(d, f)); err != nil {
				t.Errorf("adapter file missing: %v", err)
			}
		}
	}
	if !strings.Contains(out.String(), "LoRA adapters over one loaded base") {
		t.Errorf("output does not say the adapters are served over one base:\n%s", out.String())
	}
	teacher := res.Eval.Candidate(TeacherModel)
	if teacher == nil || teacher.Requests != res.HeldOut || teacher.JSONValid == nil || teacher.FieldAccuracy == nil || teacher.FieldAccuracy.Mean < 0.5 {
		t.Errorf("teacher's eval summary %+v: want its JSON validity and field accuracy over %d examples", teacher, res.HeldOut)
	}
	for _, m := range []string{StudentModel, RawStudentModel} {
		if c := res.Eval.Candidate(m); c == nil || c.Requests != res.HeldOut || c.Errors != 0 {
			t.Errorf("eval of %s: %+v", m, c)
		}
	}
	var student int64
	for _, a := range res.Route.Arms {
		if a.Model == StudentModel {
			student = a.Requests
		}
	}
	if student == 0 {
		t.Errorf("the canary sent no traffic to the student: %+v", res.Route)
	}
	if be := res.Econ.BreakEven; be == nil || be.TeacherPerRequestUSD <= 0 || be.TrainingUSD <= 0 {
		t.Errorf("break-even %+v: want the teacher's price and the training cost", be)
	}
	for p, want := range map[string]string{"/": "support-bot", "/ui/traffic": "sim-teacher", "/ui/datasets": "support-triage",
		"/ui/training": StudentModel, "/ui/evals": StudentModel, "/ui/routes/" + Route: StudentModel, "/ui/costs": "sim-teacher"} {
		if !strings.Contains(pages[p], want) {
			t.Errorf("dashboard page %s does not show %q", p, want)
		}
	}
	for _, want := range []string{"field acc.", "Ablation", "Break-even", "support-bot", "Dashboard: http://"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// get fetches a dashboard page, failing the test unless it answers 200.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d: %.300s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestRunSmallFull fine-tunes the tiny students in full instead: whole
// models are written and served one engine each.
func TestRunSmallFull(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two students: skipped with -short")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out bytes.Buffer
	res, err := Run(context.Background(), Options{Dir: dir, Listener: ln, Out: &out, Seed: 2, Small: true, Full: true, Backend: "go"})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, d := range []string{res.StudentDir, res.RawDir} {
		for _, f := range []string{"model.safetensors", "config.json", "tokenizer.json", "job.json"} {
			if _, err := os.Stat(filepath.Join(d, f)); err != nil {
				t.Errorf("student file missing: %v", err)
			}
		}
	}
	for _, m := range []string{StudentModel, RawStudentModel} {
		if c := res.Eval.Candidate(m); c == nil || c.Requests != res.HeldOut || c.Errors != 0 {
			t.Errorf("eval of %s: %+v", m, c)
		}
	}
	if !strings.Contains(out.String(), "students (whole models, safetensors)") {
		t.Errorf("output does not name the whole-model students:\n%s", out.String())
	}
}
