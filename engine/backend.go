// Package engine runs models on GoMLX.
//
//   - NewBackend picks the backend: XLA through a PJRT plugin when one is
//     installed (never downloaded), else the pure-Go simplego backend, and
//     logs which and why.
//   - Runner holds a model's weights, bound once, and a KV cache of fixed
//     decode slots; it runs prefill (prompts padded to static buckets) and
//     batched decode steps at static shapes, so XLA compiles each graph once.
//   - Engine is the continuous-batching scheduler on a Runner: requests queue,
//     are prefilled into free slots between decode steps, stream their tokens
//     (sampled on the host: greedy, temperature, top-k, top-p, min-p, seeded,
//     with logprobs) and end on stop tokens, stop strings, max tokens, the end
//     of the context, an error or cancellation.
//
// Text comes from a Detokenizer (the tokenizer package's, adapted); the
// engine itself works on token ids.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/foundryhq/foundry/model/nn"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// BackendOptions choose the backend. The zero value picks automatically.
type BackendOptions struct {
	// Config forces a backend: "go" (pure Go; "go:OPTIONS" passes simplego's
	// options, e.g. "go:ops_parallel"; plain "go" runs ops one at a time), "xla:cuda" or "xla:cpu" (a PJRT
	// plugin). Empty: $GOMLX_BACKEND if set, else XLA when a PJRT plugin is
	// found (in $PJRT_PLUGIN_LIBRARY_PATH or GoMLX's install directories),
	// preferring cuda, else "go".
	Config string
	// Logger receives the one line saying which backend and why (default slog.Default()).
	Logger *slog.Logger
}

// Backend is a GoMLX backend with the dtype Foundry runs weights in on it.
type Backend struct {
	backends.Backend
	// Config is the backend configuration used ("go", "xla:cuda", ...).
	Config string
	// DType is the weight and activation dtype: BFloat16 on GPUs, Float32 on CPUs
	// (bf16 on simplego is emulated and slower than f32).
	DType dtypes.DType
	// Reason says why this backend was chosen.
	Reason string
}

// NewBackend chooses and starts a backend, never downloading a PJRT plugin
// (install one explicitly and point PJRT_PLUGIN_LIBRARY_PATH at it). It also
// registers Foundry's matmul gradients (nn.RegisterGradients), so every graph
// built afterwards, training included, gets them.
func NewBackend(ctx context.Context, opts BackendOptions) (*Backend, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	nn.RegisterGradients()
	config, reason := opts.Config, "requested"
	if config == "" {
		if env := os.Getenv(backends.ConfigEnvVar); env != "" {
			config, reason = env, "$"+backends.ConfigEnvVar+" is set"
		} else if plugin, where := findPJRTPlugin(); plugin != "" {
			config, reason = "xla:"+plugin, fmt.Sprintf("PJRT plugin %q found %s", plugin, where)
		} else {
			config, reason = simplego.BackendName, "no PJRT plugin found ("+noPluginHint()+"); using the pure-Go backend"
		}
	}
	name, plugin, _ := strings.Cut(config, ":")
	var (
		b   backends.Backend
		err error
	)
	switch name {
	case simplego.BackendName, "simplego":
		if plugin == "" {
			// Ops run one at a time (each op still uses every core): GoMLX
			// v0.26's parallel op executor can deadlock when every worker
			// runs a matmul that waits for workers of its own
			// (simplego/workerspool.go), it reads a counter without a lock
			// (which -race reports), and on these models it was slower
			// (tiny qwen2 decode, batch 1: 3,342 vs 1,344 tokens/s).
			// "go:ops_parallel" opts back in.
			plugin = "ops_sequential"
		}
		b, err = simplego.New(plugin) // e.g. "go:ops_sequential"
	case "xla", "stablehlo", "hlo", "shlo":
		b, err = newXLA(plugin)
	default:
		return nil, fmt.Errorf("unknown engine backend %q: use \"go\", \"xla:cuda\" or \"xla:cpu\"", config)
	}
	if err != nil {
		return nil, fmt.Errorf("start engine backend %q (%s): %w", config, reason, err)
	}
	dtype := dtypes.Float32
	if name != simplego.BackendName && name != "simplego" && plugin != "cpu" {
		dtype = dtypes.BFloat16
	}
	log.InfoContext(ctx, "engine backend", "backend", config, "dtype", dtype.String(), "reason", reason)
	return &Backend{Backend: b, Config: config, DType: dtype, Reason: reason}, nil
}

func noPluginHint() string {
	if p := os.Getenv("PJRT_PLUGIN_LIBRARY_PATH"); p != "" {
		return "none in PJRT_PLUGIN_LIBRARY_PATH=" + p
	}
	return "PJRT_PLUGIN_LIBRARY_PATH is unset"
}
