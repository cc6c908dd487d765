package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/upstreamtest"
)

// TestEvalAndCostsCLI runs `foundry eval run|show|list|compare` against a
// real `foundry serve` in front of a fake upstream, then `foundry costs`
// with a break-even on the traffic the eval left in the store, and GET
// /api/v1/costs on the server.
func TestEvalAndCostsCLI(t *testing.T) {
	up := upstreamtest.NewOpenAI(t)
	up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		last := req.Messages[len(req.Messages)-1].Content.String()
		switch req.Model {
		case "gpt-4o": // the judge: always a tie
			return upstreamtest.Reply{Content: `{"winner": "tie", "reason": "same"}`}
		case "gpt-student":
			if strings.HasSuffix(last, "1") || strings.HasSuffix(last, "3") {
				return upstreamtest.Reply{Content: "no idea"}
			}
		}
		return upstreamtest.Reply{Content: "answer to " + last}
	})
	dir := t.TempDir()
	db := filepath.Join(dir, "foundry.db")
	env := []string{"OPENAI_BASE_URL=" + up.URL, "OPENAI_API_KEY=sk-up", "FOUNDRY_DB=" + db, "FOUNDRY_ADMIN_KEY="}
	p := startServe(t, env)
	env = append(env, "FOUNDRY_ADDR="+strings.TrimPrefix(p.url, "http://"))

	var lines []string
	for i := range 10 {
		b, _ := json.Marshal(api.FineTuneExample{Messages: []api.Message{
			{Role: "user", Content: api.TextContent(fmt.Sprintf("question %d", i))},
			{Role: "assistant", Content: api.TextContent(fmt.Sprintf("answer to question %d", i))},
		}})
		lines = append(lines, string(b))
	}
	data := filepath.Join(dir, "test.jsonl")
	os.WriteFile(data, []byte(strings.Join(lines, "\n")), 0o644)
	evals := filepath.Join(dir, "evals")

	args := []string{"eval", "run", "--data", data, "--candidates", "gpt-student,gpt-4o-mini", "--reference", "gpt-4o-mini", "--judge", "gpt-4o", "--out", evals}
	out := foundry(t, env, args...)
	id := regexp.MustCompile(`# Eval (eval-[0-9a-f]+)`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("eval run printed no report:\n%s", out)
	}
	// The student misses questions 1 and 3 of 10; every verdict is a tie.
	for _, want := range []string{"| gpt-student | 10 | 0 | 0.800 [", "| gpt-4o-mini (reference) | 10 | 0 | 1.000 [1.000, 1.000]", "| gpt-student | 0 | 0 | 10 | 0 | 0 | 0.500 ["} {
		if !strings.Contains(out, want) {
			t.Errorf("eval run output lacks %q:\n%s", want, out)
		}
	}
	calls := len(up.Requests())
	if again := foundry(t, env, args...); !strings.Contains(again, "# Eval "+id[1]) || len(up.Requests()) != calls {
		t.Errorf("re-run made %d new upstream calls, want 0 (resume)", len(up.Requests())-calls)
	}
	if show := foundry(t, env, "eval", "show", id[1], "--out", evals); !strings.Contains(show, "0.800 [") {
		t.Errorf("eval show:\n%s", show)
	}
	if list := foundry(t, env, "eval", "list", "--out", evals); !strings.Contains(list, id[1]) {
		t.Errorf("eval list:\n%s", list)
	}
	if cmp := foundry(t, env, "eval", "compare", id[1], id[1], "--out", evals); !strings.Contains(cmp, "| gpt-student | exact match | 0.800 [") {
		t.Errorf("eval compare:\n%s", cmp)
	}

	resp, err := http.Get(p.url + "/api/v1/costs?by=route")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		By   string            `json:"by"`
		Rows []json.RawMessage `json:"rows"`
	}
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if resp.StatusCode != 200 || rep.By != "route" {
		t.Errorf("GET /api/v1/costs: %d %+v", resp.StatusCode, rep)
	}

	// Stopping the gateway flushes capture; then the costs are all there:
	// 20 answers, 2 judge calls for each of the 2 differing pairs and 1 for
	// each of the 8 identical ones (both orders are one verdict): 32 calls.
	p.cmd.Process.Signal(syscall.SIGINT)
	if err := <-p.exited; err != nil {
		t.Fatalf("serve exit: %v\n%s", err, p.stderr)
	}
	costs := foundry(t, env, "costs", "--since", "1h", "--student", "gpt-student", "--teacher", "gpt-4o-mini",
		"--training-cost", "5", "--gpu-hourly", "2.5", "--student-throughput", "1500")
	for _, want := range []string{"gpt-4o-mini", "gpt-student", "total", `Break-even: student "gpt-student" instead of teacher "gpt-4o-mini"`, "break-even after"} {
		if !strings.Contains(costs, want) {
			t.Errorf("costs lacks %q:\n%s", want, costs)
		}
	}
	js := foundry(t, env, "costs", "--since", "1h", "--by", "route", "--json")
	var r struct {
		Total struct{ Requests int } `json:"total"`
	}
	if err := json.Unmarshal([]byte(js), &r); err != nil || r.Total.Requests != 32 {
		t.Errorf("costs --json: %v, total %d requests, want 32:\n%s", err, r.Total.Requests, js)
	}
}
