package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/hub"
	providerengine "github.com/foundryhq/foundry/provider/engine"
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
	stats, raw  bool
}

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run MODEL PROMPT",
		Short: "Generate text from a local model on the built-in engine",
		Long: "Answers PROMPT with MODEL: a directory (config.json, safetensors, tokenizer.json and\n" +
			"tokenizer_config.json), or a Hugging Face id ORG/NAME[@rev] taken from the huggingface_hub cache\n" +
			"or downloaded into it (HF_HUB_OFFLINE=1 forbids the download), streaming the text to stdout. The prompt is sent as one user message\n" +
			"through the model's chat template (--raw, or a model without one: continued as plain text);\n" +
			"greedy unless --temperature is set.",
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
	f.BoolVar(&o.raw, "raw", false, "continue PROMPT as plain text instead of sending it as a user message through the chat template")
	return cmd
}

func runModel(cmd *cobra.Command, name, prompt string, o runOptions) error {
	ctx := cmd.Context()
	dir, err := hub.ResolveModel(ctx, name)
	if err != nil {
		return fmt.Errorf("find model %q: %w", name, err)
	}
	b, err := engine.NewBackend(ctx, engine.BackendOptions{Config: o.backend, Logger: engineLogger(cmd)})
	if err != nil {
		return err
	}
	defer b.Finalize()
	m, err := providerengine.Load(ctx, b, name, dir, providerengine.LoadOptions{
		Runner: engine.RunnerOptions{Slots: 1, MaxContext: o.maxContext}, Logger: engineLogger(cmd)})
	if err != nil {
		if strings.Contains(err.Error(), "tokenizer.json") {
			return fmt.Errorf("%w; `foundry engine logits` runs a model without a tokenizer", err)
		}
		return err
	}
	defer m.Engine.Close()
	start := time.Now()
	var out runOutput
	if o.raw || (m.Tokenizer.ChatTemplate == "" && len(m.Tokenizer.ChatTemplates) == 0) {
		if !o.raw {
			fmt.Fprintln(cmd.ErrOrStderr(), "note: the model has no chat template; continuing the prompt as plain text")
		}
		out, err = runRaw(cmd, m, prompt, o)
	} else {
		out, err = runChat(cmd, m, prompt, o)
	}
	fmt.Fprintln(cmd.OutOrStdout())
	if err != nil {
		return err
	}
	if o.stats {
		total := time.Since(start)
		rate := 0.0
		if n := out.usage.CompletionTokens; n > 1 && total > out.first {
			rate = float64(n-1) / (total - out.first).Seconds()
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%d prompt + %d completion tokens, finish %s; first token after %s, then %.1f tokens/s (%s)\n",
			out.usage.PromptTokens, out.usage.CompletionTokens, out.finish, out.first.Round(time.Millisecond), rate, b.Config)
	}
	return nil
}

type runOutput struct {
	usage  engine.Usage
	finish string
	first  time.Duration // until the first token
}

// runChat sends the prompt as one user message through the engine
// provider: the chat template and request mapping the gateway uses.
func runChat(cmd *cobra.Command, m providerengine.Model, prompt string, o runOptions) (runOutput, error) {
	p, err := providerengine.New(providerengine.Options{Models: []providerengine.Model{m}})
	if err != nil {
		return runOutput{}, err
	}
	req := &api.ChatRequest{Model: m.Name, Messages: []api.Message{{Role: "user", Content: api.TextContent(prompt)}},
		Temperature: &o.temperature, MaxTokens: &o.maxTokens, Stop: o.stop, Stream: true,
		StreamOptions: &api.StreamOptions{IncludeUsage: true}, Extra: api.Extra{}}
	if o.topP > 0 {
		req.TopP = &o.topP
	}
	if o.seed >= 0 {
		req.Seed = &o.seed
	}
	if o.topK > 0 {
		req.Extra["top_k"] = json.RawMessage(strconv.Itoa(o.topK))
	}
	if o.minP > 0 {
		req.Extra["min_p"] = json.RawMessage(strconv.FormatFloat(o.minP, 'g', -1, 64))
	}
	start := time.Now()
	st, err := p.ChatStream(cmd.Context(), req)
	if err != nil {
		return runOutput{}, err
	}
	defer st.Close()
	var out runOutput
	for {
		ch, err := st.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if ch.Usage != nil {
			out.usage = engine.Usage{PromptTokens: ch.Usage.PromptTokens, CompletionTokens: ch.Usage.CompletionTokens}
		}
		for _, c := range ch.Choices {
			if c.Delta.Content != nil && *c.Delta.Content != "" {
				if out.first == 0 {
					out.first = time.Since(start)
				}
				fmt.Fprint(cmd.OutOrStdout(), *c.Delta.Content)
			}
			if c.FinishReason != nil {
				out.finish = *c.FinishReason
			}
		}
	}
}

// runRaw continues the prompt as plain text, with the tokenizer's special
// tokens (e.g. BOS) added.
func runRaw(cmd *cobra.Command, m providerengine.Model, prompt string, o runOptions) (runOutput, error) {
	ids := m.Tokenizer.Encode(prompt, tokenizer.EncodeOptions{AddSpecial: true})
	if len(ids) == 0 {
		return runOutput{}, errors.New("the prompt encodes to no tokens; give some text")
	}
	req := engine.Request{Prompt: make([]int32, len(ids)), MaxTokens: o.maxTokens, Stop: o.stop,
		Sampling: engine.Sampling{Temperature: o.temperature, TopK: o.topK, TopP: o.topP, MinP: o.minP}}
	for i, id := range ids {
		req.Prompt[i] = int32(id)
	}
	if o.seed >= 0 {
		s := uint64(o.seed)
		req.Sampling.Seed = &s
	}
	start := time.Now()
	stream, err := m.Engine.Generate(cmd.Context(), req)
	if err != nil {
		return runOutput{}, err
	}
	var out runOutput
	for t := range stream.Tokens() {
		if out.first == 0 {
			out.first = time.Since(start)
		}
		fmt.Fprint(cmd.OutOrStdout(), t.Text)
	}
	res, err := stream.Wait()
	if err != nil {
		return out, err
	}
	out.usage, out.finish = res.Usage, string(res.FinishReason)
	return out, nil
}
