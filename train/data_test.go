package train

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/tokenizer"
	"github.com/foundryhq/foundry/train/lora"
)

func TestLoadDataMask(t *testing.T) {
	dir, _ := tinyModelDir(t, 41)
	tok, err := tokenizer.Load(dir)
	mustf(t, err, "tokenizer")
	path := filepath.Join(t.TempDir(), "d.jsonl")
	lines := `{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}

{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"x","weight":0},{"role":"user","content":"b"},{"role":"assistant","content":"zz"}]}
`
	mustf(t, os.WriteFile(path, []byte(lines), 0o644), "write")
	d, err := LoadData(path, tok, DataOptions{})
	mustf(t, err, "load")
	if len(d.Examples) != 2 || d.Examples[0].Line != 1 || d.Examples[1].Line != 3 {
		t.Fatalf("examples %d, lines %d %d", len(d.Examples), d.Examples[0].Line, d.Examples[1].Line)
	}
	// The loss covers exactly the assistant's content and end-of-turn marker (ChatML: "yo<|im_end|>\n").
	for i, want := range []string{"yo<|im_end|>\n", "zz<|im_end|>\n"} {
		e := d.Examples[i]
		var ids []int
		for j, id := range e.Tokens {
			if e.Mask[j] {
				ids = append(ids, int(id))
			}
		}
		if got := tok.Decode(ids, false); got != want {
			t.Errorf("example %d: loss on %q, want %q", i, got, want)
		}
	}
	all, err := LoadData(path, tok, DataOptions{AllTokens: true})
	mustf(t, err, "load all tokens")
	for _, m := range all.Examples[0].Mask {
		if !m {
			t.Fatal("AllTokens left a token out of the loss")
		}
	}

	// Over-long examples: dropped (counted), or truncated with Truncate.
	n := len(d.Examples[1].Tokens) - 1 // cuts only the second example's final "\n"
	short, err := LoadData(path, tok, DataOptions{MaxLen: n})
	mustf(t, err, "max len")
	if short.Dropped != 1 || len(short.Examples) != 1 || len(short.DroppedLines) != 1 || short.DroppedLines[0] != 3 {
		t.Fatalf("MaxLen %d: dropped %d, kept %d; want 1 and 1", n, short.Dropped, len(short.Examples))
	}
	cut, err := LoadData(path, tok, DataOptions{MaxLen: n, Truncate: true})
	mustf(t, err, "truncate")
	if cut.Truncated != 1 || len(cut.Examples) != 2 || len(cut.Examples[1].Tokens) != n || !cut.Examples[1].Mask[n-1] {
		t.Fatalf("truncate: %d truncated, %d kept", cut.Truncated, len(cut.Examples))
	}
	if _, err := LoadData(path, tok, DataOptions{MaxLen: 4}); err == nil || !strings.Contains(err.Error(), "longer than the max length 4") {
		t.Fatalf("everything too long: %v", err)
	}
}

func TestLoadDataErrors(t *testing.T) {
	dir, _ := tinyModelDir(t, 42)
	tok, err := tokenizer.Load(dir)
	mustf(t, err, "tokenizer")
	ok := `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}`
	for _, tc := range []struct {
		name, data, want string
	}{
		{"malformed", ok + "\n" + ok + "\n{\"messages\": [\n", "line 3: not a JSON fine-tuning example"},
		{"no assistant", ok + "\n" + `{"messages":[{"role":"user","content":"hi"}]}` + "\n", "line 2: no assistant message"},
		{"no messages", `{"prompt":"hi"}` + "\n", "line 1: no \"messages\""},
		{"all weight 0", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo","weight":0}]}`, "line 1: every assistant message has weight 0"},
		{"empty", "\n\n", "has no examples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.jsonl")
			mustf(t, os.WriteFile(path, []byte(tc.data), 0o644), "write")
			_, err := LoadData(path, tok, DataOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bad.jsonl") {
				t.Fatalf("error %v; want one naming the file and %q", err, tc.want)
			}
		})
	}
}

func TestLearningRateSchedule(t *testing.T) {
	for _, tc := range []struct {
		schedule          string
		step, warm, total int
		want              float64
	}{
		{"cosine", 0, 10, 100, 0}, {"cosine", 5, 10, 100, 0.5}, {"cosine", 10, 10, 100, 1},
		{"cosine", 55, 10, 100, 0.5}, {"cosine", 100, 10, 100, 0},
		{"linear", 55, 10, 100, 0.5}, {"linear", 10, 10, 100, 1}, {"constant", 90, 10, 100, 1},
		{"cosine", 0, 0, 10, 1},
	} {
		if got := LearningRate(1, tc.schedule, tc.step, tc.warm, tc.total); abs(got-tc.want) > 1e-12 {
			t.Errorf("%s step %d (warm %d, total %d): %g, want %g", tc.schedule, tc.step, tc.warm, tc.total, got, tc.want)
		}
	}
}

func TestParseTargets(t *testing.T) {
	p, err := lora.ParseTargets("q, v,down_proj,q")
	if err != nil || len(p) != 3 || p[0] != "q_proj" || p[2] != "down_proj" {
		t.Fatalf("ParseTargets: %v %v", p, err)
	}
	if _, err := lora.ParseTargets("q,lm_head"); err == nil || !strings.Contains(err.Error(), "lm_head") {
		t.Fatalf("unknown target: %v", err)
	}
}

// TestNaNLoss: a run that blows up fails with the step and the examples'
// lines, and leaves the last checkpoint as it was.
func TestNaNLoss(t *testing.T) {
	b := testBackend(t)
	dir, _ := tinyModelDir(t, 43)
	words, _, _ := taskWords(2)
	data := filepath.Join(t.TempDir(), "d.jsonl")
	writeJSONL(t, data, taskPairs(words[:8]))
	out := t.TempDir()
	job, err := Run(t.Context(), Config{Base: dir, Data: data, Out: out, LoRA: lora.LoRA{Rank: 4, Alpha: 8}, LR: 1e30, Batch: 4, Epochs: 4, EvalEvery: 1}, Options{Backend: b})
	if err == nil || !strings.Contains(err.Error(), "loss is") || !strings.Contains(err.Error(), "d.jsonl lines [") {
		t.Fatalf("exploding run: %v", err)
	}
	if job == nil || job.Status != StatusFailed {
		t.Fatalf("job %+v", job)
	}
	raw, err := os.ReadFile(filepath.Join(out, "checkpoint", "trainer.json"))
	mustf(t, err, "the checkpoint is gone")
	var st trainerState
	mustf(t, json.Unmarshal(raw, &st), "the checkpoint is corrupt")
	if st.Step != job.Step-1 {
		t.Fatalf("checkpoint at step %d, failure at step %d", st.Step, job.Step)
	}
	t.Log(job.Error)
}
