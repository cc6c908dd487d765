package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/judge"
	"github.com/foundryhq/foundry/provider"
	popenai "github.com/foundryhq/foundry/provider/openai"
	"github.com/foundryhq/foundry/upstreamtest"
)

// TestDatasetBuildJudge builds a spec with judge: and best_of_n: from the
// CLI, the calls going through a real gateway found by FOUNDRY_ADDR with
// the key in FOUNDRY_API_KEY, to a fake upstream playing judge and teacher.
func TestDatasetBuildJudge(t *testing.T) {
	up := upstreamtest.NewOpenAI(t)
	q := regexp.MustCompile(`\[q=(\d+)\]`)
	up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		if req.Messages[0].Content.String() != judge.PointwiseV1 {
			return upstreamtest.Reply{Content: "A teacher's careful answer. [q=9]"}
		}
		user := req.Messages[1].Content.String()
		answer := user[strings.Index(user, "## Answer to grade"):]
		if m := q.FindStringSubmatch(answer); m != nil && !strings.Contains(answer, "[garbage]") {
			return upstreamtest.Reply{Content: fmt.Sprintf(`{"score": %s, "reason": "quality %s"}`, m[1], m[1])}
		}
		return upstreamtest.Reply{Content: "Looks fine."}
	})
	reg := provider.NewRegistry()
	reg.Register(popenai.New(popenai.Options{BaseURL: up.URL, APIKey: "sk-upstream"}), provider.DefaultPrefixes["openai"]...)
	gw, err := gateway.New(context.Background(), gateway.Options{Registry: reg, MaxRetries: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var keyed, unkeyed atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer vk-dataset" {
			keyed.Add(1)
		} else {
			unkeyed.Add(1)
		}
		gw.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	u, _ := url.Parse(hs.URL)
	t.Setenv("FOUNDRY_ADDR", u.Host)
	t.Setenv("FOUNDRY_API_KEY", "vk-dataset")
	t.Setenv("FOUNDRY_ADMIN_KEY", "")

	rows, err := filepath.Abs("../../dataset/judgestage/testdata/rows.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(t.TempDir(), "judged.yaml")
	if err := os.WriteFile(spec, []byte(fmt.Sprintf(`name: judged
sources: [{file: %q}]
judge: {model: gpt-4o-mini, min_score: 5, concurrency: 4}
best_of_n: {model: gpt-4o, n: 2, bar: 8, only_if_below: 8}
split: {train: 1, val: 0, test: 0}
`, rows)), 0o644); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	out, errOut, err := runDataset(t, "build", "--spec", spec, "--data-dir", data)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, errOut)
	}
	t.Log(out)
	// q=3 and q=2 are under 5; two answers are garbage to the judge; q=6,
	// q=5 and q=7 are resampled and replaced by the teacher's 9.
	for _, want := range []string{"judge score < 5: 2", "judge answered garbage: 2", "judge calls=12", "judge cost micro-USD=",
		"replaced=3", "kept=3", "teacher calls=3", "teacher cost micro-USD="} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "judge-cache.db")); err != nil {
		t.Errorf("no judge cache in the data dir: %v", err)
	}
	if keyed.Load() == 0 || unkeyed.Load() != 0 {
		t.Errorf("gateway saw %d calls with FOUNDRY_API_KEY and %d without", keyed.Load(), unkeyed.Load())
	}
}
