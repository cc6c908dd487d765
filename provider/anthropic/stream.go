package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
)

// streamEvent is any event of a Messages API stream; which fields are set
// depends on Type.
type streamEvent struct {
	Type         string            `json:"type"`
	Message      *messagesResponse `json:"message"`       // message_start
	Index        int               `json:"index"`         // content_block_*
	ContentBlock *block            `json:"content_block"` // content_block_start
	Delta        *eventDelta       `json:"delta"`         // content_block_delta, message_delta
	Usage        *usage            `json:"usage"`         // message_delta
	Error        *errorFields      `json:"error"`         // error
}

type eventDelta struct {
	Type        string `json:"type"` // text_delta, input_json_delta, thinking_delta, signature_delta
	Text        string `json:"text"`
	PartialJSON string `json:"partial_json"`
	Thinking    string `json:"thinking"`
	StopReason  string `json:"stop_reason"` // message_delta
}

// translator turns Messages API stream events into OpenAI chunks. It is
// separate from the HTTP stream so the fuzz target can drive it directly.
type translator struct {
	provider string
	created  int64
	id       string
	model    string
	usage    usage
	finished bool               // message_stop seen
	tools    map[int]*toolState // content block index → tool call
	nTools   int
}

type toolState struct {
	index   int  // OpenAI tool_calls index
	hasArgs bool // some argument bytes were sent
}

// event folds one SSE event in and returns the chunks it produces. An error
// event, or an event that is not valid JSON, returns an *provider.UpstreamError.
func (t *translator) event(name string, data []byte) ([]*api.ChatChunk, error) {
	var ev streamEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, &provider.UpstreamError{Provider: t.provider, Status: http.StatusBadGateway,
			Message: fmt.Sprintf("upstream sent an invalid %q stream event: %v", name, err)}
	}
	if ev.Type == "" {
		ev.Type = name
	}
	switch ev.Type {
	case "message_start":
		if ev.Message != nil {
			t.id, t.model = ev.Message.ID, ev.Message.Model
			t.usage = ev.Message.Usage
		}
		return []*api.ChatChunk{t.chunk(api.Delta{Role: "assistant"}, nil)}, nil
	case "content_block_start":
		b := ev.ContentBlock
		if b == nil {
			return nil, nil
		}
		switch b.Type {
		case "text":
			if b.Text != "" {
				return []*api.ChatChunk{t.chunk(api.Delta{Content: api.Ptr(b.Text)}, nil)}, nil
			}
		case "thinking":
			if b.Thinking != "" {
				return []*api.ChatChunk{t.chunk(reasoning(b.Thinking), nil)}, nil
			}
		case "tool_use":
			if t.tools == nil {
				t.tools = map[int]*toolState{}
			}
			ts := &toolState{index: t.nTools}
			t.nTools++
			t.tools[ev.Index] = ts
			d := api.ToolCallDelta{Index: ts.index, ID: b.ID, Type: "function", Function: api.FunctionCallDelta{Name: b.Name}}
			// A non-empty input at start is the whole input (servers that do not stream it).
			if in := compactArgs(b.Input); in != "{}" {
				d.Function.Arguments, ts.hasArgs = in, true
			}
			return []*api.ChatChunk{t.chunk(api.Delta{ToolCalls: []api.ToolCallDelta{d}}, nil)}, nil
		}
	case "content_block_delta":
		d := ev.Delta
		if d == nil {
			return nil, nil
		}
		switch d.Type {
		case "text_delta":
			if d.Text != "" {
				return []*api.ChatChunk{t.chunk(api.Delta{Content: api.Ptr(d.Text)}, nil)}, nil
			}
		case "thinking_delta":
			if d.Thinking != "" {
				return []*api.ChatChunk{t.chunk(reasoning(d.Thinking), nil)}, nil
			}
		case "input_json_delta":
			ts := t.tools[ev.Index]
			if ts == nil || d.PartialJSON == "" {
				return nil, nil
			}
			ts.hasArgs = true
			return []*api.ChatChunk{t.chunk(api.Delta{ToolCalls: []api.ToolCallDelta{{Index: ts.index, Function: api.FunctionCallDelta{Arguments: d.PartialJSON}}}}, nil)}, nil
		}
	case "content_block_stop":
		// A tool call without input has "{}" as arguments, as in non-streaming answers.
		if ts := t.tools[ev.Index]; ts != nil && !ts.hasArgs {
			ts.hasArgs = true
			return []*api.ChatChunk{t.chunk(api.Delta{ToolCalls: []api.ToolCallDelta{{Index: ts.index, Function: api.FunctionCallDelta{Arguments: "{}"}}}}, nil)}, nil
		}
	case "message_delta":
		if u := ev.Usage; u != nil {
			// message_delta usage is cumulative; input counts appear here only on some versions.
			t.usage.OutputTokens = u.OutputTokens
			if u.InputTokens > 0 {
				t.usage.InputTokens = u.InputTokens
			}
			if u.CacheCreationInputTokens > 0 {
				t.usage.CacheCreationInputTokens = u.CacheCreationInputTokens
			}
			if u.CacheReadInputTokens > 0 {
				t.usage.CacheReadInputTokens = u.CacheReadInputTokens
			}
		}
		if ev.Delta != nil && ev.Delta.StopReason != "" {
			return []*api.ChatChunk{t.chunk(api.Delta{}, api.Ptr(finishReason(ev.Delta.StopReason)))}, nil
		}
	case "message_stop":
		t.finished = true
		c := t.chunk(api.Delta{}, nil)
		c.Choices = []api.ChunkChoice{}
		c.Usage = t.usage.openAI()
		return []*api.ChatChunk{c}, nil
	case "error":
		ue := &provider.UpstreamError{Provider: t.provider, Status: http.StatusBadGateway, Message: string(data)}
		if ev.Error != nil {
			ue.Status = statusForType(ev.Error.Type)
			ue.Type, ue.Message = ev.Error.Type, ev.Error.Message
		}
		return nil, ue
	}
	// ping, signature_delta, redacted_thinking and events newer than Foundry.
	return nil, nil
}

func reasoning(s string) api.Delta {
	return api.Delta{Extra: api.Extra{reasoningKey: mustJSON(s)}}
}

func (t *translator) chunk(d api.Delta, finish *string) *api.ChatChunk {
	return &api.ChatChunk{ID: t.id, Object: "chat.completion.chunk", Created: t.created, Model: t.model,
		Choices: []api.ChunkChoice{{Index: 0, Delta: d, FinishReason: finish}}}
}

// statusForType is the HTTP status the Messages API uses for an error type,
// for errors that arrive inside a stream (after the 200).
func statusForType(typ string) int {
	switch typ {
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error":
		return http.StatusTooManyRequests
	case "api_error":
		return http.StatusInternalServerError
	case "overloaded_error":
		return 529
	default:
		return http.StatusBadGateway
	}
}

// stream is a Messages API stream read as OpenAI chunks.
type stream struct {
	name    string
	ctx     context.Context
	body    io.ReadCloser
	cancel  context.CancelFunc
	sse     *api.SSEReader
	tr      translator
	pending []*api.ChatChunk
	done    bool
}

func newStream(ctx context.Context, name string, body io.ReadCloser, cancel context.CancelFunc, created int64) *stream {
	return &stream{name: name, ctx: ctx, body: body, cancel: cancel, sse: api.NewSSEReader(body),
		tr: translator{provider: name, created: created}}
}

// Next returns the next chunk; io.EOF after message_stop. A stream that
// ends before message_stop is broken: an *provider.UpstreamError.
func (s *stream) Next() (*api.ChatChunk, error) {
	for {
		if len(s.pending) > 0 {
			c := s.pending[0]
			s.pending = s.pending[1:]
			return c, nil
		}
		if s.done {
			return nil, io.EOF
		}
		ev, err := s.sse.Next()
		if err != nil {
			s.done = true
			if s.ctx.Err() != nil && errors.Is(s.ctx.Err(), context.Canceled) {
				return nil, s.ctx.Err()
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			ue := &provider.UpstreamError{Provider: s.name, Message: "stream broke before message_stop: " + err.Error(), Err: err}
			var ne net.Error
			if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
				ue.Timeout = true
			}
			return nil, ue
		}
		chunks, err := s.tr.event(ev.Name, ev.Data)
		if err != nil {
			s.done = true
			return nil, err
		}
		s.pending = chunks
		if s.tr.finished {
			s.done = true
		}
	}
}

// unread puts c back in front of the pending chunks (nil: nothing).
func (s *stream) unread(c *api.ChatChunk) {
	if c != nil {
		s.pending = append([]*api.ChatChunk{c}, s.pending...)
	}
}

// Close aborts or releases the stream; safe to call more than once.
func (s *stream) Close() error {
	s.done = true
	s.pending = nil
	if s.cancel != nil {
		s.cancel()
	}
	return s.body.Close()
}
