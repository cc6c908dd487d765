// Package gatewaytest runs a real Foundry gateway in front of a local
// upstream for tests of the packages that call it (judge, dataset, eval):
// the same handler, retries and capture as `foundry serve`, on 127.0.0.1.
package gatewaytest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/foundryhq/foundry/capture"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/provider"
	popenai "github.com/foundryhq/foundry/provider/openai"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
)

// Options configure Start.
type Options struct {
	// Upstream is an OpenAI-compatible base URL (e.g. upstreamtest's URL),
	// registered as provider "openai" for OpenAI's model-name prefixes, or
	// for every model name when AnyModel is set.
	Upstream string
	AnyModel bool
	// Capture records every call into a fresh SQLite store.
	Capture bool
	// Retries is gateway.Options.MaxRetries: 0 is the gateway's default, -1
	// none (a fake's request count is then exactly the calls made).
	Retries int
}

// Gateway is a running gateway.
type Gateway struct {
	URL     string // the OpenAI-compatible base, ending in /v1
	Root    string // the server's root, for /api/v1/...
	Server  *gateway.Server
	Store   store.Store       // nil without Capture
	Capture *capture.Capturer // nil without Capture
}

// Start runs a gateway until t ends.
func Start(t testing.TB, o Options) *Gateway {
	t.Helper()
	ctx := context.Background()
	reg := provider.NewRegistry()
	prefixes := provider.DefaultPrefixes["openai"]
	if o.AnyModel {
		prefixes = nil
	}
	reg.Register(popenai.New(popenai.Options{BaseURL: o.Upstream, APIKey: "sk-upstream"}), prefixes...)
	if o.AnyModel {
		reg.SetDefault("openai")
	}
	opts := gateway.Options{Registry: reg, MaxRetries: o.Retries, RetryBase: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	g := &Gateway{}
	if o.Capture {
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "foundry.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		capt := capture.New(st, capture.Options{Prices: pricing.New(nil), SpillFile: filepath.Join(t.TempDir(), "spill.jsonl"), FlushInterval: 5 * time.Millisecond})
		if err := capt.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { capt.Close(context.Background()) })
		opts.Store, opts.Plugins, opts.Flusher = st, []provider.Plugin{capt}, capt
		g.Store, g.Capture = st, capt
	}
	srv, err := gateway.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	g.Server, g.Root, g.URL = srv, hs.URL, hs.URL+"/v1"
	return g
}
