package judge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/foundryhq/foundry/api"
)

// HTTP is a Chatter that calls an OpenAI-compatible endpoint over HTTP. In
// Foundry that endpoint is the gateway itself, so judge and teacher calls
// are captured and priced like any other traffic; the X-Foundry-Tags header
// tells them apart in the logs. The zero value is not usable; use NewHTTP.
type HTTP struct {
	BaseURL string       // ending in /v1, e.g. "http://127.0.0.1:8080/v1"
	APIKey  string       // sent as "Authorization: Bearer"; "" sends none
	Tags    string       // X-Foundry-Tags; NewHTTP sets "judge"
	Client  *http.Client // http.DefaultClient when nil
}

// NewHTTP returns a Chatter for the OpenAI-compatible API at baseURL whose
// requests carry "X-Foundry-Tags: judge". Set Tags to label other traffic
// (e.g. "teacher" for best-of-n sampling).
func NewHTTP(baseURL, apiKey string) *HTTP {
	return &HTTP{BaseURL: strings.TrimRight(baseURL, "/"), APIKey: apiKey, Tags: "judge"}
}

// Chat makes a non-streaming chat completion. An HTTP error answer is
// returned as an *api.Error with the upstream's status and message.
func (h *HTTP) Chat(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
	if req.Stream {
		return nil, fmt.Errorf("judge: HTTP.Chat makes non-streaming calls; unset Stream")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode chat request for %s: %w", req.Model, err)
	}
	url := strings.TrimRight(h.BaseURL, "/") + "/chat/completions"
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("chat %s at %s: %w", req.Model, url, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	if h.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+h.APIKey)
	}
	if h.Tags != "" {
		hr.Header.Set("X-Foundry-Tags", h.Tags)
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("chat %s at %s: %w (is the gateway running?)", req.Model, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("chat %s at %s: read answer: %w", req.Model, url, err)
	}
	if resp.StatusCode/100 != 2 {
		if e, ok := api.ParseError(resp.StatusCode, b); ok {
			e.Message = fmt.Sprintf("chat %s at %s: %d: %s", req.Model, url, resp.StatusCode, e.Message)
			return nil, e
		}
		return nil, &api.Error{Status: resp.StatusCode, Message: fmt.Sprintf("chat %s at %s: %d: %s", req.Model, url, resp.StatusCode, clip(string(b), 300))}
	}
	var out api.ChatResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("chat %s at %s: answer is not a chat completion: %w: %s", req.Model, url, err, clip(string(b), 200))
	}
	return &out, nil
}
