package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
	"github.com/foundryhq/foundry/train"
	"github.com/foundryhq/foundry/train/lora"
	"github.com/foundryhq/foundry/upstreamtest"
)

// TestMain lets the test binary act as the foundry binary in a child
// process (FOUNDRY_TEST_AS_MAIN=1), so the serve tests run the real command
// — signals, exit codes, the process boundary — without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("FOUNDRY_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// foundryProc is `foundry serve` running in a child process.
type foundryProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *lockedBuffer
	exited chan error
}

// lockedBuffer is the child's stderr, written by a reader goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// foundry runs the foundry CLI in a child process with env added, and
// returns its stdout; it fails the test on a non-zero exit.
func foundry(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "FOUNDRY_TEST_AS_MAIN=1"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("foundry %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// startServe starts `foundry serve` and waits until it logs that it listens.
func startServe(t *testing.T, env []string, args ...string) *foundryProc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], append([]string{"serve"}, args...)...)
	cmd.Env = append(append(os.Environ(), "FOUNDRY_TEST_AS_MAIN=1", "FOUNDRY_ADDR="+addr), env...)
	p := &foundryProc{cmd: cmd, url: "http://" + addr, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			p.stderr.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), "foundry gateway listening") {
				signalled = true
				close(ready)
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		<-scanned
		p.exited <- err
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
	})
	select {
	case <-ready:
	case err := <-p.exited:
		t.Fatalf("foundry serve exited before listening: %v\n%s", err, p.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("foundry serve did not start in 60s:\n%s", p.stderr)
	}
	return p
}

func (p *foundryProc) chat(t *testing.T, body string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", p.url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestServeZeroConfigCapturesAndLogs(t *testing.T) {
	up := upstreamtest.NewOpenAI(t)
	ant := upstreamtest.NewAnthropic(t)
	db := filepath.Join(t.TempDir(), "foundry.db")
	env := []string{"OPENAI_BASE_URL=" + up.URL, "OPENAI_API_KEY=sk-test-upstream", "ANTHROPIC_BASE_URL=" + ant.URL,
		"ANTHROPIC_API_KEY=sk-ant-test", "FOUNDRY_DB=" + db, "FOUNDRY_ADMIN_KEY="}
	p := startServe(t, env)

	code, body, hdr := p.chat(t, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ship it"}]}`, "X-Foundry-Tags", "cli,e2e")
	if code != 200 || !strings.Contains(body, "echo: ship it") {
		t.Fatalf("%d %s", code, body)
	}
	id := hdr.Get("X-Request-Id")
	code, body, _ = p.chat(t, `{"model":"claude-haiku-4-5","stream":true,"messages":[{"role":"user","content":"salut"}]}`)
	if code != 200 || !strings.Contains(body, "salut") || !strings.Contains(body, "[DONE]") {
		t.Fatalf("anthropic stream: %d %s", code, body)
	}
	// Arbitrary names go to the OpenAI-compatible server (it is not api.openai.com).
	if code, body, _ = p.chat(t, `{"model":"llama3.2:1b","messages":[{"role":"user","content":"x"}]}`); code != 200 {
		t.Fatalf("default provider: %d %s", code, body)
	}

	// SIGTERM: drains and flushes capture, exits 0.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}
	if strings.Contains(p.stderr.String(), "sk-test-upstream") || strings.Contains(p.stderr.String(), "sk-ant-test") {
		t.Fatal("an upstream key appeared in the logs")
	}

	out := foundry(t, []string{"FOUNDRY_DB=" + db}, "logs", "--json", "--tag", "e2e")
	var r gateway.RecordJSON
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
		t.Fatalf("logs --json: %v\n%s", err, out)
	}
	if r.ID != id || r.PromptTokens == 0 || r.CompletionTokens == 0 || r.CostUSD <= 0 || r.LatencyMS <= 0 || strings.Join(r.Tags, ",") != "cli,e2e" {
		t.Fatalf("logged record %+v", r)
	}
	table := foundry(t, []string{"FOUNDRY_DB=" + db}, "logs")
	if !strings.Contains(table, "anthropic/claude-haiku-4-5") || !strings.Contains(table, "200 sse") || strings.Count(table, "\n") != 4 {
		t.Fatalf("logs table:\n%s", table)
	}
	export := filepath.Join(t.TempDir(), "ft.jsonl")
	foundry(t, []string{"FOUNDRY_DB=" + db}, "logs", "--export", export)
	b, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("export has %d lines:\n%s", len(lines), b)
	}
	for _, l := range lines {
		var ex api.FineTuneExample
		if err := json.Unmarshal([]byte(l), &ex); err != nil || len(ex.Messages) != 2 || ex.Messages[1].Role != "assistant" || ex.Messages[1].Content.String() == "" {
			t.Fatalf("export line %s (%v)", l, err)
		}
	}
}

func TestServeRefusesPublicBindWithoutAuth(t *testing.T) {
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), "FOUNDRY_TEST_AS_MAIN=1", "FOUNDRY_ADDR=0.0.0.0:0", "FOUNDRY_ADMIN_KEY=", "FOUNDRY_DB="+filepath.Join(t.TempDir(), "x.db"))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to listen") || !strings.Contains(string(out), "FOUNDRY_ADMIN_KEY") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

func TestKeysCommands(t *testing.T) {
	up := upstreamtest.NewOpenAI(t)
	db := filepath.Join(t.TempDir(), "foundry.db")
	env := []string{"FOUNDRY_DB=" + db}
	secret := strings.TrimSpace(foundry(t, env, "keys", "create", "--name", "ci", "--project", "acme"))
	if !strings.HasPrefix(secret, "fdy-") {
		t.Fatalf("secret %q", secret)
	}
	list := foundry(t, env, "keys", "list")
	if !strings.Contains(list, "acme") || strings.Contains(list, secret) || !strings.Contains(list, "active") {
		t.Fatalf("list:\n%s", list)
	}
	p := startServe(t, append(env, "OPENAI_BASE_URL="+up.URL, "FOUNDRY_ADMIN_KEY="))
	if code, _, _ := p.chat(t, `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`); code != 401 {
		t.Fatalf("without key: %d", code)
	}
	if code, body, _ := p.chat(t, `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`, "Authorization", "Bearer "+secret); code != 200 {
		t.Fatalf("with key: %d %s", code, body)
	}
	id := regexp.MustCompile(`key_[0-9a-f]+`).FindString(list)
	foundry(t, env, "keys", "revoke", id)
	if !strings.Contains(foundry(t, env, "keys", "list"), "revoked") {
		t.Fatal("key not revoked")
	}
}

// TestSIGKILLLosesAtMostTheLastFlushInterval kills the gateway without
// warning while traffic flows and checks that every call answered more than
// one flush interval (plus scheduling slack) before the kill is in the store.
func TestSIGKILLLosesAtMostTheLastFlushInterval(t *testing.T) {
	up := upstreamtest.NewOpenAI(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "foundry.db")
	cfg := filepath.Join(dir, "foundry.yaml")
	const flush = 50 * time.Millisecond
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("capture:\n  flush_interval: %s\n", flush)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"OPENAI_BASE_URL=" + up.URL, "FOUNDRY_DB=" + db, "FOUNDRY_ADMIN_KEY="}
	p := startServe(t, env, "--config", cfg)

	type answered struct {
		id string
		at time.Time
	}
	var done []answered
	stop := time.Now().Add(1500 * time.Millisecond)
	for i := 0; time.Now().Before(stop); i++ {
		code, _, hdr := p.chat(t, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"n`+strconv.Itoa(i)+`"}]}`)
		if code != 200 {
			t.Fatalf("call %d: %d", i, code)
		}
		done = append(done, answered{hdr.Get("X-Request-Id"), time.Now()})
	}
	killedAt := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited

	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	slack := flush + 500*time.Millisecond // writer scheduling and the batch insert itself
	var lost, lostOld int
	for _, a := range done {
		if _, err := st.GetRecord(context.Background(), a.id); errors.Is(err, store.ErrNotFound) {
			lost++
			if killedAt.Sub(a.at) > slack {
				lostOld++
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d calls answered; %d not in the store after SIGKILL (all within the last %v)", len(done), lost, slack)
	if lostOld > 0 {
		t.Fatalf("%d records answered more than %v before SIGKILL were lost", lostOld, slack)
	}
	if len(done) < 20 {
		t.Fatalf("only %d calls made; the test needs traffic", len(done))
	}
}

func TestServeLocalModelOnEngine(t *testing.T) {
	dir := byteLevelModelDir(t, "qwen2")
	tc := `{"eos_token": "<|sx|>", "chat_template": "{% for m in messages %}<|sxx|>{{ m.role }}\n{{ m.content }}<|sx|>\n{% endfor %}{% if add_generation_prompt %}<|sxx|>assistant\n{% endif %}"}`
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(tc), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "foundry.db")
	p := startServe(t, []string{"FOUNDRY_DB=" + db, "FOUNDRY_ADMIN_KEY=", "OPENAI_BASE_URL=", "OPENAI_API_KEY=", "ANTHROPIC_API_KEY=",
		"ANTHROPIC_BASE_URL=", "GOMLX_BACKEND=go"}, "--model", "tiny="+dir)
	code, body, hdr := p.chat(t, `{"model":"tiny","temperature":0,"max_tokens":8,"messages":[{"role":"user","content":"Hello"}]}`)
	if code != 200 || hdr.Get("X-Foundry-Provider") != "engine" {
		t.Fatalf("%d %s", code, body)
	}
	var resp api.ChatResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.Usage == nil || resp.Usage.PromptTokens != 24 || resp.Usage.CompletionTokens == 0 {
		t.Fatalf("response %s (%v)", body, err)
	}
	// Greedy: the stream says the same thing. (The random tiny model emits
	// bytes that are not UTF-8; where the replacement characters fall may
	// differ between one decode and a streamed one, so they are ignored.)
	code, sbody, _ := p.chat(t, `{"model":"engine/tiny","temperature":0,"stream":true,"stream_options":{"include_usage":true},"max_tokens":8,"messages":[{"role":"user","content":"Hello"}]}`)
	streamed, _, err := api.ReassembleSSE(strings.NewReader(sbody))
	text := func(r *api.ChatResponse) string {
		return strings.ReplaceAll(r.Choices[0].Message.Content.String(), "\uFFFD", "")
	}
	if code != 200 || err != nil || text(streamed) != text(&resp) || streamed.Usage == nil || streamed.Usage.CompletionTokens != resp.Usage.CompletionTokens {
		t.Fatalf("stream %d %v (want %q):\n%s", code, err, text(&resp), sbody)
	}
	if code, body, _ := p.chat(t, `{"model":"tiny","max_tokens":8,"n":2,"messages":[{"role":"user","content":"Hello"}]}`); code != 400 || !strings.Contains(body, `"error"`) {
		t.Fatalf("n=2: %d %s", code, body)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.exited; err != nil {
		t.Fatalf("exit: %v\n%s", err, p.stderr)
	}
	out := foundry(t, []string{"FOUNDRY_DB=" + db}, "logs", "--json", "--provider", "engine")
	if n := strings.Count(strings.TrimSpace(out), "\n") + 1; n != 3 || !strings.Contains(out, `"model":"tiny"`) {
		t.Fatalf("engine calls in logs (%d):\n%s", n, out)
	}
}

// TestServeAdaptersOnEngine serves a base model and a LoRA adapter over it
// (--adapter NAME=BASE:DIR) beside the merged model: the adapter answers as
// the merged model does, and differently from the base, also while both
// share a batch; an adapter for another base is refused at start.
func TestServeAdaptersOnEngine(t *testing.T) {
	base := float32ModelDir(t, byteLevelModelDir(t, "qwen2"))
	tc := `{"eos_token": "<|sx|>", "chat_template": "{% for m in messages %}<|sxx|>{{ m.role }}\n{{ m.content }}<|sx|>\n{% endfor %}{% if add_generation_prompt %}<|sxx|>assistant\n{% endif %}"}`
	if err := os.WriteFile(filepath.Join(base, "tokenizer_config.json"), []byte(tc), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	adapter, merged := filepath.Join(dir, "adapter"), filepath.Join(dir, "merged")
	writeRandomAdapter(t, base, adapter, 4, 8)
	if err := lora.Merge(base, adapter, merged); err != nil {
		t.Fatal(err)
	}
	env := []string{"FOUNDRY_DB=" + filepath.Join(t.TempDir(), "foundry.db"), "FOUNDRY_ADMIN_KEY=", "OPENAI_BASE_URL=", "OPENAI_API_KEY=",
		"ANTHROPIC_API_KEY=", "ANTHROPIC_BASE_URL=", "GOMLX_BACKEND=go"}
	p := startServe(t, env, "--model", "tiny="+base, "--model", "merged="+merged, "--adapter", "tuned=tiny:"+adapter)
	defer func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-p.exited; err != nil {
			t.Errorf("exit: %v\n%s", err, p.stderr)
		}
	}()
	// The greedy tokens and their logprobs.
	answer := func(model string) []api.TokenLogprob {
		code, body, hdr := p.chat(t, `{"model":"`+model+`","temperature":0,"max_tokens":8,"logprobs":true,"messages":[{"role":"user","content":"Hello"}]}`)
		var resp api.ChatResponse
		if code != 200 || hdr.Get("X-Foundry-Provider") != "engine" || json.Unmarshal([]byte(body), &resp) != nil ||
			len(resp.Choices) != 1 || resp.Choices[0].Logprobs == nil || len(resp.Choices[0].Logprobs.Content) == 0 {
			t.Fatalf("%s: %d %s", model, code, body)
		}
		return resp.Choices[0].Logprobs.Content
	}
	same := func(a, b []api.TokenLogprob) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i].Token != b[i].Token || math.Abs(a[i].Logprob-b[i].Logprob) > 1e-3 {
				return false
			}
		}
		return true
	}
	tiny, tuned, want := answer("tiny"), answer("engine/tuned"), answer("merged")
	if !same(tuned, want) {
		t.Fatalf("the adapter answers %+v, the merged model %+v", tuned, want)
	}
	if same(tiny, tuned) {
		t.Fatalf("the adapter answers as the base does (%+v): it is not applied", tiny)
	}
	// Base and adapter requests at once, sharing decode steps.
	var wg sync.WaitGroup
	got := make([][]api.TokenLogprob, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = answer([]string{"tiny", "tuned"}[i%2])
		}()
	}
	wg.Wait()
	for i, g := range got {
		if !same(g, [][]api.TokenLogprob{tiny, tuned}[i%2]) {
			t.Errorf("concurrent request %d answered %+v", i, g)
		}
	}

	// Refused at start: an adapter for another base, and one on no model.
	other := filepath.Join(dir, "other")
	writeRandomAdapter(t, filepath.Join("..", "..", "model", "testdata", "qwen3"), other, 2, 4)
	for args, want := range map[string]string{
		"tuned=tiny:" + other: "another base",
		"tuned=nope:" + other: `no engine model "nope"`,
	} {
		cmd := exec.Command(os.Args[0], "serve", "--model", "tiny="+base, "--adapter", args)
		cmd.Env = append(append(os.Environ(), "FOUNDRY_TEST_AS_MAIN=1", "FOUNDRY_ADDR="+freeAddr(t)), env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("--adapter %s: %v, output %s; want an error saying %q", args, err, out, want)
		}
	}
}

// TestServeJobs: the gateway marks a job a killed gateway left running as
// interrupted, serves the jobs API behind the admin key, trains a submitted
// job, and on SIGTERM stops it at a step with a checkpoint, saved as
// interrupted.
func TestServeJobs(t *testing.T) {
	base := byteLevelModelDir(t, "qwen2")
	tc := `{"chat_template": "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"}`
	if err := os.WriteFile(filepath.Join(base, "tokenizer_config.json"), []byte(tc), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	data := filepath.Join(tmp, "chats.jsonl")
	var lines strings.Builder
	for _, w := range []string{"red", "green", "blue", "cyan"} {
		b, _ := json.Marshal(map[string]any{"messages": []map[string]string{{"role": "user", "content": w}, {"role": "assistant", "content": "ok " + w}}})
		lines.Write(append(b, '\n'))
	}
	if err := os.WriteFile(data, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(tmp, "foundry.db")
	st, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := (train.StoreJobs{Store: st}).SaveJob(t.Context(), &train.Job{ID: "job-stale", Status: train.StatusRunning, Runner: "gateway"}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	env := []string{"FOUNDRY_DB=" + db, "FOUNDRY_ADMIN_KEY=admin-secret", "FOUNDRY_DATA=" + filepath.Join(tmp, "data"),
		"OPENAI_BASE_URL=", "OPENAI_API_KEY=", "ANTHROPIC_API_KEY=", "ANTHROPIC_BASE_URL=", "GOMLX_BACKEND=go"}
	p := startServe(t, env)
	call := func(method, path, body, key string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil && json.Unmarshal(b, out) != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode
	}
	if code := call("GET", "/api/v1/jobs", "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("jobs API without the admin key: %d", code)
	}
	var stale train.Job
	if code := call("GET", "/api/v1/jobs/job-stale", "", "admin-secret", &stale); code != 200 || stale.Status != train.StatusInterrupted {
		t.Errorf("a job left running by a killed gateway: %d %s", code, stale.Status)
	}
	body, _ := json.Marshal(map[string]any{"base": base, "data": data, "rank": 2, "batch": 2, "epochs": 5000, "eval_every": 1, "val_fraction": 0, "backend": "go"})
	var j train.Job
	if code := call("POST", "/api/v1/jobs", string(body), "admin-secret", &j); code != http.StatusCreated {
		t.Fatalf("submit: %d %+v", code, j)
	}
	deadline := time.Now().Add(time.Minute)
	for j.Status != train.StatusRunning || j.Step < 1 {
		if time.Now().After(deadline) || (j.Status != train.StatusQueued && j.Status != train.StatusRunning) {
			t.Fatalf("job %s: %s at step %d (%s)\n%s", j.ID, j.Status, j.Step, j.Error, p.stderr)
		}
		call("GET", "/api/v1/jobs/"+j.ID, "", "admin-secret", &j)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}
	st, err = sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := train.StoreJobs{Store: st}.Job(t.Context(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != train.StatusInterrupted || got.Artifacts["checkpoint"] == "" || got.Config.Out != filepath.Join(tmp, "data", "jobs", j.ID) {
		t.Errorf("after SIGTERM: %s, artifacts %v, out %s", got.Status, got.Artifacts, got.Config.Out)
	}
}
