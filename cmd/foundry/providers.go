package main

import (
	"fmt"
	"log/slog"
	"net/url"

	"github.com/foundryhq/foundry/config"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/provider/anthropic"
	"github.com/foundryhq/foundry/provider/openai"
)

// buildRegistry registers the configured providers, their model-name
// prefixes, aliases and the default provider.
func buildRegistry(cfg *config.Config, log *slog.Logger) (*provider.Registry, error) {
	reg := provider.NewRegistry()
	for _, pc := range cfg.Providers {
		p, err := newProvider(pc)
		if err != nil {
			return nil, err
		}
		prefixes := pc.Prefixes
		if len(prefixes) == 0 && pc.Name == pc.Type {
			prefixes = provider.DefaultPrefixes[pc.Type]
		}
		reg.Register(p, prefixes...)
		log.Debug("provider registered", "name", pc.Name, "type", pc.Type, "base_url", pc.BaseURL, "prefixes", prefixes)
	}
	for name, target := range cfg.Aliases {
		reg.Alias(name, target)
	}
	if cfg.DefaultProvider != "" {
		reg.SetDefault(cfg.DefaultProvider)
	}
	return reg, nil
}

func newProvider(pc config.Provider) (provider.Provider, error) {
	key := pc.Key(nil)
	switch pc.Type {
	case "openai":
		return openai.New(openai.Options{Name: pc.Name, BaseURL: pc.BaseURL, APIKey: key, Headers: pc.Headers,
			ConnectTimeout: pc.Timeouts.Connect, FirstByteTimeout: pc.Timeouts.FirstByte, TotalTimeout: pc.Timeouts.Total}), nil
	case "anthropic":
		return newAnthropic(pc, key), nil
	}
	return nil, fmt.Errorf("provider %q: unknown type %q (use openai or anthropic)", pc.Name, pc.Type)
}

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }

func newAnthropic(pc config.Provider, key string) provider.Provider {
	return anthropic.New(anthropic.Options{Name: pc.Name, BaseURL: pc.BaseURL, APIKey: key, Headers: pc.Headers,
		ConnectTimeout: pc.Timeouts.Connect, FirstByteTimeout: pc.Timeouts.FirstByte, TotalTimeout: pc.Timeouts.Total})
}
