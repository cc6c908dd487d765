package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/store"
)

// Example is one training conversation flowing through a pipeline: the
// OpenAI fine-tuning example (messages with the answer last, tools) and
// where it came from.
type Example struct {
	api.FineTuneExample
	Meta  Meta
	Split string // "train", "val" or "test" once the Split stage has run
	Seq   int64  // position in the source stream, from 0
}

// Meta is an example's provenance and the signals curation filters on.
type Meta struct {
	Source       string // "store", or the file it was imported from
	ID           string // record id, or "<file>:<line>" for imported rows
	Line         int    // line (JSONL) or row (Parquet) number in an imported file, from 1
	Route        string
	Provider     string
	Model        string
	Tags         []string
	Metadata     map[string]string
	Score        *float64 // latest feedback score, if any
	JudgeScore   *float64 // score a judge stage gave the example, if any (dedupe's tie-breaker after Score)
	CreatedAt    time.Time
	FinishReason string  // the answer's finish_reason
	Refusal      string  // the answer's refusal field, when the model refused
	Error        string  // upstream or stream error recorded with the call
	Weight       float64 // mix weight of its source (copies in train); 0 means 1
}

// Answer returns the assistant's answer: the last message when it is an
// assistant message, else nil.
func (e *Example) Answer() *api.Message {
	if n := len(e.Messages); n > 0 && e.Messages[n-1].Role == "assistant" {
		return &e.Messages[n-1]
	}
	return nil
}

// AnswerText returns the answer's text, or its tool calls' arguments when it
// has no text.
func (e *Example) AnswerText() string {
	a := e.Answer()
	if a == nil {
		return ""
	}
	if s := a.Content.String(); s != "" || len(a.ToolCalls) == 0 {
		return s
	}
	var b strings.Builder
	for i, c := range a.ToolCalls {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(c.Function.Name)
		b.WriteByte(' ')
		b.WriteString(c.Function.Arguments)
	}
	return b.String()
}

// Text returns the text of the messages selected by part: "conversation"
// (every message), "dialogue" (every message but system/developer ones: the
// default dedupe key, so a long shared system prompt does not make every row
// look alike), "prompt" (everything before the answer) or "answer".
func (e *Example) Text(part string) string {
	var b strings.Builder
	n := len(e.Messages)
	for i, m := range e.Messages {
		last := i == n-1 && m.Role == "assistant"
		switch part {
		case "prompt":
			if last {
				continue
			}
		case "answer":
			if !last {
				continue
			}
		case "dialogue", "":
			if m.Role == "system" || m.Role == "developer" {
				continue
			}
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(m.Content.String())
		for _, c := range m.ToolCalls {
			b.WriteByte(' ')
			b.WriteString(c.Function.Name)
			b.WriteByte(' ')
			b.WriteString(c.Function.Arguments)
		}
	}
	return b.String()
}

// Chars is the number of characters of text in all messages and tool calls.
func (e *Example) Chars() int {
	n := 0
	for _, m := range e.Messages {
		n += len(m.Content.String())
		for _, c := range m.ToolCalls {
			n += len(c.Function.Name) + len(c.Function.Arguments)
		}
	}
	return n
}

// ApproxTokens estimates tokens as characters / 4 (rounded up), the usual
// rule of thumb for English with OpenAI-style BPE vocabularies. It is used
// for length bounds and the histogram, where speed matters more than
// exactness.
func ApproxTokens(chars int) int { return (chars + 3) / 4 }

// errNotChat marks records that are not chat completions.
var errNotChat = errors.New("not a chat completion")

// FromRecord turns a captured call into an example. A call whose answer is
// empty, refused or broken still becomes an example (with an empty answer
// and Meta.Error or Meta.Refusal set) so that Validate counts it under the
// right reason; only an unreadable request is an error.
//
// The conversion is api.NewFineTuneExample's. For speed (it is most of the
// select stage's cost), bodies whose messages all have string or null
// content are decoded in one pass into plain structs, which gives the same
// example — TestFastDecodeMatchesNewFineTuneExample holds the two together —
// and everything else (content parts, unusual shapes) goes through
// api.NewFineTuneExample itself.
func FromRecord(r store.RecordWithFeedback) (*Example, error) {
	if r.Endpoint != "" && r.Endpoint != "chat.completions" {
		return nil, errNotChat
	}
	ex := &Example{Meta: Meta{
		Source: "store", ID: r.ID, Route: r.Route, Provider: r.Provider, Model: r.Model,
		Tags: r.Tags, Metadata: r.Metadata, CreatedAt: r.CreatedAt, Error: r.Error,
	}}
	if r.Feedback != nil {
		ex.Meta.Score = r.Feedback.Score
	}
	if r.Error == "" && r.Status >= 400 {
		ex.Meta.Error = fmt.Sprintf("HTTP %d", r.Status)
	}
	if fastDecode(r.Request, r.Response, ex) {
		return ex, nil
	}
	var tail struct {
		Choices []struct {
			FinishReason string `json:"finish_reason"`
			Message      struct {
				Refusal *string `json:"refusal"`
			} `json:"message"`
		} `json:"choices"`
	}
	if len(r.Response) > 0 {
		if json.Unmarshal(r.Response, &tail) == nil && len(tail.Choices) > 0 {
			ex.Meta.FinishReason = tail.Choices[0].FinishReason
			if p := tail.Choices[0].Message.Refusal; p != nil {
				ex.Meta.Refusal = *p
			}
		}
	}
	ft, err := api.NewFineTuneExample(r.Request, r.Response)
	if err == nil {
		ex.FineTuneExample = ft
		return ex, nil
	}
	return noAnswer(r.Request, ex)
}

// noAnswer keeps the prompt of a call without a usable answer, so Validate reports why.
func noAnswer(reqBody []byte, ex *Example) (*Example, error) {
	var req api.ChatRequest
	if jerr := json.Unmarshal(reqBody, &req); jerr != nil {
		return nil, fmt.Errorf("request body: %w", jerr)
	}
	ex.Tools, ex.ParallelToolCalls = req.Tools, req.ParallelToolCalls
	ex.Messages = ex.Messages[:0]
	for _, m := range req.Messages {
		m.Extra, m.Refusal = nil, nil
		ex.Messages = append(ex.Messages, m)
	}
	ex.Messages = append(ex.Messages, api.Message{Role: "assistant"})
	return ex, nil
}

// plainMessage is a message whose content is a string or null.
type plainMessage struct {
	Role       string         `json:"role"`
	Content    *string        `json:"content"`
	Name       string         `json:"name"`
	ToolCalls  []api.ToolCall `json:"tool_calls"`
	ToolCallID string         `json:"tool_call_id"`
	Refusal    *string        `json:"refusal"`
}

func (m *plainMessage) message() api.Message {
	out := api.Message{Role: m.Role, Name: m.Name, ToolCalls: m.ToolCalls, ToolCallID: m.ToolCallID}
	if m.Content != nil {
		out.Content = api.TextContent(*m.Content)
	}
	return out
}

// fastDecode fills ex from plain-shaped bodies and reports whether it could.
func fastDecode(reqBody, respBody []byte, ex *Example) bool {
	var req struct {
		Messages          []plainMessage `json:"messages"`
		Tools             []api.Tool     `json:"tools"`
		ParallelToolCalls *bool          `json:"parallel_tool_calls"`
	}
	var resp struct {
		Choices []struct {
			FinishReason string       `json:"finish_reason"`
			Message      plainMessage `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(reqBody, &req) != nil || json.Unmarshal(respBody, &resp) != nil || len(resp.Choices) == 0 {
		return false
	}
	ans := resp.Choices[0].Message
	ex.Meta.FinishReason = resp.Choices[0].FinishReason
	if ans.Refusal != nil {
		ex.Meta.Refusal = *ans.Refusal
	}
	ex.Tools, ex.ParallelToolCalls = req.Tools, req.ParallelToolCalls
	ex.Messages = make([]api.Message, 0, len(req.Messages)+1)
	for i := range req.Messages {
		ex.Messages = append(ex.Messages, req.Messages[i].message())
	}
	if ans.Content == nil && len(ans.ToolCalls) == 0 {
		// NewFineTuneExample refuses a choice with neither content nor tool
		// calls; keep the prompt with an empty answer for Validate.
		ex.Messages = append(ex.Messages, api.Message{Role: "assistant"})
		return true
	}
	a := ans.message()
	if a.Role == "" {
		a.Role = "assistant"
	}
	ex.Messages = append(ex.Messages, a)
	return true
}
