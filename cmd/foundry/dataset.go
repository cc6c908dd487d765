package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/foundryhq/foundry/config"
	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/dataset/judgestage"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/store"
)

func newDatasetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dataset",
		Short: "Curate captured traffic and imported files into versioned fine-tuning datasets",
		Long: `A dataset build selects captured calls (and/or imports files), validates, deduplicates,
scrubs PII and splits them, and stores the result under the data dir as
datasets/NAME/HASH12/ (train.jsonl, val.jsonl, test.jsonl in OpenAI fine-tuning
format, and manifest.json with the spec, the funnel, a token histogram and a sample).

A file of a Hugging Face dataset repo is named hf://datasets/ORG/NAME[@rev]/PATH
(with --file, or file: in a spec; PATH may be a glob such as data/train-*.parquet
for a sharded split); it is downloaded into the hub cache that
"foundry pull --dataset" and huggingface_hub use (resumed, checksummed), or read
from it offline (HF_HUB_OFFLINE=1). HF_ENDPOINT and HF_TOKEN are honoured.

A spec may add a judge and best-of-n resampling (after validate, before dedupe):

  judge: {model: gpt-4o-mini, rubric: "...", min_score: 7, concurrency: 8}
  best_of_n: {model: gpt-4o, n: 4, temperature: 0.8, bar: 8, only_if_below: 7}

A pairwise judge keeps the rows whose answer beats another model's answer to the
same prompt, judged twice with the answers' positions swapped (a judge that
favours a position gives a tie, not a win):

  judge: {model: gpt-4o, mode: pairwise, against: gpt-4o-mini, keep: win}   # or keep: win_or_tie

and best-of-n can pick its best sample by a pairwise tournament instead of
scores, replacing a row's answer only where the winner beats it:

  best_of_n: {model: gpt-4o, judge_model: gpt-4o-mini, n: 4, select: pairwise}

Their calls go through the local gateway (FOUNDRY_ADDR, or addr in --config;
base_url: in a section names another OpenAI-compatible endpoint, api_key_env:
the variable holding its key) with the key in FOUNDRY_API_KEY (a virtual key
from "foundry keys create"), else the admin key (FOUNDRY_ADMIN_KEY). Verdicts,
teacher samples and reference answers are cached in DATA_DIR/judge-cache.db (cache: in a section
moves it), so a build that failed part-way resumes when run again without
paying twice. See 'go doc github.com/foundryhq/foundry/dataset/judgestage'.`,
	}
	cmd.AddCommand(newDatasetBuildCmd(), newDatasetListCmd(), newDatasetShowCmd(), newDatasetExportCmd(), newDatasetDiffCmd())
	return cmd
}

func dataDirFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "data-dir", dataDir(), "Foundry's data directory, holding datasets/ (FOUNDRY_DATA)")
}

// dataDir is where datasets, evals and training runs live by default:
// $FOUNDRY_DATA, else ./foundry-data. (FOUNDRY_DATA_DIR is read too, for
// scripts written before the two were one.)
func dataDir() string {
	return cmp.Or(os.Getenv("FOUNDRY_DATA"), os.Getenv("FOUNDRY_DATA_DIR"), dataset.DefaultDataDir)
}

func newDatasetBuildCmd() *cobra.Command {
	var (
		specPath, cfgPath, dataDir, name string
		tokenizerRef                     string
		files, schemaFile                []string
		splitFlag, stratify, dedupeKey   string
		threshold                        float64
		jsonAnswers, noDedupe, noScrub   bool
		maxTokens, minChars              int
		filters                          = map[string]*[]string{}
	)
	cmd := &cobra.Command{
		Use:   "build (--spec FILE.yaml | --name NAME [filters])",
		Short: "Build a dataset version from the store and/or files",
		Example: `  foundry dataset build --spec support.yaml
  foundry dataset build --name support-v1 --route support-bot --tag prod --min-score 0.7 --since 30d
  foundry dataset build --name mixed --file scavenged/alpaca.jsonl --route support-bot --json-answers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var spec *dataset.Spec
			if specPath != "" {
				var err error
				if spec, err = dataset.ReadSpec(specPath); err != nil {
					return err
				}
			} else {
				spec = &dataset.Spec{Name: name}
				v := url.Values{}
				selecting := false
				for k, vals := range filters {
					for _, x := range *vals {
						v.Add(k, x)
						selecting = true
					}
				}
				if selecting || len(files) == 0 {
					q, err := gateway.ParseQuery(v, time.Now())
					if err != nil {
						return fmt.Errorf("dataset build: %w", err)
					}
					sel := dataset.Selection{Routes: q.Routes, Models: q.Models, Providers: q.Providers, Project: q.Project,
						Since: q.Since, Until: q.Until, Tags: q.Tags, Metadata: q.Metadata, HasFeedback: q.HasFeedback, MinScore: q.MinScore}
					spec.Sources = append(spec.Sources, dataset.SourceSpec{Store: &sel})
				}
				for _, f := range files {
					spec.Sources = append(spec.Sources, dataset.SourceSpec{File: f})
				}
				spec.Validate = dataset.ValidateSpec{JSON: jsonAnswers, MaxTokens: maxTokens, MinChars: minChars}
				if len(schemaFile) > 0 {
					b, err := os.ReadFile(schemaFile[0])
					if err != nil {
						return fmt.Errorf("dataset build: --schema: %w", err)
					}
					spec.Validate.Schema = string(b)
				}
				spec.Dedupe = dataset.DedupeSpec{Threshold: threshold, Field: dedupeKey}
				if noDedupe {
					spec.Skip = append(spec.Skip, "dedupe")
				}
				if noScrub {
					spec.Skip = append(spec.Skip, "scrub")
				}
				if splitFlag != "" {
					var p [3]float64
					parts := strings.Split(splitFlag, ",")
					if len(parts) != 3 {
						return fmt.Errorf("dataset build: --split %q: want TRAIN,VAL,TEST such as 0.8,0.1,0.1", splitFlag)
					}
					for i, s := range parts {
						f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
						if err != nil {
							return fmt.Errorf("dataset build: --split %q: %w", splitFlag, err)
						}
						p[i] = f
					}
					spec.Split = dataset.SplitSpec{Train: p[0], Val: p[1], Test: p[2]}
				}
				spec.Split.Stratify = stratify
				if err := spec.Check(); err != nil {
					return fmt.Errorf("dataset build: %w (or give --spec FILE.yaml)", err)
				}
			}
			if tokenizerRef != "" {
				spec.Tokenizer = tokenizerRef
			}
			var st store.Store
			for _, s := range spec.Sources {
				if s.Store != nil && st == nil {
					var err error
					if st, err = storeFromConfig(cmd, cfgPath); err != nil {
						return err
					}
					defer st.Close()
				}
			}
			// Decoding JSON makes much short-lived garbage and little live heap
			// (dedupe's index lives off the heap): a higher GC target costs ~30 MiB
			// and saves ~20% CPU (bench/dataset).
			debug.SetGCPercent(400)
			total := int64(-1)
			var err error
			if st != nil {
				total, _ = dataset.CountSource(ctx, spec, st)
			}
			var plugins map[string]dataset.Plugin
			if spec.Judge != nil || spec.BestOfN != nil {
				if plugins, err = judgePlugins(cfgPath, dataDir, newLogger(cmd, false)); err != nil {
					return err
				}
			}
			progress, done := newProgress(cmd.ErrOrStderr(), total)
			built, err := dataset.Build(ctx, spec, dataset.BuildOptions{Store: st, DataDir: dataDir, Progress: progress,
				Plugins: plugins, Logger: newLogger(cmd, false), Hub: dataset.HubOptions{Progress: cmd.ErrOrStderr()}})
			done()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if built.Existed {
				fmt.Fprintf(out, "unchanged: the rows equal version %s (%s)\n", built.Manifest.Ref(), built.Dir)
			} else {
				fmt.Fprintf(out, "built %s in %s\n", built.Manifest.Ref(), built.Dir)
			}
			printFunnel(out, built.Manifest)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&specPath, "spec", "", "YAML dataset spec (see 'go doc github.com/foundryhq/foundry/dataset Spec'); other flags but --tokenizer are ignored")
	f.StringVarP(&cfgPath, "config", "c", "", "config file (for the store location; FOUNDRY_DB overrides)")
	dataDirFlag(cmd, &dataDir)
	f.StringVar(&name, "name", "", "dataset name (without --spec)")
	f.StringArrayVar(&files, "file", nil, "import a dataset file (OpenAI JSONL, ShareGPT, Alpaca or Parquet; or hf://datasets/ORG/NAME[@rev]/PATH; repeatable)")
	f.StringArrayVar(&schemaFile, "schema", nil, "JSON Schema file the answers must match (implies --json-answers)")
	f.BoolVar(&jsonAnswers, "json-answers", false, "drop answers that are not valid JSON")
	f.IntVar(&maxTokens, "max-tokens", 0, "drop answers longer than this many tokens (chars/4 unless --tokenizer)")
	f.StringVar(&tokenizerRef, "tokenizer", "", "count real tokens (histogram, token bounds) with this tokenizer: a directory holding tokenizer.json or a Hugging Face model id (also with --spec, overriding its tokenizer:)")
	f.IntVar(&minChars, "min-chars", 0, "drop answers shorter than this many characters")
	f.Float64Var(&threshold, "threshold", 0, "near-duplicate Jaccard threshold (default 0.8)")
	f.StringVar(&dedupeKey, "dedupe-on", "", "text compared by dedupe: dialogue (default), conversation, prompt or answer")
	f.BoolVar(&noDedupe, "no-dedupe", false, "skip deduplication")
	f.BoolVar(&noScrub, "no-scrub", false, "skip PII scrubbing")
	f.StringVar(&splitFlag, "split", "", "train,val,test proportions (default 0.8,0.1,0.1)")
	f.StringVar(&stratify, "stratify", "", "stratify the split by route, model, provider, source, tag or metadata.KEY")
	for _, fl := range []struct{ name, help string }{
		{"since", "calls from this time: RFC 3339, a date, Unix seconds, or a duration ago (24h, 7d)"},
		{"until", "calls before this time"},
		{"model", "upstream model (repeat or comma-separate)"},
		{"provider", "provider name"},
		{"route", "model name the app asked for"},
		{"tag", "calls carrying all these tags"},
		{"feedback", "true: only calls with feedback; false: only without"},
		{"min-score", "feedback score at least this"},
		{"project", "project of the virtual key"},
		{"metadata", "key=value metadata"},
	} {
		vals := new([]string)
		filters[strings.ReplaceAll(fl.name, "-", "_")] = vals
		f.StringArrayVar(vals, fl.name, nil, fl.help)
	}
	return cmd
}

// judgePlugins builds the judge and best_of_n stages' plug-ins, calling the
// gateway of the config (FOUNDRY_ADDR) with FOUNDRY_API_KEY, else the admin key.
func judgePlugins(cfgPath, dataDir string, log *slog.Logger) (map[string]dataset.Plugin, error) {
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		return nil, err
	}
	return judgestage.Plugins(judgestage.Options{BaseURL: gatewayURL(cfg.Addr), APIKey: cmp.Or(os.Getenv("FOUNDRY_API_KEY"), cfg.AdminKey),
		DataDir: dataDir, Prices: pricing.New(cfg.Prices), Logger: log}), nil
}

// newProgress returns a progress callback and a function to end it: a bar
// with rate and ETA on a terminal, a plain line every few seconds otherwise.
func newProgress(w io.Writer, total int64) (func(int64), func()) {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			bar := progressbar.NewOptions64(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("reading"),
				progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
				progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
			return func(n int64) { bar.Set64(n) }, func() { bar.Finish() }
		}
	}
	start, last := time.Now(), time.Now()
	return func(n int64) {
		if time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		rate := float64(n) / time.Since(start).Seconds()
		if total > 0 {
			fmt.Fprintf(w, "read %d of %d rows (%.0f rows/s)\n", n, total, rate)
		} else {
			fmt.Fprintf(w, "read %d rows (%.0f rows/s)\n", n, rate)
		}
	}, func() {}
}

func printFunnel(w io.Writer, m *dataset.Manifest) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tIN\tOUT\tDROPPED\tWHY / FOUND")
	for _, st := range m.Funnel {
		var why []string
		for _, d := range st.Dropped {
			s := fmt.Sprintf("%s: %d", d.Reason, d.Count)
			if len(d.Samples) > 0 {
				ex := d.Samples[0]
				id := ex.ID
				if ex.Line > 0 {
					id = fmt.Sprintf("%s:%d", ex.Source, ex.Line)
				}
				s += fmt.Sprintf(" (e.g. %s", id)
				if ex.Detail != "" {
					s += ": " + ex.Detail
				}
				s += ")"
			}
			why = append(why, s)
		}
		keys := make([]string, 0, len(st.Counters))
		for k := range st.Counters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			why = append(why, fmt.Sprintf("%s=%d", k, st.Counters[k]))
		}
		first := ""
		if len(why) > 0 {
			first = why[0]
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", st.Stage, st.In, st.Out, st.In-st.Out, first)
		for _, x := range why[min(1, len(why)):] {
			fmt.Fprintf(tw, "\t\t\t\t%s\n", x)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "rows: train %d, val %d, test %d; tokens per example (%s): min %d, mean %.0f, max %d\n",
		m.Rows["train"], m.Rows["val"], m.Rows["test"], m.Tokens.Label(), m.Tokens.Min, float64(m.Tokens.Total)/float64(max(m.Tokens.Count, 1)), m.Tokens.Max)
	if n := m.Tokens.TemplateFallbacks; n > 0 {
		fmt.Fprintf(w, "  (%d rows the chat template could not render were counted from their text)\n", n)
	}
}

func newDatasetListCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stored dataset versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			vs, err := dataset.List(dataDir)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME@VERSION\tCREATED\tTRAIN\tVAL\tTEST\tMEAN TOKENS\tSOURCES")
			for _, v := range vs {
				m := v.Manifest
				var srcs []string
				for _, s := range m.Spec.Sources {
					if s.Store != nil {
						srcs = append(srcs, "store")
					} else {
						srcs = append(srcs, s.File)
					}
				}
				mean := fmt.Sprint(m.Tokens.Total / max(m.Tokens.Count, 1))
				if m.Tokens.Estimated() {
					mean = "≈" + mean // chars/4, not a tokenizer's count
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", m.Ref(), m.CreatedAt.Local().Format("2006-01-02 15:04"), m.Rows["train"], m.Rows["val"], m.Rows["test"], mean, strings.Join(srcs, ","))
			}
			tw.Flush()
			if len(vs) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "no datasets under %s (build one with foundry dataset build)\n", dataDir)
			}
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir)
	return cmd
}

func newDatasetShowCmd() *cobra.Command {
	var (
		dataDir string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "show NAME[@VERSION]",
		Short: "Show a version's funnel, sizes and token histogram",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := dataset.Open(dataDir, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(v.Manifest)
			}
			m := v.Manifest
			fmt.Fprintf(out, "%s  (sha256 %s)\ncreated %s, stored in %s\n\n", m.Ref(), m.Hash, m.CreatedAt.Local().Format(time.RFC3339), v.Dir)
			printFunnel(out, m)
			fmt.Fprintf(out, "\ntokens per example (%s):\n", m.Tokens.Label())
			for _, b := range m.Tokens.Buckets {
				bar := strings.Repeat("#", int(40*b.Count/max(m.Tokens.Count, 1)))
				fmt.Fprintf(out, "  %6d-%-6d %7d %s\n", b.Lo, b.Hi, b.Count, bar)
			}
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the whole manifest as JSON")
	return cmd
}

func newDatasetExportCmd() *cobra.Command {
	var dataDir, format, split, outPath string
	cmd := &cobra.Command{
		Use:   "export NAME[@VERSION]",
		Short: "Write a version's rows as OpenAI JSONL, ShareGPT, Alpaca or Parquet",
		Example: `  foundry dataset export support-v1 --format openai --split train --out train.jsonl
  foundry dataset export support-v1@3f2a9c --format parquet --out support.parquet`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := dataset.Open(dataDir, args[0])
			if err != nil {
				return err
			}
			if split == "all" {
				split = ""
			}
			var w io.Writer = cmd.OutOrStdout()
			var file *os.File
			if outPath != "-" {
				if file, err = os.Create(outPath); err != nil {
					return fmt.Errorf("export: %w", err)
				}
				defer file.Close()
				w = file
			} else if format == dataset.FormatParquet {
				return fmt.Errorf("export: Parquet is binary; give --out FILE")
			}
			n, skipped, err := v.Export(cmd.Context(), split, format, w)
			if err != nil {
				return fmt.Errorf("export %s: %w", v.Manifest.Ref(), err)
			}
			if file != nil {
				if err := file.Close(); err != nil {
					return fmt.Errorf("export: %w", err)
				}
			}
			msg := fmt.Sprintf("exported %d rows of %s as %s to %s", n, v.Manifest.Ref(), format, outPath)
			if skipped > 0 {
				msg += fmt.Sprintf(" (%d rows skipped: %s cannot hold them, e.g. tool calls in alpaca)", skipped, format)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), msg)
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir)
	cmd.Flags().StringVar(&format, "format", dataset.FormatOpenAI, "openai, sharegpt, alpaca or parquet")
	cmd.Flags().StringVar(&split, "split", "train", "train, val, test or all")
	cmd.Flags().StringVarP(&outPath, "out", "o", "-", "output file (- for stdout)")
	return cmd
}

func newDatasetDiffCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:     "diff A B",
		Short:   "Count rows added, removed and moved between splits from version A to B",
		Example: `  foundry dataset diff support-v1@3f2a9c support-v1`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := dataset.Open(dataDir, args[0])
			if err != nil {
				return err
			}
			b, err := dataset.Open(dataDir, args[1])
			if err != nil {
				return err
			}
			d, err := dataset.Diff(cmd.Context(), a, b)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s -> %s: %d added, %d removed, %d moved between splits\n", a.Manifest.Ref(), b.Manifest.Ref(), d.Added, d.Removed, d.Moved)
			for _, s := range d.AddedSample {
				fmt.Fprintf(out, "+ %s\n", s)
			}
			for _, s := range d.RemovedSample {
				fmt.Fprintf(out, "- %s\n", s)
			}
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir)
	return cmd
}
