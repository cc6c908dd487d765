package model

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/safetensors"
)

func TestParseConfig(t *testing.T) {
	base := `"vocab_size":300,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4`
	for _, tc := range []struct {
		name, json, wantErr string
		check               func(t *testing.T, c Config)
	}{
		{name: "llama defaults", json: `{"model_type":"llama",` + base + `}`, check: func(t *testing.T, c Config) {
			if c.NumKVHeads != 4 || c.HeadDim != 16 || c.RopeTheta != 10000 || c.TieWordEmbeddings || c.QKVBias {
				t.Errorf("%+v", c)
			}
		}},
		{name: "qwen2 bias", json: `{"model_type":"qwen2","num_key_value_heads":2,` + base + `}`, check: func(t *testing.T, c Config) {
			if !c.QKVBias || c.OBias || c.NumKVHeads != 2 {
				t.Errorf("%+v", c)
			}
		}},
		{name: "qwen3 head_dim", json: `{"model_type":"qwen3","head_dim":32,"tie_word_embeddings":true,` + base + `}`, check: func(t *testing.T, c Config) {
			if !c.QKNorm || c.HeadDim != 32 || !c.TieWordEmbeddings {
				t.Errorf("%+v", c)
			}
		}},
		{name: "transformers 5 rope_parameters", json: `{"model_type":"llama","rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":500000.0},` + base + `}`, check: func(t *testing.T, c Config) {
			if c.RopeTheta != 500000 || c.RopeScaling.Type != "linear" {
				t.Errorf("%+v", c)
			}
		}},
		{name: "eos list", json: `{"model_type":"llama","eos_token_id":[2,7],` + base + `}`, check: func(t *testing.T, c Config) {
			if len(c.EOSTokenIDs) != 2 {
				t.Errorf("%+v", c)
			}
		}},
		{name: "unknown arch", json: `{"model_type":"gpt2",` + base + `}`, wantErr: `unsupported architecture model_type "gpt2"`},
		{name: "dynamic rope", json: `{"model_type":"llama","rope_scaling":{"type":"dynamic","factor":2.0},` + base + `}`, wantErr: `unsupported rope_scaling type "dynamic"`},
		{name: "bad gqa", json: `{"model_type":"llama","num_key_value_heads":3,` + base + `}`, wantErr: "not a multiple"},
		{name: "gelu", json: `{"model_type":"llama","hidden_act":"gelu",` + base + `}`, wantErr: "unsupported hidden_act"},
		{name: "missing layers", json: `{"model_type":"llama","vocab_size":3}`, wantErr: "must be positive"},
		{name: "not json", json: `{`, wantErr: "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestLlama3InvFreq(t *testing.T) {
	c := Config{HeadDim: 16, RopeTheta: 10000, RopeScaling: RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 64}}
	inv, scale := c.InvFreq()
	if scale != 1 || len(inv) != 8 {
		t.Fatal(inv, scale)
	}
	if inv[0] != 1 { // wavelength 2π < 16: unchanged
		t.Errorf("inv[0] = %v", inv[0])
	}
	last := 1 / math.Pow(10000, 14.0/16) / 8 // long wavelength: divided by factor
	if math.Abs(inv[7]-last) > 1e-12 {
		t.Errorf("inv[7] = %v, want %v", inv[7], last)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := RandomConfig()
	if err := WriteRandom(dir, cfg, 7); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()

	// Config edited: more heads than the weights have.
	b := []byte(strings.Replace(string(mustRead(t, filepath.Join(dir, "config.json"))), `"intermediate_size": 128`, `"intermediate_size": 256`, 1))
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "layer 0 gate_proj weight has shape [128 64] but config.json implies [256 64]") {
		t.Fatalf("edited config: err = %v", err)
	}

	// Missing tensor.
	dir2 := t.TempDir()
	WriteRandom(dir2, cfg, 7)
	f, _ := safetensors.Open(filepath.Join(dir2, "model.safetensors"))
	var ts []safetensors.Tensor
	for _, n := range f.Names() {
		if n == "model.norm.weight" {
			continue
		}
		info, raw, _ := f.Raw(n)
		ts = append(ts, safetensors.Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: append([]byte(nil), raw...)})
	}
	f.Close()
	safetensors.Write(filepath.Join(dir2, "model.safetensors"), ts, nil)
	if _, err := Load(dir2); err == nil || !strings.Contains(err.Error(), `no tensor "model.norm.weight"`) {
		t.Fatalf("missing tensor: err = %v", err)
	}

	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no config.json") {
		t.Fatalf("empty dir: err = %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
