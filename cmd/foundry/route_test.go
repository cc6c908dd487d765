package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/foundryhq/foundry/upstreamtest"
)

func runRoute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRouteCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// route set/show/history/rollback against a SQLite store, models checked
// against the environment's OpenAI-compatible provider.
func TestRouteCLI(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FOUNDRY_DB", filepath.Join(dir, "foundry.db"))
	up := upstreamtest.NewOpenAI(t) // lists gpt-4o and gpt-4o-mini
	t.Setenv("OPENAI_BASE_URL", up.URL)
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("ANTHROPIC_API_KEY", "")
	t.Setenv("USER", "alice")
	if out, err := runRoute(t, "set", "support-bot", "--canary", "gpt-4o=90,gpt-4o-mini=10", "--sticky", "user", "-m", "first canary"); err != nil ||
		!strings.Contains(out, "version 1") || !strings.Contains(out, "gpt-4o 90%; gpt-4o-mini 10%; sticky by user") {
		t.Fatalf("set --canary: %v\n%s", err, out)
	}
	if _, err := runRoute(t, "set", "support-bot", "--canary", "gpt-4o=0,gpt-4o-mini=0"); err == nil || !strings.Contains(err.Error(), "weights sum to 0") {
		t.Fatalf("set with zero weights: %v, want refused", err)
	}
	policy := filepath.Join(dir, "p.yaml")
	os.WriteFile(policy, []byte("arms:\n  - name: student\n    model: gpt-4o-mini\n    escalate_to: gpt-4o\nvalidate:\n  regex: '^\\{'\n"), 0o644)
	if out, err := runRoute(t, "set", "support-bot", "-f", policy, "-m", "cascade"); err != nil || !strings.Contains(out, "version 2") ||
		!strings.Contains(out, "→ gpt-4o on failed validation") {
		t.Fatalf("set -f: %v\n%s", err, out)
	}
	if out, err := runRoute(t, "show", "support-bot"); err != nil || !strings.Contains(out, "version 2, by alice") || !strings.Contains(out, `"escalate_to": "gpt-4o"`) {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if out, err := runRoute(t, "rollback", "support-bot", "-m", "too many escalations"); err != nil || !strings.Contains(out, "version 3: rollback from version 2 to version 1: too many escalations") {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	out, err := runRoute(t, "history", "support-bot")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "first canary") || !strings.Contains(lines[3], "rollback from version 2") {
		t.Fatalf("history:\n%s", out)
	}
	if _, err := runRoute(t, "set", "other", "--canary", "no-such=1"); err == nil || !strings.Contains(err.Error(), `does not list "no-such"`) {
		t.Fatalf("set with an unknown model: %v, want refused", err)
	}
}

// foundry serve serves a route set with the CLI, and its API changes it live.
func TestServeRoutes(t *testing.T) {
	up := upstreamtest.NewOpenAI(t)
	db := filepath.Join(t.TempDir(), "foundry.db")
	env := []string{"OPENAI_BASE_URL=" + up.URL, "OPENAI_API_KEY=sk-test-upstream", "ANTHROPIC_API_KEY=", "FOUNDRY_DB=" + db, "FOUNDRY_ADMIN_KEY="}
	foundry(t, env, "route", "set", "support-bot", "--canary", "gpt-4o=0,gpt-4o-mini=1", "--actor", "ci")
	p := startServe(t, env)
	code, body, _ := p.chat(t, `{"model":"support-bot","messages":[{"role":"user","content":"hi"}]}`)
	if code != 200 || !strings.Contains(body, `"model":"gpt-4o-mini"`) {
		t.Fatalf("route served: %d %s", code, body)
	}
	req, _ := http.NewRequest("PUT", p.url+"/api/v1/routes/support-bot?actor=api-test", strings.NewReader("arms: [{model: gpt-4o}]"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"version":2`) {
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
	code, body, _ = p.chat(t, `{"model":"support-bot","messages":[{"role":"user","content":"hi"}]}`)
	if code != 200 || !strings.Contains(body, `"model":"gpt-4o"`) {
		t.Fatalf("after PUT: %d %s", code, body)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}
	hist := foundry(t, env, "route", "history", "support-bot")
	if !strings.Contains(hist, "ci") || !strings.Contains(hist, "api-test") {
		t.Fatalf("history:\n%s", hist)
	}
}
