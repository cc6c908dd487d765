package eval_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/eval"
)

// chatFunc is a Chatter from a function, for tests without a gateway.
type chatFunc func(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error)

func (f chatFunc) Chat(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
	return f(ctx, req)
}

func answer(text string) *api.ChatResponse {
	return &api.ChatResponse{Model: "m", Choices: []api.Choice{{Message: api.Message{Role: "assistant", Content: api.TextContent(text)}}}}
}

func readAll(t *testing.T, jsonl string) []eval.Example {
	t.Helper()
	ex, err := eval.DecodeExamples(strings.NewReader(jsonl), "test.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

const twoExamples = `{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"2+2?"},{"role":"assistant","content":"4"}]}

{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"capital of France?"},{"role":"assistant","content":"Paris"}]}
{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"capital of France?"},{"role":"assistant","content":"Paris"}]}
`

func TestDecodeExamples(t *testing.T) {
	ex := readAll(t, twoExamples)
	if len(ex) != 2 {
		t.Fatalf("%d examples, want 2 (blank line skipped, repeated line kept once)", len(ex))
	}
	// The prompt is everything before the last assistant message.
	if len(ex[1].Prompt) != 3 || ex[1].Prompt[2].Content.String() != "capital of France?" || ex[1].Reference.Content.String() != "Paris" {
		t.Errorf("example 2: prompt %+v reference %+v", ex[1].Prompt, ex[1].Reference)
	}
	if len(ex[0].ID) != 16 || ex[0].ID == ex[1].ID {
		t.Errorf("ids %q %q", ex[0].ID, ex[1].ID)
	}
	for _, c := range []struct{ in, want string }{
		{`{"messages":[{"role":"user","content":"x"}]}`, "test.jsonl:1: no assistant message"},
		{"\n{\"messages\": 3}", "test.jsonl:2: not an OpenAI fine-tuning line"},
		{`{"messages":[{"role":"assistant","content":"x"}]}`, "no prompt before it"},
		{"", "has no examples"},
	} {
		if _, err := eval.DecodeExamples(strings.NewReader(c.in), "test.jsonl"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.in, err, c.want)
		}
	}
}

func TestTextOfToolCalls(t *testing.T) {
	m := api.Message{Role: "assistant", ToolCalls: []api.ToolCall{{ID: "1", Type: "function", Function: api.FunctionCall{Name: "lookup", Arguments: `{"id": 7}`}}}}
	if got := eval.Text(m); got != `[{"name":"lookup","arguments":{"id":7}}]` {
		t.Errorf("Text = %s", got)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	ex := readAll(t, twoExamples)
	ok := chatFunc(func(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) { return answer("4"), nil })
	for _, c := range []struct {
		o    eval.Options
		want string
	}{
		{eval.Options{Candidates: []string{"a"}}, "Chatter is required"},
		{eval.Options{Chatter: ok}, "no candidates"},
		{eval.Options{Chatter: ok, Candidates: []string{"a", "a"}}, "listed twice"},
		{eval.Options{Chatter: ok, Candidates: []string{"a"}, Reference: "b"}, "not one of the candidates"},
		{eval.Options{Chatter: ok, Candidates: []string{"a"}, ID: "../x"}, "cannot name a directory"},
	} {
		c.o.Dir = t.TempDir()
		if _, err := eval.Run(context.Background(), ex, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.o, err, c.want)
		}
	}
}

func TestAllCallsFailingIsAnError(t *testing.T) {
	ex := readAll(t, twoExamples)
	var calls atomic.Int64
	down := chatFunc(func(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
		calls.Add(1)
		return nil, errors.New("connection refused (is the gateway running?)")
	})
	dir := t.TempDir()
	o := eval.Options{Dir: dir, Chatter: down, Candidates: []string{"a", "b"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s, err := eval.Run(context.Background(), ex, o)
	if err == nil || !strings.Contains(err.Error(), "all 4 calls failed") || !strings.Contains(err.Error(), "is the gateway running?") {
		t.Fatalf("err %v", err)
	}
	if s == nil || s.Candidate("a").Errors != 2 || s.Candidate("a").ExactMatch.Mean != 0 {
		t.Fatalf("summary %+v", s)
	}
	if _, err := os.Stat(filepath.Join(dir, s.ID, eval.SummaryFile)); err != nil {
		t.Errorf("no summary after failures: %v", err)
	}
	// Once the endpoint is back, a re-run asks again only for the failed answers.
	o.Chatter = chatFunc(func(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
		calls.Add(1)
		return answer("4"), nil
	})
	s, err = eval.Run(context.Background(), ex, o)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 8 || s.Candidate("a").Errors != 0 || s.Candidate("a").ExactMatch.Mean != 0.5 {
		t.Errorf("calls %d, summary %+v", calls.Load(), s.Candidate("a"))
	}
}

func TestCancelledRunKeepsItsAnswers(t *testing.T) {
	ex := readAll(t, twoExamples)
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	chat := chatFunc(func(c context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
		if calls.Add(1) == 2 {
			cancel() // the second call is cut short
			return nil, c.Err()
		}
		return answer("4"), nil
	})
	dir := t.TempDir()
	o := eval.Options{Dir: dir, Chatter: chat, Candidates: []string{"a"}, Concurrency: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := eval.Run(ctx, ex, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	id := eval.DeriveID(ex, o.Candidates, "", "")
	rs, err := eval.LoadResults(filepath.Join(dir, id))
	if err != nil || len(rs) != 1 || rs[0].Answer != "4" {
		t.Fatalf("results after cancel: %v %+v (want the one finished answer)", err, rs)
	}
	if _, err := eval.Run(context.Background(), ex, o); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d calls, want 3: the resumed run asks only the unfinished one", calls.Load())
	}
}
