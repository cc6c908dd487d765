package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/foundryhq/foundry/config"
	"github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/hub"
	"github.com/foundryhq/foundry/provider"
	providerengine "github.com/foundryhq/foundry/provider/engine"
)

// loadEngine starts the built-in engine for the configured local models and
// their LoRA adapters and registers them as provider "engine", each also
// reachable by its bare name. The returned func stops the engines.
func loadEngine(ctx context.Context, cfg config.Engine, reg *provider.Registry, log *slog.Logger) (func(), error) {
	if len(cfg.Models) == 0 {
		return func() {}, nil
	}
	b, err := engine.NewBackend(ctx, engine.BackendOptions{Config: cfg.Backend, Logger: log})
	if err != nil {
		return nil, err
	}
	var models []providerengine.Model
	stop := func() {
		for _, m := range models {
			if m.Adapter == 0 { // adapters share their base's engine
				m.Engine.Close()
			}
		}
		b.Finalize()
	}
	for _, mc := range cfg.Models {
		dir, err := hub.ResolveModel(ctx, mc.Path)
		if err != nil {
			stop()
			return nil, fmt.Errorf("engine model %q: find %q: %w", mc.Name, mc.Path, err)
		}
		slots := mc.Slots
		if slots == 0 {
			slots = 4
		}
		maxAdapters := mc.MaxAdapters
		if maxAdapters == 0 && len(mc.Adapters) > 0 {
			maxAdapters = 4
		}
		m, err := providerengine.Load(ctx, b, mc.Name, dir, providerengine.LoadOptions{
			Runner: engine.RunnerOptions{Slots: slots, MaxContext: mc.MaxContext, MaxAdapters: maxAdapters, MaxRank: mc.MaxLoRARank},
			Logger: log, Warmup: strings.HasPrefix(b.Config, "xla")})
		if err != nil {
			stop()
			return nil, fmt.Errorf("engine model %q: %w", mc.Name, err)
		}
		models = append(models, m)
		log.Info("engine model loaded", "name", mc.Name, "dir", dir, "slots", slots, "max_context", m.Engine.Runner().MaxContext())
		for _, ac := range mc.Adapters {
			a, err := providerengine.LoadAdapter(m, ac.Name, ac.Path)
			if err != nil {
				stop()
				return nil, fmt.Errorf("engine model %q: %w", mc.Name, err)
			}
			models = append(models, a)
			log.Info("engine adapter loaded", "name", ac.Name, "base", mc.Name, "dir", ac.Path, "index", a.Adapter)
		}
	}
	p, err := providerengine.New(providerengine.Options{Models: models})
	if err != nil {
		stop()
		return nil, err
	}
	reg.Register(p)
	for _, m := range models {
		reg.Alias(m.Name, "engine/"+m.Name)
	}
	return stop, nil
}

// parseModelFlags turns --model NAME=PATH flags into engine models.
func parseModelFlags(flags []string) ([]config.EngineModel, error) {
	var out []config.EngineModel
	for _, f := range flags {
		name, path, ok := strings.Cut(f, "=")
		if !ok {
			// A bare path or id is served under its last path element.
			path = f
			name = f[strings.LastIndexAny(f, "/\\")+1:]
			if i := strings.IndexByte(name, '@'); i >= 0 {
				name = name[:i]
			}
		}
		if name == "" || path == "" {
			return nil, fmt.Errorf("--model %q: use NAME=PATH, where PATH is a model directory or a Hugging Face id ORG/NAME", f)
		}
		out = append(out, config.EngineModel{Name: name, Path: path})
	}
	return out, nil
}

// addAdapterFlags attaches --adapter NAME=BASE:DIR flags to the engine
// models they name (from the config or --model).
func addAdapterFlags(models []config.EngineModel, flags []string) error {
	for _, f := range flags {
		name, rest, ok := strings.Cut(f, "=")
		base, dir, ok2 := strings.Cut(rest, ":")
		if !ok || !ok2 || name == "" || base == "" || dir == "" {
			return fmt.Errorf("--adapter %q: use NAME=BASE:DIR, where BASE is an engine model's name and DIR a PEFT adapter directory", f)
		}
		i := slices.IndexFunc(models, func(m config.EngineModel) bool { return m.Name == base })
		if i < 0 {
			return fmt.Errorf("--adapter %q: no engine model %q to put it on (serve one with --model %s=PATH, or in the config's engine.models)", f, base, base)
		}
		models[i].Adapters = append(models[i].Adapters, config.EngineAdapter{Name: name, Path: dir})
	}
	return nil
}
