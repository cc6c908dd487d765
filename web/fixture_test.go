package web

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
)

// xssText is user content that must reach the page as text, never as markup.
const xssText = `<script>alert(1)</script><img src=x onerror=alert(2)>`

// Fixed ids the tests open.
const (
	idToolCall = "req_fixture_toolcall"
	idXSS      = "req_fixture_xss"
	idFailed   = "req_fixture_failed"
)

type fixtureModel struct {
	route, provider, model string
	inPrice, outPrice      float64 // USD per million tokens
	latency                time.Duration
	weight                 int
}

var fixtureModels = []fixtureModel{
	{"gpt-4o-mini", "openai", "gpt-4o-mini", 0.15, 0.60, 700 * time.Millisecond, 5},
	{"gpt-4o", "openai", "gpt-4o-2024-08-06", 2.5, 10, 1800 * time.Millisecond, 2},
	{"claude-haiku", "anthropic", "claude-3-5-haiku-latest", 0.8, 4, 1100 * time.Millisecond, 2},
	{"support-triage", "engine", "support-v3", 0, 0, 120 * time.Millisecond, 3},
}

var fixtureTickets = []string{
	"My invoice for March was charged twice, please refund one of them.",
	"The app crashes when I upload a PDF larger than 10 MB.",
	"How do I change the email address on my account?",
	"Your product is great, but the export to CSV is missing the date column.",
	"I cannot log in since yesterday, the reset link never arrives.",
}

// openStore returns a fresh SQLite store in a temporary directory.
func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "foundry.db"))
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// seed fills st with n realistic captured calls spread over the 24 hours
// before now, plus three fixed ones (a tool call, an XSS attempt, a failure)
// a few minutes before now. It returns every inserted record.
func seed(t testing.TB, st store.Store, now time.Time, n int) []store.Record {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	total := 0
	for _, m := range fixtureModels {
		total += m.weight
	}
	var recs []store.Record
	for i := range n {
		pick := rng.IntN(total)
		m := fixtureModels[0]
		for _, c := range fixtureModels {
			if pick < c.weight {
				m = c
				break
			}
			pick -= c.weight
		}
		// More traffic in the last hours, like a growing app.
		age := time.Duration(float64(24*time.Hour) * rng.Float64() * rng.Float64())
		ticket := fixtureTickets[rng.IntN(len(fixtureTickets))]
		r := chatRecord(fmt.Sprintf("req_fixture_%04d", i), now.Add(-age-5*time.Minute), m, ticket, rng)
		if rng.IntN(25) == 0 {
			r.Status, r.Error, r.Response, r.CompletionTokens, r.CostUSD = 429, "upstream rate limit: retry after 2s", nil, 0, 0
		} else if rng.IntN(40) == 0 {
			r.Status, r.Error, r.Response, r.CompletionTokens, r.CostUSD = 502, "upstream closed the connection", nil, 0, 0
		}
		if rng.IntN(3) == 0 {
			r.Tags = []string{"support"}
			if rng.IntN(2) == 0 {
				r.Tags = append(r.Tags, "beta")
			}
		}
		recs = append(recs, r)
	}
	tool := chatRecord(idToolCall, now.Add(-3*time.Minute), fixtureModels[0], "Where is order 8812?", rng)
	tool.Request = mustJSON(map[string]any{
		"model": "gpt-4o-mini", "temperature": 0.2,
		"tools": []any{map[string]any{"type": "function", "function": map[string]any{"name": "lookup_order", "description": "Find an order by id",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{"order_id": map[string]any{"type": "string"}}}}}},
		"messages": []any{
			map[string]any{"role": "system", "content": "You are a support agent for Acme. Use tools to look orders up."},
			map[string]any{"role": "user", "content": "Where is order 8812?"},
			map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{"id": "call_1", "type": "function",
				"function": map[string]any{"name": "lookup_order", "arguments": `{"order_id":"8812"}`}}}},
			map[string]any{"role": "tool", "tool_call_id": "call_1", "content": `{"status":"shipped","carrier":"UPS","eta":"2026-11-27"}`},
		},
	})
	tool.Response = mustJSON(map[string]any{"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant",
			"content": "Order 8812 has shipped with UPS and should arrive on November 27."}}}})
	tool.Tags, tool.Metadata, tool.User = []string{"support", "tools"}, map[string]string{"team": "care", "env": "prod"}, "user-42"

	xss := chatRecord(idXSS, now.Add(-2*time.Minute), fixtureModels[0], xssText, rng)
	xss.Tags = []string{`"><b>tag</b>`}
	xss.Metadata = map[string]string{"note": xssText}

	failed := chatRecord(idFailed, now.Add(-4*time.Minute), fixtureModels[1], "Summarise this thread.", rng)
	failed.Status, failed.Error, failed.Response, failed.CompletionTokens, failed.CostUSD = 500, "upstream error: internal server error", nil, 0, 0
	recs = append(recs, tool, xss, failed)

	if err := st.InsertRecords(context.Background(), recs); err != nil {
		t.Fatalf("insert fixture records: %v", err)
	}
	// Feedback on every seventh call, as an app with a thumbs-up button would send.
	for i, r := range recs {
		if i%7 != 3 || r.Status != 200 {
			continue
		}
		score := float64(rng.IntN(2))
		if err := st.AddFeedback(context.Background(), store.Feedback{RequestID: r.ID, Score: &score, Label: map[float64]string{0: "bad", 1: "good"}[score], CreatedAt: r.CreatedAt.Add(time.Minute)}); err != nil {
			t.Fatalf("add fixture feedback: %v", err)
		}
	}
	return recs
}

func chatRecord(id string, at time.Time, m fixtureModel, user string, rng *rand.Rand) store.Record {
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	answer := "Thanks for reaching out. I have forwarded this to the billing team; you will hear back within one business day."
	in, out := 40+rng.IntN(400), 20+rng.IntN(300)
	lat := time.Duration(float64(m.latency) * (0.5 + rng.Float64()))
	return store.Record{
		ID: id, CreatedAt: at.UTC(), Endpoint: "chat.completions", Route: m.route, Provider: m.provider, Model: m.model,
		Stream: rng.IntN(3) == 0, Status: 200,
		Request: mustJSON(map[string]any{"model": m.route, "messages": []any{
			map[string]any{"role": "system", "content": "Classify the ticket and answer briefly."},
			map[string]any{"role": "user", "content": user}}}),
		Response: mustJSON(map[string]any{"id": "chatcmpl-" + id, "object": "chat.completion", "model": m.model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": answer}}},
			"usage":   map[string]any{"prompt_tokens": in, "completion_tokens": out}}),
		Latency: lat, TTFT: lat / 4, PromptTokens: in, CompletionTokens: out,
		CostUSD:  (float64(in)*m.inPrice + float64(out)*m.outPrice) / 1e6,
		Attempts: 1,
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
