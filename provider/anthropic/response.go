package anthropic

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/foundryhq/foundry/api"
)

// messagesResponse is the body of a non-streaming /v1/messages answer, and
// the "message" of a stream's message_start event.
type messagesResponse struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"`
	Role         string  `json:"role"`
	Model        string  `json:"model"`
	Content      []block `json:"content"`
	StopReason   string  `json:"stop_reason"`
	StopSequence string  `json:"stop_sequence"`
	Usage        usage   `json:"usage"`
}

type usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// reasoningKey is the message (and delta) field that carries thinking text,
// as DeepSeek and vLLM name it; api.Accumulator concatenates it.
const reasoningKey = "reasoning_content"

// toChatResponse translates a Messages API answer into an OpenAI chat
// completion created at the given Unix time.
func toChatResponse(r *messagesResponse, created int64) *api.ChatResponse {
	m := api.Message{Role: "assistant"}
	var text, thinking strings.Builder
	hasText := false
	for _, b := range r.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
			hasText = true
		case "thinking":
			thinking.WriteString(b.Thinking)
		case "tool_use":
			m.ToolCalls = append(m.ToolCalls, api.ToolCall{ID: b.ID, Type: "function",
				Function: api.FunctionCall{Name: b.Name, Arguments: compactArgs(b.Input)}})
		}
		// redacted_thinking and block types newer than Foundry are dropped.
	}
	if hasText || len(m.ToolCalls) == 0 {
		m.Content = api.TextContent(text.String())
	}
	if thinking.Len() > 0 {
		m.Extra = api.Extra{reasoningKey: mustJSON(thinking.String())}
	}
	return &api.ChatResponse{
		ID:      r.ID,
		Object:  "chat.completion",
		Created: created,
		Model:   r.Model,
		Choices: []api.Choice{{Index: 0, Message: m, FinishReason: finishReason(r.StopReason)}},
		Usage:   r.Usage.openAI(),
	}
}

// finishReason maps a stop_reason to OpenAI's finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "end_turn", "stop_sequence", "pause_turn":
		return "stop"
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	case "":
		return ""
	default:
		return "stop"
	}
}

// openAI converts usage: prompt tokens include the cache writes and reads,
// and the reads are reported as cached tokens.
func (u usage) openAI() *api.Usage {
	prompt := u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
	out := &api.Usage{PromptTokens: prompt, CompletionTokens: u.OutputTokens, TotalTokens: prompt + u.OutputTokens}
	if u.CacheReadInputTokens > 0 {
		out.PromptTokensDetails = &api.PromptTokensDetails{CachedTokens: u.CacheReadInputTokens}
	}
	return out
}

// compactArgs returns a tool input as compact JSON arguments; "{}" when absent.
func compactArgs(in json.RawMessage) string {
	if len(bytes.TrimSpace(in)) == 0 {
		return "{}"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, in) != nil {
		return string(in)
	}
	return buf.String()
}

func mustJSON(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
