package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/upstreamtest"
)

// foundryFails runs the foundry CLI like foundry does, expecting it to
// fail, and returns its stderr.
func foundryFails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "FOUNDRY_TEST_AS_MAIN=1"), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("foundry %v succeeded, want a failure:\n%s", args, out)
	}
	return string(out)
}

// TestFlywheelThroughCLI is the acceptance, on CPU, through the CLI
// and the HTTP API only: train a tiny adapter, serve its base, deploy the
// adapter without a restart, evaluate it against a local teacher, send it
// 10% of a route with a cascade to the teacher on a JSON schema, and print
// the costs with a break-even.
func TestFlywheelThroughCLI(t *testing.T) {
	base := byteLevelModelDir(t, "qwen2")
	tc := `{"eos_token": "<|sx|>", "chat_template": "{% for m in messages %}<|sxx|>{{ m.role }}\n{{ m.content }}<|sx|>\n{% endfor %}{% if add_generation_prompt %}<|sxx|>assistant\n{% endif %}"}`
	if err := os.WriteFile(filepath.Join(base, "tokenizer_config.json"), []byte(tc), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A small support task: the answer is a JSON object.
	intents := []string{"refund", "shipping", "login", "billing"}
	var train, test strings.Builder
	for i := range 12 {
		intent := intents[i%len(intents)]
		line, _ := json.Marshal(api.FineTuneExample{Messages: []api.Message{
			{Role: "user", Content: api.TextContent(fmt.Sprintf("ticket %d about %s", i, intent))},
			{Role: "assistant", Content: api.TextContent(`{"intent":"` + intent + `"}`)},
		}})
		w := &train
		if i >= 8 {
			w = &test
		}
		w.Write(line)
		w.WriteByte('\n')
	}
	trainData, testData := filepath.Join(dir, "train.jsonl"), filepath.Join(dir, "test.jsonl")
	os.WriteFile(trainData, []byte(train.String()), 0o644)
	os.WriteFile(testData, []byte(test.String()), 0o644)

	// 1. Train a LoRA adapter.
	adapter := filepath.Join(dir, "student")
	out := foundry(t, []string{"GOMLX_BACKEND=go"}, "train", "--base", base, "--data", trainData, "--out", adapter, "--backend", "go",
		"--max-steps", "2", "--rank", "4", "--alpha", "8", "--batch", "4", "--val-fraction", "0", "--targets", "q,v")
	if !strings.Contains(out, "adapter: "+adapter) {
		t.Fatalf("train output:\n%s", out)
	}

	// 2. Serve the base (with adapter places) beside a local teacher.
	up := upstreamtest.NewOpenAI(t)
	up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		if req.Model == "gpt-4o" { // the judge
			return upstreamtest.Reply{Content: `{"winner": "tie", "reason": "same"}`}
		}
		return upstreamtest.Reply{Content: `{"intent":"refund"}`}
	})
	db := filepath.Join(dir, "foundry.db")
	env := []string{"OPENAI_BASE_URL=" + up.URL, "OPENAI_API_KEY=sk-up", "ANTHROPIC_API_KEY=", "ANTHROPIC_BASE_URL=",
		"FOUNDRY_DB=" + db, "FOUNDRY_ADMIN_KEY=", "GOMLX_BACKEND=go"}
	p := startServe(t, env, "--model", "base="+base, "--max-adapters", "2")
	env = append(env, "FOUNDRY_ADDR="+strings.TrimPrefix(p.url, "http://"))

	// 3. Deploy the adapter without a restart; bad deployments are refused.
	if out := foundry(t, env, "deploy", "student", "--base", "base", "--adapter", adapter); !strings.Contains(out, "deployed student over base (rank 4)") {
		t.Fatalf("deploy:\n%s", out)
	}
	other := filepath.Join(dir, "other")
	writeRandomAdapter(t, filepath.Join("..", "..", "model", "testdata", "qwen3"), other, 2, 4)
	for _, c := range []struct{ args, want string }{
		{"other --base base --adapter " + other, "another base"},
		{"other --base nope --adapter " + adapter, `no engine model "nope"`},
		{"other --base base --adapter " + dir, "not a PEFT adapter directory"},
		{"student --base base --adapter " + adapter, "already serves"},
	} {
		if got := foundryFails(t, env, append([]string{"deploy"}, strings.Fields(c.args)...)...); !strings.Contains(got, c.want) {
			t.Errorf("deploy %s: %s; want an error saying %q", c.args, got, c.want)
		}
	}
	if list := foundry(t, env, "deploy", "list"); !strings.Contains(list, "student  base") || !strings.Contains(list, "1/2") {
		t.Errorf("deploy list:\n%s", list)
	}
	if code, body, hdr := p.chat(t, `{"model":"student","temperature":0,"max_tokens":4,"messages":[{"role":"user","content":"ticket 1"}]}`); code != 200 || hdr.Get("X-Foundry-Provider") != "engine" {
		t.Fatalf("the deployed adapter by its bare name: %d %s", code, body)
	}

	// 4. Evaluate it against the teacher.
	evals := filepath.Join(dir, "evals")
	out = foundry(t, env, "eval", "run", "--data", testData, "--candidates", "student,gpt-4o-mini", "--reference", "gpt-4o-mini",
		"--judge", "gpt-4o", "--base-url", p.url+"/v1", "--max-tokens", "8", "--temperature", "0", "--out", evals)
	if !strings.Contains(out, "# Eval eval-") || !strings.Contains(out, "| student |") || !strings.Contains(out, "| gpt-4o-mini (reference) |") {
		t.Fatalf("eval run report:\n%s", out)
	}

	// 5. Route 10% of support-bot to it, cascading to the teacher when its
	// answer fails the schema. Sticky by user: the split is deterministic.
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(`arms:
  - {name: teacher, model: gpt-4o-mini, weight: 90}
  - {name: student, model: student, weight: 10, escalate_to: gpt-4o-mini}
sticky: {key: user}
validate:
  json_schema: {type: object, required: [intent], properties: {intent: {type: string}}}
`), 0o644)
	if out := foundry(t, env, "route", "set", "support-bot", "--file", policy, "--no-check-models", "-m", "canary the student"); !strings.Contains(out, "version 1") {
		t.Fatalf("route set:\n%s", out)
	}
	waitRouteLive(t, p.url, "support-bot", 1)
	const calls = 60
	var wg sync.WaitGroup
	errs := make(chan string, calls)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < calls; i += 6 {
				body := fmt.Sprintf(`{"model":"support-bot","user":"u%d","temperature":0,"max_tokens":8,"messages":[{"role":"user","content":"ticket %d"}]}`, i, i)
				if code, b, _ := p.chat(t, body); code != 200 || !strings.Contains(b, `{\"intent\":\"refund\"}`) {
					errs <- fmt.Sprintf("call %d: %d %s", i, code, b)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	// The deployment comes off without a restart too.
	if out := foundry(t, env, "deploy", "rm", "student"); !strings.Contains(out, "undeployed student") {
		t.Fatalf("deploy rm:\n%s", out)
	}
	if list := foundry(t, env, "deploy", "list"); strings.Contains(list, "student") {
		t.Errorf("deploy list after rm:\n%s", list)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.exited; err != nil {
		t.Fatalf("serve exit: %v\n%s", err, p.stderr)
	}

	// The student's arm took some traffic, and each of its schema failures
	// escalated to the teacher (the tiny student does not write JSON).
	escalated := records(t, env, "--tag", "cascade:escalated")
	if len(escalated) == 0 {
		t.Fatal("no cascade:escalated records: the student arm got no traffic, or its failures did not escalate")
	}
	for _, r := range escalated {
		if r.Model != "student" {
			t.Errorf("escalated record for model %q, want student", r.Model)
		}
	}
	t.Logf("%d of %d calls went to the student and escalated", len(escalated), calls)
	if len(escalated) > calls/3 {
		t.Errorf("%d of %d calls went to the 10%% student arm", len(escalated), calls)
	}

	// 6. The costs, with the break-even of training the student.
	costs := foundry(t, env, "costs", "--since", "1h", "--student", "student", "--teacher", "gpt-4o-mini", "--job", adapter,
		"--gpu-hourly", "0.1", "--student-throughput", "1000")
	if !strings.Contains(costs, `Break-even: student "student" instead of teacher "gpt-4o-mini"`) {
		t.Errorf("costs prints no break-even:\n%s", costs)
	}
	t.Logf("costs:\n%s", costs)
}

// records returns the stored records matching foundry logs' filter args.
func records(t *testing.T, env []string, args ...string) []gateway.RecordJSON {
	t.Helper()
	var out []gateway.RecordJSON
	for _, l := range strings.Split(strings.TrimSpace(foundry(t, env, append([]string{"logs", "--json", "--limit", "1000"}, args...)...)), "\n") {
		if l == "" {
			continue
		}
		var r gateway.RecordJSON
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("logs --json line %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

// waitRouteLive waits until the gateway at url serves version of route
// (it reloads policies the CLI stores every few seconds).
func waitRouteLive(t *testing.T, url, route string, version int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url + "/api/v1/routes/" + route)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Stats *struct {
				Version int `json:"version"`
			} `json:"stats"`
		}
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if r.Stats != nil && r.Stats.Version >= version {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("route %s version %d not live after 20s", route, version)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, not guessing a delay
	}
}
