package judge_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/judge"
	"github.com/foundryhq/foundry/upstreamtest"
)

// A curation stage scores captured answers through the gateway, counting
// garbage verdicts instead of failing, and reports the judge's own cost.
func Example() {
	// Stands in for the gateway's /v1: a judge that likes every answer.
	gw := upstreamtest.NewOpenAI(nil)
	defer gw.Close()
	gw.OnChat(func(*api.ChatRequest) upstreamtest.Reply {
		return upstreamtest.Reply{Content: `{"score": 8, "reason": "correct"}`}
	})

	dir, _ := os.MkdirTemp("", "judge-example")
	defer os.RemoveAll(dir)
	cache, err := judge.OpenCache(filepath.Join(dir, "judge.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	j, err := judge.New(judge.Options{Chatter: judge.NewHTTP(gw.URL, "sk-foundry"), Model: "gpt-4o", Cache: cache, Concurrency: 8})
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx := context.Background()
	conv := []api.Message{{Role: "user", Content: api.TextContent("2+2?")}}
	v, err := j.Score(ctx, judge.Item{Messages: conv, Answer: api.Message{Role: "assistant", Content: api.TextContent("4")}, Rubric: "Correct arithmetic."})
	switch {
	case errors.Is(err, judge.ErrGarbage):
		fmt.Println("garbage verdict, counted and reported:", err)
	case err != nil:
		fmt.Println("judge failed; re-run to resume:", err)
	default:
		fmt.Println("score", v.Score, "cached", v.Cached)
	}
	v, _ = j.Score(ctx, judge.Item{Messages: conv, Answer: api.Message{Role: "assistant", Content: api.TextContent("4")}, Rubric: "Correct arithmetic."})
	fmt.Println("score", v.Score, "cached", v.Cached)
	st := j.Stats()
	fmt.Printf("judge calls %d, cache hits %d, cost $%.6f\n", st.Spent.Calls, st.CacheHits, st.Spent.CostUSD)
	// Output:
	// score 8 cached false
	// score 8 cached true
	// judge calls 1, cache hits 1, cost $0.000278
}
