package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/config"
	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/eval"
	"github.com/foundryhq/foundry/judge"
	"github.com/foundryhq/foundry/pricing"
)

func newEvalCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate models on a test split through the gateway: task metrics, judge win rate, latency, cost",
	}
	cmd.PersistentFlags().StringVar(&out, "out", filepath.Join(dataDir(), "evals"), "directory holding the evals, one subdirectory per eval id (default $FOUNDRY_DATA/evals)")
	cmd.AddCommand(newEvalRunCmd(&out), newEvalShowCmd(&out), newEvalCompareCmd(&out), newEvalListCmd(&out))
	return cmd
}

func newEvalRunCmd(out *string) *cobra.Command {
	var (
		cfgPath, data, ds, dataDir, reference, judgeModel, rubric, baseURL, apiKey, id string
		candidates                                                                     []string
		concurrency, maxTokens, samples                                                int
		temperature                                                                    float64
		seed                                                                           int64
		verbose                                                                        bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run candidates over a test split (resumes: the same command again asks only what is missing)",
		Example: `  foundry eval run --data test.jsonl --candidates student,gpt-4o-mini --reference gpt-4o-mini --judge gpt-4o
  foundry eval run --dataset support --candidates support-v3,gpt-4o-mini --reference gpt-4o-mini`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := config.Load(cfgPath, nil)
			if err != nil {
				return err
			}
			path, label, err := evalData(data, ds, dataDir)
			if err != nil {
				return err
			}
			examples, err := eval.ReadExamples(path)
			if err != nil {
				return err
			}
			if baseURL == "" {
				baseURL = gatewayURL(cfg.Addr)
			}
			if apiKey == "" {
				apiKey = os.Getenv("FOUNDRY_API_KEY")
			}
			if apiKey == "" {
				apiKey = cfg.AdminKey
			}
			log := newLogger(cmd, verbose)
			prices := pricing.New(cfg.Prices)
			o := eval.Options{ID: id, Dir: *out, Data: label, Chatter: eval.NewHTTP(baseURL, apiKey, "eval"), Candidates: candidates,
				Reference: reference, Rubric: rubric, Concurrency: concurrency, MaxTokens: maxTokens, Seed: seed, Samples: samples,
				Prices: prices, Logger: log}
			if temperature >= 0 {
				o.Temperature = api.Ptr(temperature)
			}
			if judgeModel != "" {
				if err := os.MkdirAll(*out, 0o755); err != nil {
					return fmt.Errorf("create %s: %w", *out, err)
				}
				cache, err := judge.OpenCache(filepath.Join(*out, "judge-cache.db"))
				if err != nil {
					return err
				}
				defer cache.Close()
				o.Judge, err = judge.New(judge.Options{Chatter: eval.NewHTTP(baseURL, apiKey, "judge,eval"), Model: judgeModel, Cache: cache,
					Concurrency: concurrency, Seed: seed, Prices: prices, Logger: log})
				if err != nil {
					return err
				}
			}
			p := newCountProgress(cmd.ErrOrStderr(), "eval")
			o.Progress = p.update
			s, err := eval.Run(ctx, examples, o)
			p.finish()
			if s != nil {
				dir := filepath.Join(*out, s.ID)
				if werr := eval.WriteMarkdown(cmd.OutOrStdout(), s); werr != nil {
					err = errors.Join(err, werr)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "\neval %s: %s, %s\n", s.ID, filepath.Join(dir, eval.HTMLFile), filepath.Join(dir, eval.SummaryFile))
			}
			if err != nil {
				return fmt.Errorf("%w (run the same command again to resume)", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "config file (gateway address, admin key, prices)")
	f.StringVar(&data, "data", "", "test examples: a JSONL file of OpenAI fine-tuning lines")
	f.StringVar(&ds, "dataset", "", "or a dataset version NAME[@HASH]: its test split")
	f.StringVar(&dataDir, "data-dir", dataset.DefaultDataDir, "where datasets are stored (with --dataset)")
	f.StringSliceVar(&candidates, "candidates", nil, "models to evaluate, comma-separated (gateway model names, routes or deployed adapters)")
	f.StringVar(&reference, "reference", "", "the candidate the judge compares the others with (e.g. the teacher)")
	f.StringVar(&judgeModel, "judge", "", "judge model for pairwise win rates against --reference (none: no win rates)")
	f.StringVar(&rubric, "rubric", "", "what a good answer is, for the judge")
	f.StringVar(&baseURL, "base-url", "", "OpenAI-compatible endpoint (default: the local gateway at FOUNDRY_ADDR)")
	f.StringVar(&apiKey, "api-key", "", "API key for --base-url (default: FOUNDRY_API_KEY, else the admin key)")
	f.StringVar(&id, "id", "", "eval id (default: derived from the data, candidates, reference and judge, so a re-run resumes)")
	f.IntVar(&concurrency, "concurrency", 8, "calls in flight at once")
	f.IntVar(&maxTokens, "max-tokens", 0, "max_tokens of each answer (0: none sent)")
	f.Float64Var(&temperature, "temperature", 0, "sampling temperature sent to candidates (negative: send none)")
	f.Int64Var(&seed, "seed", 0, "seed sent to candidates and the judge, and of the bootstrap intervals")
	f.IntVar(&samples, "samples", 8, "answers shown side by side in the reports")
	f.BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	return cmd
}

// evalData resolves --data or --dataset to a JSONL file and a label.
func evalData(data, ds, dataDir string) (path, label string, err error) {
	switch {
	case data != "" && ds != "":
		return "", "", errors.New("eval: give --data FILE or --dataset NAME, not both")
	case data != "":
		return data, data, nil
	case ds != "":
		v, err := dataset.Open(dataDir, ds)
		if err != nil {
			return "", "", err
		}
		return filepath.Join(v.Dir, "test.jsonl"), v.Manifest.Ref() + " (test)", nil
	}
	return "", "", errors.New("eval: no test data: give --data test.jsonl (OpenAI fine-tuning lines) or --dataset NAME")
}

// gatewayURL is the /v1 base of the local gateway listening on addr.
func gatewayURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/v1"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/v1"
}

func newEvalShowCmd(out *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Print an eval's report (Markdown), or its summary as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := eval.Load(*out, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				b, err := os.ReadFile(filepath.Join(*out, s.ID, eval.SummaryFile))
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			if err := eval.WriteMarkdown(cmd.OutOrStdout(), s); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "\nHTML report: %s\n", filepath.Join(*out, s.ID, eval.HTMLFile))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print summary.json")
	return cmd
}

func newEvalCompareCmd(out *string) *cobra.Command {
	return &cobra.Command{
		Use:   "compare ID1 ID2",
		Short: "Compare two evals metric by metric (changes beyond the 95% intervals marked *)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := eval.Load(*out, args[0])
			if err != nil {
				return err
			}
			b, err := eval.Load(*out, args[1])
			if err != nil {
				return err
			}
			return eval.Compare(cmd.OutOrStdout(), a, b)
		},
	}
}

func newEvalListCmd(out *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the stored evals",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := eval.List(*out)
			if err != nil {
				return err
			}
			for _, id := range ids {
				s, err := eval.Load(*out, id)
				if err != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t(unreadable: %v)\n", id, err)
					continue
				}
				names := make([]string, 0, len(s.Candidates))
				for _, c := range s.Candidates {
					names = append(names, c.Name)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%d examples\t%s\n", id, s.Updated.Local().Format("2006-01-02 15:04"), s.Examples, strings.Join(names, ","))
			}
			return nil
		},
	}
}

// countProgress shows done/total with rate and ETA: one redrawn line on a
// terminal, a line per 10% otherwise.
type countProgress struct {
	mu       sync.Mutex
	w        io.Writer
	what     string
	tty      bool
	start    time.Time
	lastDec  int
	lastDraw time.Time
	drawn    bool
}

func newCountProgress(w io.Writer, what string) *countProgress {
	p := &countProgress{w: w, what: what, start: time.Now(), lastDec: -1}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

func (p *countProgress) update(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if total <= 0 {
		return
	}
	el := time.Since(p.start)
	rate := float64(done) / el.Seconds()
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
	}
	line := fmt.Sprintf("%s %d/%d (%.0f%%) %.1f/s ETA %s", p.what, done, total, 100*float64(done)/float64(total), rate, eta)
	if p.tty {
		if done < total && time.Since(p.lastDraw) < 100*time.Millisecond {
			return
		}
		p.lastDraw, p.drawn = time.Now(), true
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		return
	}
	if dec := done * 10 / total; dec != p.lastDec {
		p.lastDec = dec
		fmt.Fprintln(p.w, line)
	}
}

func (p *countProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
