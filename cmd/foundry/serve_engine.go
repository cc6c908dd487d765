package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/foundryhq/foundry/config"
	"github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/hub"
	"github.com/foundryhq/foundry/provider"
	providerengine "github.com/foundryhq/foundry/provider/engine"
)

// loadEngine starts the built-in engine for the configured local models and
// registers them as provider "engine", each also reachable by its bare name.
// The returned func stops the engines.
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
			m.Engine.Close()
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
		m, err := providerengine.Load(ctx, b, mc.Name, dir, providerengine.LoadOptions{
			Runner: engine.RunnerOptions{Slots: slots, MaxContext: mc.MaxContext}, Logger: log, Warmup: strings.HasPrefix(b.Config, "xla")})
		if err != nil {
			stop()
			return nil, fmt.Errorf("engine model %q: %w", mc.Name, err)
		}
		models = append(models, m)
		log.Info("engine model loaded", "name", mc.Name, "dir", dir, "slots", slots, "max_context", m.Engine.Runner().MaxContext())
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
