package judge_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/capture"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/judge"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/provider"
	popenai "github.com/foundryhq/foundry/provider/openai"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
	"github.com/foundryhq/foundry/upstreamtest"
)

// Every provider can be a judge or a teacher directly.
var _ judge.Chatter = provider.Provider(nil)

// env is the real gateway in front of a fake OpenAI upstream that plays
// judge and teacher; with a store, calls are captured into SQLite.
type env struct {
	up   *upstreamtest.OpenAI
	URL  string // the gateway's /v1 base
	st   store.Store
	capt *capture.Capturer
}

func newEnv(t *testing.T, withStore bool) *env {
	t.Helper()
	ctx := context.Background()
	up := upstreamtest.NewOpenAI(t)
	reg := provider.NewRegistry()
	reg.Register(popenai.New(popenai.Options{BaseURL: up.URL, APIKey: "sk-upstream"}), provider.DefaultPrefixes["openai"]...)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// No gateway retries: the fake's request count is then exactly the calls the judge made.
	opts := gateway.Options{Registry: reg, MaxRetries: -1, Logger: log}
	e := &env{up: up}
	if withStore {
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "foundry.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		capt := capture.New(st, capture.Options{Prices: pricing.New(nil), SpillFile: filepath.Join(t.TempDir(), "spill.jsonl"), FlushInterval: 5 * time.Millisecond})
		if err := capt.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { capt.Close(context.Background()) })
		opts.Store, opts.Plugins, opts.Flusher = st, []provider.Plugin{capt}, capt
		e.st, e.capt = st, capt
	}
	srv, err := gateway.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e.URL = hs.URL + "/v1"
	return e
}

// chatRequests decodes the chat requests the fake received.
func (e *env) chatRequests(t *testing.T) []api.ChatRequest {
	t.Helper()
	var out []api.ChatRequest
	for _, r := range e.up.Requests() {
		if r.Path != "/v1/chat/completions" {
			continue
		}
		var req api.ChatRequest
		if err := json.Unmarshal(r.Body, &req); err != nil {
			t.Fatalf("fake got an undecodable request %s: %v", r.Body, err)
		}
		out = append(out, req)
	}
	return out
}

func newJudge(t *testing.T, chat judge.Chatter, cache judge.Cache) *judge.Judge {
	t.Helper()
	j, err := judge.New(judge.Options{Chatter: chat, Model: "gpt-4o", Cache: cache, Seed: 42,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func openCache(t *testing.T, path string) *judge.SQLiteCache {
	t.Helper()
	c, err := judge.OpenCache(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// isJudge reports whether req is a judge call, and which kind.
func judgeKind(req *api.ChatRequest) string {
	if len(req.Messages) == 0 || req.Messages[0].Role != "system" {
		return ""
	}
	switch req.Messages[0].Content.String() {
	case judge.PointwiseV1:
		return "pointwise"
	case judge.PairwiseV1:
		return "pairwise"
	}
	return ""
}

// section returns the text under a "## heading" of the judge's user message.
func section(req *api.ChatRequest, heading string) string {
	u := req.Messages[1].Content.String()
	i := strings.Index(u, heading+"\n")
	if i < 0 {
		return ""
	}
	u = u[i+len(heading)+1:]
	if j := strings.Index(u, "\n## "); j >= 0 {
		u = u[:j]
	}
	return strings.TrimSpace(u)
}

func user(s string) api.Message { return api.Message{Role: "user", Content: api.TextContent(s)} }
func assistant(s string) api.Message {
	return api.Message{Role: "assistant", Content: api.TextContent(s)}
}

// wordCost is the price of a fake call: the fake counts tokens in words.
func wordCost(t *testing.T, model string, prompt, completion int) float64 {
	t.Helper()
	c, ok := pricing.New(nil).Cost(model, prompt, 0, completion)
	if !ok {
		t.Fatalf("no price for %s", model)
	}
	return c
}

func near(a, b float64) bool {
	d := a - b
	return d < 1e-12 && d > -1e-12
}
