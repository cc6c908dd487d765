package api

import (
	"encoding/json"
	"fmt"
)

// FineTuneExample is one line of OpenAI's chat fine-tuning JSONL format:
// the conversation with the assistant's answer last, and the tools offered.
type FineTuneExample struct {
	Messages          []Message `json:"messages"`
	Tools             []Tool    `json:"tools,omitempty"`
	ParallelToolCalls *bool     `json:"parallel_tool_calls,omitempty"`
}

// NewFineTuneExample turns a captured request and its response into a
// training example: the request's messages followed by the first choice's
// message. Only the fields OpenAI's format allows are kept (Extra fields of
// messages, such as vendor reasoning, are dropped).
func NewFineTuneExample(reqBody, respBody []byte) (FineTuneExample, error) {
	var req ChatRequest
	if err := json.Unmarshal(reqBody, &req); err != nil {
		return FineTuneExample{}, fmt.Errorf("decode request: %w", err)
	}
	var resp ChatResponse
	if err := json.Unmarshal(respBody, &resp); err != nil {
		return FineTuneExample{}, fmt.Errorf("decode response: %w", err)
	}
	if len(resp.Choices) == 0 {
		return FineTuneExample{}, fmt.Errorf("response has no choices")
	}
	ans := resp.Choices[0].Message
	if ans.Content.IsNull() && len(ans.ToolCalls) == 0 {
		return FineTuneExample{}, fmt.Errorf("response's first choice has neither content nor tool calls")
	}
	ex := FineTuneExample{Tools: req.Tools, ParallelToolCalls: req.ParallelToolCalls}
	for _, m := range append(req.Messages, ans) {
		m.Extra = nil
		m.Refusal = nil
		if m.Role == "" {
			m.Role = "assistant"
		}
		ex.Messages = append(ex.Messages, m)
	}
	return ex, nil
}
