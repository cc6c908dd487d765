package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/engine/npy"
	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/train/lora"
	"github.com/spf13/cobra"
)

func newEngineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "engine",
		Short: "Run models on Foundry's built-in engine (backend info, raw logits)",
	}
	cmd.AddCommand(newEngineInfoCmd(), newEngineLogitsCmd())
	return cmd
}

// engineLogger writes the engine's log lines to stderr, keeping stdout for results.
func engineLogger(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
}

func newEngineInfoCmd() *cobra.Command {
	var backend string
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show which backend the engine would use, and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := engine.NewBackend(cmd.Context(), engine.BackendOptions{Config: backend, Logger: engineLogger(cmd)})
			if err != nil {
				return err
			}
			defer b.Finalize()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "backend: %s (%s)\n", b.Config, b.Description())
			fmt.Fprintf(out, "dtype:   %s\n", b.DType)
			fmt.Fprintf(out, "why:     %s\n", b.Reason)
			fmt.Fprintf(out, "models:  %s (config.json model_type)\n", strings.Join(model.SupportedTypes(), ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&backend, "backend", "", `backend: "go", "xla:cuda" or "xla:cpu" (default: automatic)`)
	return cmd
}

func newEngineLogitsCmd() *cobra.Command {
	var (
		ids, out, backend, adapter string
	)
	cmd := &cobra.Command{
		Use:   "logits MODEL_DIR --ids 1,2,3 --out FILE.npy",
		Short: "Write the model's float32 logits [len(ids), vocab] for token ids to a .npy file",
		Long: "Runs the full-sequence forward pass of the model in MODEL_DIR (config.json and safetensors;\n" +
			"no tokenizer needed) over the given token ids and writes the next-token logits at every\n" +
			"position as a float32 NumPy array, for comparison with other implementations.\n" +
			"With --adapter, a PEFT LoRA adapter is applied on top of the model.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out FILE.npy is required")
			}
			tokens, err := parseIDs(ids)
			if err != nil {
				return err
			}
			m, err := model.Load(args[0])
			if err != nil {
				return err
			}
			defer m.Close()
			b, err := engine.NewBackend(cmd.Context(), engine.BackendOptions{Config: backend, Logger: engineLogger(cmd)})
			if err != nil {
				return err
			}
			defer b.Finalize()
			// One slot whose context is the sequence: no cache beyond what it needs.
			opts := engine.RunnerOptions{Slots: 1, MaxContext: max(len(tokens), 2)}
			var a *lora.Adapter
			if adapter != "" {
				if a, err = lora.LoadAdapter(adapter, m.Config); err != nil {
					return err
				}
				opts.MaxAdapters, opts.MaxRank = 1, a.LoRA.Rank
			}
			r, err := engine.NewRunner(cmd.Context(), b, m, opts)
			if err != nil {
				return err
			}
			index := 0
			if a != nil {
				if index, err = r.LoadAdapter(filepath.Base(filepath.Clean(adapter)), a); err != nil {
					return err
				}
			}
			rows, err := r.Logits(tokens, index)
			if err != nil {
				return fmt.Errorf("logits of %s: %w", args[0], err)
			}
			v := m.Config.VocabSize
			data := make([]float32, 0, len(rows)*v)
			for _, row := range rows {
				data = append(data, row...)
			}
			if err := npy.WriteFile(out, []int{len(rows), v}, data); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: float32 [%d, %d]\n", out, len(rows), v)
			return nil
		},
	}
	cmd.Flags().StringVar(&ids, "ids", "", "comma-separated token ids, e.g. 1,2,3 (required)")
	cmd.Flags().StringVar(&out, "out", "", "the .npy file to write (required)")
	cmd.Flags().StringVar(&backend, "backend", "", `backend: "go", "xla:cuda" or "xla:cpu" (default: automatic)`)
	cmd.Flags().StringVar(&adapter, "adapter", "", "a PEFT LoRA adapter directory to apply over the model (served unmerged, as foundry serve does)")
	return cmd
}

// parseIDs reads "1,2,3" (spaces allowed) as token ids.
func parseIDs(s string) ([]int32, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("--ids is required: comma-separated token ids, e.g. --ids 1,2,3")
	}
	var ids []int32
	for _, f := range strings.Split(s, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("--ids: %q is not a token id (want comma-separated non-negative integers, e.g. 1,2,3)", f)
		}
		ids = append(ids, int32(id))
	}
	return ids, nil
}
