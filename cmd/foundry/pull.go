package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/foundryhq/foundry/hub"
)

func newPullCmd() *cobra.Command {
	var (
		include, exclude []string
		cacheDir         string
		dataset          bool
	)
	cmd := &cobra.Command{
		Use:   "pull [--dataset] ORG/NAME[@rev]",
		Short: "Download a model or dataset from the Hugging Face hub into the shared cache",
		Long: `Download a model from the Hugging Face hub into the cache huggingface_hub uses
(models--ORG--NAME/{blobs,snapshots,refs}), resuming partial downloads and
verifying checksums, and print the snapshot directory.

With --dataset (or a name written datasets/ORG/NAME), pull a dataset repo into
datasets--ORG--NAME/ instead, every file unless --include narrows it. A dataset
spec reads its files from the cache with a source such as
  file: hf://datasets/ORG/NAME@rev/data/train.parquet
(see "foundry dataset --help").

rev is a branch, tag or commit sha (default main). Without --include, the
files Foundry's engine loads are fetched: ` + strings.Join(hub.DefaultInclude, " ") + `
(not under ` + strings.Join(hub.DefaultExclude, " ") + `); PyTorch *.bin/*.pt weights
only when the repo has no .safetensors.

Environment: HF_ENDPOINT (hub URL), HF_TOKEN or $HF_HOME/token (for gated and
private models), HF_HUB_CACHE or HF_HOME (cache location), HF_HUB_OFFLINE=1
(cache only).`,
		Example: `  foundry pull HuggingFaceTB/SmolLM2-135M-Instruct
  foundry pull Qwen/Qwen2.5-0.5B-Instruct@main --include '*.json' --include '*.safetensors'
  MODEL=$(foundry pull org/name 2>/dev/null)
  foundry pull --dataset HuggingFaceH4/no_robots --include 'data/*.parquet'
  foundry pull datasets/tatsu-lab/alpaca@main`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repoType := hub.RepoTypeModel
			if dataset || strings.HasPrefix(args[0], "datasets/") {
				repoType = hub.RepoTypeDataset
			}
			parse := hub.ParseRepoRef
			if repoType == hub.RepoTypeDataset {
				parse = hub.ParseDatasetRef
			}
			repo, rev, err := parse(args[0])
			if err != nil {
				return err
			}
			c, err := hub.New(hub.Options{
				RepoType: repoType,
				CacheDir: cacheDir,
				Include:  include,
				Exclude:  exclude,
				Progress: cmd.ErrOrStderr(), // stdout carries only the path, for scripts
			})
			if err != nil {
				return err
			}
			dir, err := c.Snapshot(cmd.Context(), repo, rev)
			if err != nil {
				return fmt.Errorf("pull %s: %w", args[0], err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&include, "include", nil, "only files matching these globs (repeatable or comma-separated; '*' matches '/' too)")
	f.StringSliceVar(&exclude, "exclude", nil, "skip files matching these globs (repeatable or comma-separated)")
	f.BoolVar(&dataset, "dataset", false, "pull a dataset repo (also implied by a name written datasets/ORG/NAME)")
	f.StringVar(&cacheDir, "cache-dir", "", "hub cache directory (default $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)")
	return cmd
}
