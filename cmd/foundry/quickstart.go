package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/foundryhq/foundry/config"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/hub"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/quickstart"
)

// quickstartMarker marks a directory the quick start made, so a re-run may
// empty it (and nothing else).
const quickstartMarker = ".foundry-quickstart"

func newQuickstartCmd() *cobra.Command {
	var (
		dir, base, teacher, backend   string
		noServe, small, full, verbose bool
		seed                          uint64
		hourly                        float64
	)
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Run the whole flywheel offline in a few minutes: traffic, curation, a student, eval, canary, economics",
		Long: `Run Foundry's whole loop on this machine, with no keys and no downloads:

  1. a gateway on SQLite with its dashboard, and a SIMULATED teacher standing in for a
     hosted model (priced like gpt-4o-mini) that triages support tickets into JSON, with
     realistic mistakes (wrong labels, broken JSON, chatty preambles);
  2. a help-desk app's traffic replayed through the gateway, with user feedback;
  3. a curated dataset (JSON schema, thumbs-down, dedupe, PII scrub, split) and the raw one;
  4. a tiny Llama-architecture base pretrained on the tickets' text, then a LoRA adapter
     trained on the curated rows, and a second one on every raw row (the ablation),
     both served over the one base (--full fine-tunes whole models instead);
  5. an eval of both students against the teacher on held-out tickets' ground truth;
  6. a canary route sending 10% of users to the student (schema-checked, escalating);
  7. the economics, with the break-even.

Everything goes into --dir (default ./foundry-quickstart, emptied on each run; your
./foundry.db is never touched). FOUNDRY_DB puts the captured calls in another store,
FOUNDRY_ADDR sets the listen address (default 127.0.0.1:8080, or a free port when that
is taken) and FOUNDRY_ADMIN_KEY guards the API and dashboard. After the results the
gateway keeps serving until Ctrl-C; --no-serve exits instead.

With a GPU, a real base model and a real key, --base ORG/NAME --teacher openai:MODEL
runs the same flow on them (the teacher through OPENAI_API_KEY / OPENAI_BASE_URL).`,
		Example: `  foundry quickstart
  foundry quickstart --no-serve
  foundry quickstart --base Qwen/Qwen2.5-0.5B-Instruct --teacher openai:gpt-4o-mini`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := config.Load("", nil)
			if err != nil {
				return err
			}
			o := quickstart.Options{Dir: dir, Seed: seed, Small: small, Serve: !noServe, GPUHourlyUSD: hourly, Full: full,
				Backend: backend, AdminKey: cfg.AdminKey, Out: cmd.OutOrStdout(), Progress: cmd.ErrOrStderr()}
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelDebug
			}
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if teacher != "" {
				if o.Teacher, o.TeacherModelName, err = quickstartTeacher(cfg, teacher); err != nil {
					return err
				}
			}
			if base != "" {
				if o.Base, err = hub.ResolveModel(ctx, base); err != nil {
					return fmt.Errorf("--base %s: %w", base, err)
				}
			}
			if err := freshDir(dir); err != nil {
				return err
			}
			if db := os.Getenv("FOUNDRY_DB"); db != "" {
				o.DB = db
			}
			addr := cfg.Addr
			if err := gateway.CheckBind(addr, cfg.AdminKey != ""); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				if os.Getenv("FOUNDRY_ADDR") != "" {
					return fmt.Errorf("listen on %s: %w (set FOUNDRY_ADDR to a free address)", addr, err)
				}
				if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
					return fmt.Errorf("listen: %w", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s is taken (another foundry?): serving on %s instead\n", addr, ln.Addr())
			}
			o.Listener = ln
			if _, err := quickstart.Run(ctx, o); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("quickstart interrupted: %w", err)
				}
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "foundry-quickstart", "working directory for the store, datasets, models and evals (emptied first if a quick start made it)")
	f.BoolVar(&noServe, "no-serve", false, "exit after the results instead of serving the gateway and dashboard")
	f.BoolVar(&small, "small", false, "a reduced run (fewer calls, shorter training): for CI")
	f.Uint64Var(&seed, "seed", 1, "seed of the traffic, the teacher's mistakes and training")
	f.Float64Var(&hourly, "device-hourly", 0, "$/hour of the machine that trains and serves the student (default $0.10 for a CPU-only run, $2.00 with --base)")
	f.BoolVar(&full, "full", false, "fine-tune every weight of the tiny student instead of training LoRA adapters on it")
	f.StringVar(&base, "base", "", "a real base model (ORG/NAME[@rev] or a directory) instead of the tiny one (GPU recommended)")
	f.StringVar(&teacher, "teacher", "", "a real teacher, PROVIDER:MODEL (e.g. openai:gpt-4o-mini), instead of the simulated one")
	f.StringVar(&backend, "backend", "", `engine backend: "go", "xla:cuda" or "xla:cpu" (default: automatic)`)
	f.BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	return cmd
}

// quickstartTeacher builds the real teacher named by --teacher PROVIDER:MODEL
// from the environment's providers.
func quickstartTeacher(cfg *config.Config, spec string) (p provider.Provider, model string, err error) {
	typ, model, ok := strings.Cut(spec, ":")
	if !ok || typ == "" || model == "" {
		return nil, "", fmt.Errorf("--teacher %q: use PROVIDER:MODEL, e.g. openai:gpt-4o-mini", spec)
	}
	if typ != "openai" && typ != "anthropic" {
		return nil, "", fmt.Errorf("--teacher %q: unknown provider %q (use openai or anthropic)", spec, typ)
	}
	for _, pc := range cfg.Providers {
		if pc.Type == typ {
			p, err := newProvider(pc)
			return p, model, err
		}
	}
	env := map[string]string{"openai": "OPENAI_API_KEY (or OPENAI_BASE_URL for any OpenAI-compatible server)", "anthropic": "ANTHROPIC_API_KEY"}[typ]
	return nil, "", fmt.Errorf("--teacher %s: no %s provider is configured: set %s", spec, typ, env)
}

// freshDir makes dir empty for a new run: it creates it, or empties one a
// quick start made before; it refuses any other non-empty directory.
func freshDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("--dir %s: %w", dir, err)
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, quickstartMarker)); err != nil {
			return fmt.Errorf("--dir %s exists and was not made by foundry quickstart: choose another --dir (nothing was changed)", dir)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("empty %s: %w", dir, err)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, quickstartMarker), []byte("made by foundry quickstart; emptied on its next run\n"), 0o644)
}
