package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/tokenizer"
	"github.com/spf13/cobra"
)

// runOptions are `foundry run`'s flags.
type runOptions struct {
	backend     string
	maxTokens   int
	maxContext  int
	temperature float64
	topK        int
	topP, minP  float64
	seed        int64
	stop        []string
	stats       bool
}

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run MODEL_DIR PROMPT",
		Short: "Generate text from a local model on the built-in engine",
		Long: "Continues PROMPT with the model in MODEL_DIR (config.json, safetensors and tokenizer.json),\n" +
			"streaming the text to stdout. The prompt is encoded as plain text, with the tokenizer's\n" +
			"special tokens (e.g. BOS) added; greedy unless --temperature is set.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModel(cmd, args[0], args[1], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.backend, "backend", "", `backend: "go", "xla:cuda" or "xla:cpu" (default: automatic)`)
	f.IntVar(&o.maxTokens, "max-tokens", 256, "most tokens to generate")
	f.IntVar(&o.maxContext, "max-context", 0, "tokens of context, prompt and completion together (default: min(model's, 2048))")
	f.Float64Var(&o.temperature, "temperature", 0, "sampling temperature; 0 is greedy")
	f.IntVar(&o.topK, "top-k", 0, "sample from the K most likely tokens (0: all)")
	f.Float64Var(&o.topP, "top-p", 0, "nucleus sampling mass (0 or 1: off)")
	f.Float64Var(&o.minP, "min-p", 0, "drop tokens less likely than this fraction of the most likely (0: off)")
	f.Int64Var(&o.seed, "seed", -1, "random seed for sampling (-1: random)")
	f.StringArrayVar(&o.stop, "stop", nil, "stop string (repeatable); the text ends before it")
	f.BoolVar(&o.stats, "stats", false, "print token counts and speed to stderr")
	return cmd
}

func runModel(cmd *cobra.Command, dir, prompt string, o runOptions) error {
	ctx := cmd.Context()
	m, err := model.Load(dir)
	if err != nil {
		return err
	}
	defer m.Close()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return fmt.Errorf("%w; `foundry engine logits` runs a model without a tokenizer", err)
	}
	b, err := engine.NewBackend(ctx, engine.BackendOptions{Config: o.backend, Logger: engineLogger(cmd)})
	if err != nil {
		return err
	}
	defer b.Finalize()
	r, err := engine.NewRunner(ctx, b, m, engine.RunnerOptions{Slots: 1, MaxContext: o.maxContext})
	if err != nil {
		return err
	}
	eng := engine.New(r, engine.Options{Detokenizer: detokenizer(tok), EOS: stopIDs(m.Config, tok), Logger: engineLogger(cmd)})
	defer eng.Close()

	ids := toInt32(tok.Encode(prompt, tokenizer.EncodeOptions{AddSpecial: true}))
	if len(ids) == 0 {
		return errors.New("the prompt encodes to no tokens; give some text")
	}
	req := engine.Request{Prompt: ids, MaxTokens: o.maxTokens, Stop: o.stop,
		Sampling: engine.Sampling{Temperature: o.temperature, TopK: o.topK, TopP: o.topP, MinP: o.minP}}
	if o.seed >= 0 {
		s := uint64(o.seed)
		req.Sampling.Seed = &s
	}
	start := time.Now()
	stream, err := eng.Generate(ctx, req)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	first := time.Duration(0)
	for t := range stream.Tokens() {
		if first == 0 {
			first = time.Since(start)
		}
		fmt.Fprint(out, t.Text)
	}
	res, err := stream.Wait()
	fmt.Fprintln(out)
	if err != nil {
		return err
	}
	if o.stats {
		total := time.Since(start)
		n := res.Usage.CompletionTokens
		rate := 0.0
		if n > 1 && total > first {
			rate = float64(n-1) / (total - first).Seconds()
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%d prompt + %d completion tokens, finish %s; first token after %s, then %.1f tokens/s (%s)\n",
			res.Usage.PromptTokens, n, res.FinishReason, first.Round(time.Millisecond), rate, b.Config)
	}
	return nil
}

// detokenizer adapts a tokenizer to the engine, skipping special tokens.
func detokenizer(tok *tokenizer.Tokenizer) engine.Detokenizer {
	return engine.DecodeFunc(func(ids []int32) (string, error) {
		return tok.Decode(toInt(ids), true), nil
	})
}

// stopIDs are the model's end-of-sequence ids and the tokenizer's stop ids.
func stopIDs(cfg model.Config, tok *tokenizer.Tokenizer) []int32 {
	var out []int32
	seen := map[int]bool{}
	for _, id := range append(append([]int(nil), cfg.EOSTokenIDs...), tok.StopIDs()...) {
		if !seen[id] {
			seen[id] = true
			out = append(out, int32(id))
		}
	}
	return out
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

func toInt(ids []int32) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}
