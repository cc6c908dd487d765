// Package provider defines the one interface every upstream implements
// (provider/openai, provider/anthropic, provider/engine), the typed upstream
// error the gateway uses to decide on retries and fallbacks, the registry that
// resolves a model name to a provider, and the Call that flows through the
// gateway's plugins around each provider call.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/foundryhq/foundry/api"
)

// Provider is one upstream behind Foundry's OpenAI-compatible surface.
// Implementations must be safe for concurrent use. Requests reach a provider
// with Model already set to the upstream's own model name (no "provider/" prefix).
type Provider interface {
	// Name is the registry name, e.g. "openai", "anthropic", "engine".
	Name() string
	// Chat makes a non-streaming chat completion.
	Chat(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error)
	// ChatStream starts a streaming chat completion. An error before the first
	// chunk is returned here (so the gateway may retry or fall back);
	// cancelling ctx aborts the stream.
	ChatStream(ctx context.Context, req *api.ChatRequest) (Stream, error)
	// Embeddings computes embeddings; providers without them return an
	// *UpstreamError with Status 400 (see Unsupported).
	Embeddings(ctx context.Context, req *api.EmbeddingRequest) (*api.EmbeddingResponse, error)
	// Models lists the models the upstream serves.
	Models(ctx context.Context) ([]api.Model, error)
}

// Stream is a chat completion in progress.
type Stream interface {
	// Next returns the next chunk, io.EOF after the last one, or an error
	// when the stream broke (an *UpstreamError where possible).
	Next() (*api.ChatChunk, error)
	// Close releases the stream; safe to call more than once and before the end.
	Close() error
}

// UpstreamError is a failed upstream call: an HTTP error answer, or a
// connection failure / timeout (Status 0).
type UpstreamError struct {
	Provider   string
	Status     int           // upstream HTTP status; 0 when no answer came
	RetryAfter time.Duration // from the upstream's Retry-After header
	Message    string        // the upstream's error message
	Type, Code string        // the upstream's error type and code, if any
	Timeout    bool          // a connect/first-byte/total timeout
	Err        error         // the underlying error, if any
}

func (e *UpstreamError) Error() string {
	switch {
	case e.Timeout:
		return fmt.Sprintf("%s: upstream timed out: %s", e.Provider, e.Message)
	case e.Status == 0:
		return fmt.Sprintf("%s: upstream unreachable: %s", e.Provider, e.Message)
	default:
		return fmt.Sprintf("%s: upstream returned %d: %s", e.Provider, e.Status, e.Message)
	}
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// Retryable reports whether trying again (or another provider) may succeed:
// rate limits, server errors and connection failures.
func (e *UpstreamError) Retryable() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500
}

// APIError maps the upstream failure to what the gateway's client sees:
// the upstream's 4xx client errors and 429 pass through with its message;
// upstream auth failures and 5xx become 502, timeouts 504.
func (e *UpstreamError) APIError() *api.Error {
	ae := &api.Error{Message: e.Message, Type: e.Type, Code: e.Code}
	switch {
	case e.Timeout:
		ae.Status, ae.Type = http.StatusGatewayTimeout, "api_error"
		ae.Message = fmt.Sprintf("upstream %s timed out: %s", e.Provider, e.Message)
	case e.Status == 0:
		ae.Status, ae.Type = http.StatusBadGateway, "api_error"
		ae.Message = fmt.Sprintf("upstream %s unreachable: %s", e.Provider, e.Message)
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		ae.Status, ae.Type = http.StatusBadGateway, "api_error"
		ae.Message = fmt.Sprintf("upstream %s rejected Foundry's credentials (%d: %s); check the provider's API key in Foundry's environment or config", e.Provider, e.Status, e.Message)
	case e.Status == http.StatusTooManyRequests:
		ae.Status = e.Status
		ae.RetryAfter = int((e.RetryAfter + time.Second - 1) / time.Second)
	case e.Status >= 400 && e.Status < 500:
		ae.Status = e.Status
	default:
		ae.Status, ae.Type = http.StatusBadGateway, "api_error"
		ae.Message = fmt.Sprintf("upstream %s failed (%d): %s", e.Provider, e.Status, e.Message)
	}
	return ae
}

// Unsupported returns the error for an endpoint a provider does not offer.
func Unsupported(provider, what string) error {
	return &UpstreamError{Provider: provider, Status: http.StatusBadRequest, Type: "invalid_request_error",
		Message: fmt.Sprintf("provider %s does not support %s", provider, what)}
}

// IsRetryable reports whether err is an upstream failure worth retrying.
func IsRetryable(err error) bool {
	var ue *UpstreamError
	return errors.As(err, &ue) && ue.Retryable()
}

// ParseRetryAfter reads a Retry-After header (seconds or an HTTP date); 0 when absent or invalid.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var secs float64
	if _, err := fmt.Sscanf(v, "%g", &secs); err == nil && secs >= 0 {
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
