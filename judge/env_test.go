package judge_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/gateway/gatewaytest"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/capture"
	"github.com/foundryhq/foundry/judge"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/store"
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
	up := upstreamtest.NewOpenAI(t)
	// No gateway retries: the fake's request count is then exactly the calls the judge made.
	g := gatewaytest.Start(t, gatewaytest.Options{Upstream: up.URL, Capture: withStore, Retries: -1})
	return &env{up: up, st: g.Store, capt: g.Capture, URL: g.URL}
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
