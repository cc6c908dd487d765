package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestZeroConfigFromEnv(t *testing.T) {
	c, err := Load("", envOf(map[string]string{"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "ANTHROPIC_API_KEY": "sk-ant", "FOUNDRY_ADDR": ":9000"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9000" || c.DB != "./foundry.db" || len(c.Providers) != 2 || c.DefaultProvider != "openai" {
		t.Fatalf("%+v", c)
	}
	if c.Providers[1].Key(envOf(map[string]string{"ANTHROPIC_API_KEY": "sk-ant"})) != "sk-ant" {
		t.Fatal("anthropic key")
	}
	if c.Capture.SpillFile != "./foundry.db.spill.jsonl" || c.Limits.MaxRetries != 2 {
		t.Fatalf("defaults %+v %+v", c.Capture, c.Limits)
	}
	c, err = Load("", envOf(nil))
	if err != nil || len(c.Providers) != 0 {
		t.Fatalf("empty env: %+v %v", c, err)
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`
providers:
  - name: groq
    type: openai
    base_url: https://api.groq.com/openai/v1
    api_key_env: GROQ_API_KEY
    prefixes: [llama-]
    timeouts: {first_byte: 5s}
aliases:
  support-bot: groq/llama-3.1-8b-instant
fallbacks:
  gpt-4o: [groq/llama-3.3-70b]
prices:
  llama-3.1-8b-instant: {input: 0.05, output: 0.08}
limits:
  max_body_bytes: 1024
  max_retries: -1
`), 0o644)
	c, err := Load(good, envOf(map[string]string{"OPENAI_API_KEY": "sk"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Providers[0].Timeouts.FirstByte != 5*time.Second || c.Providers[0].Timeouts.Total != 10*time.Minute {
		t.Fatalf("timeouts %+v", c.Providers[0].Timeouts)
	}
	if c.Limits.MaxRetries != 0 || c.Limits.MaxBodyBytes != 1024 || c.Prices["llama-3.1-8b-instant"].Output != 0.08 || len(c.Providers) != 2 {
		t.Fatalf("%+v", c)
	}

	for name, body := range map[string]string{
		"unknown field": "providers:\n  - name: x\n    bse_url: y\n",
		"wrong type":    "limits:\n  max_retries: many\n",
		"bad type":      "providers:\n  - name: x\n    type: cohere\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		os.WriteFile(p, []byte(body), 0o644)
		_, err := Load(p, envOf(nil))
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if name != "bad type" && !strings.Contains(err.Error(), "[") {
			t.Errorf("%s: error has no line number: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

// The documented example must stay loadable.
func TestExampleConfigLoads(t *testing.T) {
	c, err := Load("../docs/foundry.example.yaml", envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Providers) != 3 || c.Aliases["support-bot"] != "openai/gpt-4o-mini" || c.Retention != 2160*time.Hour ||
		c.Capture.FlushInterval != 100*time.Millisecond || len(c.Fallbacks["support-bot"]) != 2 ||
		len(c.Engine.Models) != 1 || c.Engine.Models[0].Slots != 8 || len(c.Engine.Models[0].Adapters) != 1 {
		t.Fatalf("%+v", c)
	}
}

func TestValidateEngineAdapters(t *testing.T) {
	model := func(name string, adapters ...string) EngineModel {
		m := EngineModel{Name: name, Path: "/m"}
		for _, a := range adapters {
			m.Adapters = append(m.Adapters, EngineAdapter{Name: a, Path: "/a/" + a})
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		models []EngineModel
		want   string // "" for valid
	}{
		{"ok", []EngineModel{model("base", "a", "b"), model("other", "c")}, ""},
		{"adapter named like a model", []EngineModel{model("base", "other"), model("other")}, `"other" is defined twice`},
		{"adapter twice", []EngineModel{model("base", "a"), model("other", "a")}, `"a" is defined twice`},
		{"no path", []EngineModel{{Name: "base", Path: "/m", Adapters: []EngineAdapter{{Name: "a"}}}}, "needs a name"},
		{"too many", []EngineModel{model("base", "a", "b", "c", "d", "e")}, "raise its max_adapters"},
		{"more allowed", []EngineModel{func() EngineModel { m := model("base", "a", "b", "c", "d", "e"); m.MaxAdapters = 5; return m }()}, ""},
		{"negative rank", []EngineModel{func() EngineModel { m := model("base"); m.MaxLoRARank = -1; return m }()}, "max_lora_rank"},
	} {
		c := &Config{Engine: Engine{Models: tc.models}}
		err := c.Validate()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
