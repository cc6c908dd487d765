package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/foundryhq/foundry/train"
)

func newMergeCmd() *cobra.Command {
	var base, adapter, out string
	cmd := &cobra.Command{
		Use:   "merge --base DIR --adapter DIR --out DIR",
		Short: "Fold a PEFT LoRA adapter into its base model and write a plain safetensors model",
		Long: `Write the base model with every adapted projection replaced by W + scale·B·A
(model.safetensors, each tensor in its original dtype) and the base's config,
tokenizer and generation files, so the result loads wherever a Hugging Face
model does. The adapter may come from foundry train or from PEFT.`,
		Example: `  foundry merge --base ./tiny-llama --adapter ./support-v1 --out ./tiny-llama-support`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if base == "" || adapter == "" || out == "" {
				return errors.New("merge needs --base, --adapter and --out")
			}
			if err := train.Merge(base, adapter, out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "base", "", "base model directory")
	f.StringVar(&adapter, "adapter", "", "PEFT adapter directory (adapter_config.json, adapter_model.safetensors)")
	f.StringVar(&out, "out", "", "directory for the merged model")
	return cmd
}
