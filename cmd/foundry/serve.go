package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/foundryhq/foundry/capture"
	"github.com/foundryhq/foundry/config"
	"github.com/foundryhq/foundry/econ"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/jobs"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/route"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/dsn"
	"github.com/foundryhq/foundry/web"
)

func newServeCmd() *cobra.Command {
	var cfgPath string
	var verbose bool
	var models, adapters []string
	var maxAdapters int
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the OpenAI-compatible gateway (captures every call into the store)",
		Long: `Run the gateway. With no configuration it listens on 127.0.0.1:8080, stores calls in
./foundry.db, and registers providers from the standard environment variables:
OPENAI_API_KEY / OPENAI_BASE_URL (any OpenAI-compatible server) and
ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL. FOUNDRY_ADDR, FOUNDRY_DB and FOUNDRY_ADMIN_KEY
override the config file (--config) for the listen address, the store and the admin key.
The dashboard shows the datasets, training jobs and evals under FOUNDRY_DATA
(default ./foundry-data). Training jobs submitted to /api/v1/jobs run inside
the gateway, one at a time, writing to FOUNDRY_DATA/jobs/<id> by default.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(cfgPath, nil)
			if err != nil {
				return err
			}
			extra, err := parseModelFlags(models)
			if err != nil {
				return err
			}
			for i := range extra {
				extra[i].MaxAdapters = maxAdapters
			}
			cfg.Engine.Models = append(cfg.Engine.Models, extra...)
			if err := addAdapterFlags(cfg.Engine.Models, adapters); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			log := newLogger(cmd, verbose)
			if err := gateway.CheckBind(cfg.Addr, cfg.AdminKey != ""); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.Addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (is another foundry running? set FOUNDRY_ADDR to another port)", cfg.Addr, err)
			}
			return serve(cmd.Context(), cfg, ln, log)
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "YAML config file (providers, aliases, fallbacks, prices, limits, capture)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	cmd.Flags().StringArrayVarP(&models, "model", "m", nil, "serve a local model on the built-in engine: NAME=PATH (a directory or ORG/NAME[@rev]); repeatable")
	cmd.Flags().IntVar(&maxAdapters, "max-adapters", 0, "adapter places on each --model, for `foundry deploy` without a restart (default 4 when --adapter names the model, else 0)")
	cmd.Flags().StringArrayVar(&adapters, "adapter", nil, "serve a LoRA adapter over an engine model: NAME=BASE:DIR (BASE an engine model's name, DIR a PEFT adapter directory); repeatable")
	return cmd
}

func newLogger(cmd *cobra.Command, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
}

// openStore opens the configured store, with a hint on failure.
func openStore(ctx context.Context, db string) (store.Store, error) {
	st, err := dsn.Open(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w (set FOUNDRY_DB to a writable SQLite path or a postgres:// URL)", redactDSN(db), err)
	}
	return st, nil
}

// storeFromConfig opens the store named by the config file (or FOUNDRY_DB):
// the CLI's commands that read or write the store directly use it.
func storeFromConfig(cmd *cobra.Command, cfgPath string) (store.Store, error) {
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		return nil, err
	}
	return openStore(cmd.Context(), cfg.DB)
}

// serve runs the gateway on ln until ctx ends, then drains requests and
// flushes capture.
func serve(ctx context.Context, cfg *config.Config, ln net.Listener, log *slog.Logger) error {
	if os.Getenv("GOGC") == "" {
		// The gateway's live heap is small (the capture queue bounds it), and
		// collecting less often shortens its latency tail: with the default
		// 100, added p99 at 1k req/s was 0.8–1.3 ms; with 400, 0.55–0.6 ms
		// (bench/gateway). GOGC in the environment still wins.
		debug.SetGCPercent(400)
	}
	st, err := openStore(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()

	prices := pricing.New(cfg.Prices)
	reg, err := buildRegistry(cfg, log)
	if err != nil {
		return err
	}
	stopEngine, err := loadEngine(ctx, cfg.Engine, reg, log)
	if err != nil {
		return err
	}
	defer stopEngine()
	var plugins []provider.Plugin
	var capt *capture.Capturer
	if !cfg.Capture.Disabled {
		capt = capture.New(st, capture.Options{QueueSize: cfg.Capture.QueueSize, BatchSize: cfg.Capture.BatchSize,
			FlushInterval: cfg.Capture.FlushInterval, FullWait: cfg.Capture.FullWait, SpillFile: cfg.Capture.SpillFile,
			Prices: prices, NoTokenCount: cfg.Capture.TokenCount != nil && !*cfg.Capture.TokenCount, Logger: log})
		if err := capt.Start(ctx); err != nil {
			return err
		}
		plugins = append(plugins, capt)
	} else {
		log.Warn("capture is disabled in the config: calls are not recorded")
	}
	opts := gateway.Options{Registry: reg, Store: st, Plugins: plugins, Fallbacks: cfg.Fallbacks, AdminKey: cfg.AdminKey,
		MaxBodyBytes: cfg.Limits.MaxBodyBytes, MaxRetries: cfg.Limits.MaxRetries, RetryBase: cfg.Limits.RetryBase,
		RetryMax: cfg.Limits.RetryMax, Logger: log}
	if cfg.Limits.MaxRetries == 0 {
		opts.MaxRetries = -1 // config already applied its default; 0 there means none
	}
	ropts := route.Options{Store: st, Logger: log, Resolve: route.RegistryResolver(reg)}
	if capt != nil {
		ropts.Recorder = capt // shadow and escalated candidate calls
	}
	router := route.New(ropts)
	if err := router.Start(ctx); err != nil {
		return err
	}
	opts.Middleware = append(opts.Middleware, router.Middleware)
	if capt != nil {
		opts.Flusher = capt
		opts.Stats = func() gateway.CaptureStats {
			s := capt.Stats()
			return gateway.CaptureStats{QueueDepth: s.QueueDepth, Written: s.Written, Spilled: s.Spilled, Replayed: s.Replayed,
				Lost: s.Lost, WriteErrors: s.WriteErrors, LagSeconds: s.Lag.Seconds()}
		}
	}
	srv, err := gateway.New(ctx, opts)
	if err != nil {
		return err
	}
	// The dashboard's Datasets, Training and Evals pages read the data dir
	// the CLI's dataset, train and eval commands write to.
	data := dataDir()
	web.New(web.Options{Store: st, AdminKey: cfg.AdminKey, Flusher: opts.Flusher, Logger: log,
		DataDir: data, Prices: prices, RouteStats: router.Stats}).Mount(srv)
	srv.Handle("GET /api/v1/costs", srv.AdminOnly(econ.NewHandler(st, prices, log).ServeHTTP))
	runner := jobs.New(jobs.Options{Store: st, DataDir: data, Logger: log})
	if err := runner.Start(ctx); err != nil {
		return err
	}
	runner.Mount(srv)
	router.Mount(srv)
	mountDeployments(srv, reg, cfg.Engine)
	if cfg.Retention > 0 {
		go retain(ctx, st, cfg.Retention, log)
	}
	names := []string{}
	for _, p := range reg.Providers() {
		names = append(names, p.Name())
	}
	if len(names) == 0 {
		log.Warn("no providers configured: set OPENAI_API_KEY or OPENAI_BASE_URL (any OpenAI-compatible server), ANTHROPIC_API_KEY, or add providers to a --config file")
	}
	log.Info("foundry gateway listening", "url", "http://"+ln.Addr().String()+"/v1", "dashboard", "http://"+ln.Addr().String()+"/", "store", redactDSN(cfg.DB), "providers", names,
		"auth", cfg.AdminKey != "")
	err = srv.Serve(ctx, ln, cfg.Limits.ShutdownTimeout)
	// Running training jobs stop at their next step with a checkpoint and
	// are saved as interrupted (resumable), before the store closes.
	jctx, jcancel := context.WithTimeout(context.Background(), time.Minute)
	err = errors.Join(err, runner.Close(jctx))
	jcancel()
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = errors.Join(err, router.Close(rctx)) // queued shadow calls finish before capture closes
	rcancel()
	if capt != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if cerr := capt.Close(cctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
		cancel()
		s := capt.Stats()
		log.Info("capture flushed", "written", s.Written, "spilled", s.Spilled, "lost", s.Lost)
	}
	return err
}

// retain deletes records older than keep, hourly.
func retain(ctx context.Context, st store.Store, keep time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := st.DeleteRecordsBefore(ctx, time.Now().Add(-keep))
		if err != nil && ctx.Err() == nil {
			log.Warn("retention: delete old records", "err", err)
		} else if n > 0 {
			log.Info("retention: deleted old records", "records", n, "older_than", keep)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// redactDSN hides a password in a postgres URL.
func redactDSN(s string) string {
	if u, err := parseURL(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return s
}
