package provider

import (
	"context"
	"time"

	"github.com/foundryhq/foundry/api"
)

// Call is one request through the gateway: who asked for what, which
// provider answered, and how it went. The gateway fills it in as the call
// proceeds; plugins read it before and after the provider call, and
// middleware may change Target before calling on.
type Call struct {
	ID       string    // request id, returned as X-Request-Id
	Start    time.Time // arrival
	Endpoint string    // "chat.completions", "embeddings"

	// Who.
	Project, KeyID string
	User           string
	Tags           []string
	Metadata       map[string]string

	// What was asked.
	Route     string // the model name the client sent
	Chat      *api.ChatRequest
	Embedding *api.EmbeddingRequest
	RawBody   []byte // the request body as received
	Stream    bool

	// Who answered. Provider/Model are set on every attempt; the last one stays.
	Provider string
	Model    string
	Attempts int

	// What came back. For streams, ChatResponse is reassembled from the chunks.
	ChatResponse *api.ChatResponse
	// ResponseBody is the exact body sent to a non-streaming client, when the
	// gateway has it (saves capture a re-encode).
	ResponseBody      []byte
	EmbeddingResponse *api.EmbeddingResponse
	Status            int   // HTTP status sent to the client
	Err               error // why it failed (also for a stream broken after it began)
	TTFT              time.Duration
	Latency           time.Duration

	// Set by the capture plugin after the call: usage and cost as recorded.
	PromptTokens, CompletionTokens int
	UsageEstimated                 bool
	CostUSD                        float64

	// ParentID links a shadow or escalation call to the call it came from.
	ParentID string
}

// Plugin observes every call: PreCall runs before the provider is called
// (an error rejects the request with that error); PostCall runs once after
// the response was fully written or the stream ended or broke, with Status,
// Latency and the (reassembled) response set. PostCall must not block.
type Plugin interface {
	PreCall(ctx context.Context, c *Call) error
	PostCall(ctx context.Context, c *Call)
}

// Target is a resolved provider and the upstream's own model name.
type Target struct {
	Provider Provider
	Model    string
}

// Invoker performs the provider call for c against its route (with the
// gateway's retries and fallbacks): a non-streaming chat returns its response,
// a streaming chat returns an open Stream, embeddings their response.
type Invoker interface {
	Chat(ctx context.Context, c *Call) (*api.ChatResponse, error)
	ChatStream(ctx context.Context, c *Call) (Stream, error)
	Embeddings(ctx context.Context, c *Call) (*api.EmbeddingResponse, error)
}

// Middleware wraps the provider call. Routing policies (fallback, canary,
// shadow, cascade) are middleware: they may call next once, several times
// (cascade), concurrently (shadow) or with a different c.Route.
type Middleware func(next Invoker) Invoker
