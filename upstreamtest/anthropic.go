package upstreamtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AnthropicRequest is a Messages API request as the fake Anthropic server
// decodes it. Raw holds the body as received.
type AnthropicRequest struct {
	Model         string             `json:"model"`
	System        json.RawMessage    `json:"system"` // a string or text blocks
	Messages      []AnthropicMessage `json:"messages"`
	MaxTokens     int                `json:"max_tokens"`
	StopSequences []string           `json:"stop_sequences"`
	Stream        bool               `json:"stream"`
	Tools         []json.RawMessage  `json:"tools"`
	ToolChoice    json.RawMessage    `json:"tool_choice"`
	Raw           []byte             `json:"-"`
}

// AnthropicMessage is one turn of a Messages API request.
type AnthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"` // a string or content blocks
}

// AnthropicBlock is a content block of a request or a reply.
type AnthropicBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	Thinking  *string         `json:"thinking,omitempty"`
	Signature *string         `json:"signature,omitempty"`
	Source    json.RawMessage `json:"source,omitempty"`
}

// Blocks returns the message's content as blocks (a string is one text block).
func (m AnthropicMessage) Blocks() []AnthropicBlock {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return []AnthropicBlock{{Type: "text", Text: s}}
	}
	var bs []AnthropicBlock
	_ = json.Unmarshal(m.Content, &bs)
	return bs
}

// Text returns the message's text blocks joined.
func (m AnthropicMessage) Text() string {
	var b strings.Builder
	for _, bl := range m.Blocks() {
		if bl.Type == "text" {
			b.WriteString(bl.Text)
		}
	}
	return b.String()
}

// SystemText returns the system prompt's text (string or text blocks joined with blank lines).
func (r *AnthropicRequest) SystemText() string {
	var s string
	if json.Unmarshal(r.System, &s) == nil {
		return s
	}
	var bs []AnthropicBlock
	_ = json.Unmarshal(r.System, &bs)
	parts := make([]string, 0, len(bs))
	for _, b := range bs {
		parts = append(parts, b.Text)
	}
	return strings.Join(parts, "\n\n")
}

// AnthropicToolUse is a tool call in a fake Anthropic reply.
type AnthropicToolUse struct {
	ID    string          // default "toolu_fake<n>"
	Name  string          //
	Input json.RawMessage // a JSON object; default {}
}

// AnthropicUsage is usage as the Messages API reports it.
type AnthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// AnthropicReply is what the fake Anthropic server answers to one request.
type AnthropicReply struct {
	Thinking     string             // a thinking block before the text
	Text         string             // assistant text; streamed word by word
	ToolUses     []AnthropicToolUse // tool_use blocks after the text; inputs streamed in pieces
	StopReason   string             // default "end_turn", or "tool_use" when ToolUses are set
	StopSequence string             // reported with StopReason "stop_sequence"
	Usage        *AnthropicUsage    // default: words counted

	// Fault fails this call instead (queued faults from Fail come first).
	// The error body's type follows the status (429 rate_limit_error, 529
	// overloaded_error...) unless ErrorType is set. For streams,
	// Fault.DisconnectAfter counts SSE events (message_start is the first).
	Fault     Fault
	ErrorType string

	// StreamError, for streams, sends an error event after StreamErrorAfter
	// events and ends the stream, as Anthropic does when it overloads mid-answer.
	StreamError      *AnthropicError
	StreamErrorAfter int

	// Delay waits before answering (headers included); EventDelay waits
	// before each stream event after the first.
	Delay, EventDelay time.Duration
	// StallAfter, for streams, stops after this many events and holds the
	// connection open until the client goes away; OnClientGone then runs.
	StallAfter   int
	OnClientGone func()
}

// AnthropicError is the "error" object of an Anthropic error body or event.
type AnthropicError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Anthropic is a fake Anthropic Messages API server at URL (no /v1 suffix,
// as Anthropic's SDKs expect). It checks what the real API checks about
// shape (anthropic-version, max_tokens, alternating roles, tool results
// answering tool uses) and answers with its exact wire format.
type Anthropic struct {
	*recorder
	URL    string // base URL for clients, e.g. http://127.0.0.1:34567
	mu     sync.Mutex
	reply  func(req *AnthropicRequest) AnthropicReply
	models []string
	seq    atomic.Int64
	// APIKey, when set, is required as x-api-key (401 authentication_error otherwise).
	APIKey string
	// ModelsPerPage, when > 0, caps GET /v1/models pages below the client's
	// limit, so that clients must follow has_more / after_id.
	ModelsPerPage int
}

// NewAnthropic starts a fake Anthropic server on 127.0.0.1. With t non-nil
// it is closed at the end of the test. Its default reply echoes the last
// user message as "echo: <text>" with usage counted in words.
func NewAnthropic(t TB) *Anthropic {
	a := &Anthropic{recorder: newRecorder(), models: []string{"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"}}
	if t != nil {
		t.Helper()
	}
	a.serve(t, a)
	a.URL = a.srv.URL
	return a
}

// Addr is the listener address, e.g. "127.0.0.1:34567".

// OnMessages sets the reply function (nil restores the echo).
func (a *Anthropic) OnMessages(f func(req *AnthropicRequest) AnthropicReply) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reply = f
}

// SetModels sets the ids GET /v1/models lists.
func (a *Anthropic) SetModels(ids ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.models = ids
}

// AnthropicEcho is the default reply: "echo: " + the last user message's text.
func AnthropicEcho(req *AnthropicRequest) AnthropicReply {
	last := ""
	for _, m := range req.Messages {
		if m.Role == "user" {
			if t := m.Text(); t != "" {
				last = t
			}
		}
	}
	return AnthropicReply{Text: "echo: " + last}
}

func (a *Anthropic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.record(r, body)
	if a.APIKey != "" && r.Header.Get("x-api-key") != a.APIKey {
		writeAnthropicError(w, Fault{Status: 401, Message: "invalid x-api-key"}, "")
		return
	}
	if r.Header.Get("anthropic-version") == "" {
		writeAnthropicError(w, Fault{Status: 400, Message: "anthropic-version: header is required"}, "")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		a.listModels(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages":
		a.messages(w, r, body)
	default:
		writeAnthropicError(w, Fault{Status: 404, Message: "Not found: " + r.Method + " " + r.URL.Path}, "")
	}
}

// listModels pages through the models as the real API does (limit, after_id).
func (a *Anthropic) listModels(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	ids := append([]string(nil), a.models...)
	a.mu.Unlock()
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 20
	}
	if a.ModelsPerPage > 0 {
		limit = min(limit, a.ModelsPerPage)
	}
	start := 0
	if after := r.URL.Query().Get("after_id"); after != "" {
		for i, id := range ids {
			if id == after {
				start = i + 1
			}
		}
	}
	end := min(start+limit, len(ids))
	type model struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
		CreatedAt   string `json:"created_at"`
	}
	page := struct {
		Data    []model `json:"data"`
		HasMore bool    `json:"has_more"`
		FirstID *string `json:"first_id"`
		LastID  *string `json:"last_id"`
	}{Data: []model{}, HasMore: end < len(ids)}
	for i, id := range ids[start:end] {
		created := time.Date(2025, 1, 1+i, 0, 0, 0, 0, time.UTC)
		page.Data = append(page.Data, model{Type: "model", ID: id, DisplayName: strings.ToUpper(id[:1]) + id[1:], CreatedAt: created.Format(time.RFC3339)})
	}
	if len(page.Data) > 0 {
		page.FirstID, page.LastID = &page.Data[0].ID, &page.Data[len(page.Data)-1].ID
	}
	writeJSON(w, page)
}

// validate checks what the real API rejects with a 400 about shape.
func validateAnthropic(req *AnthropicRequest) string {
	switch {
	case req.Model == "":
		return "model: Field required"
	case req.MaxTokens <= 0:
		return "max_tokens: Field required (a positive integer)"
	case len(req.Messages) == 0:
		return "messages: at least one message is required"
	}
	toolUses := map[string]bool{}
	for i, m := range req.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
		if i > 0 && req.Messages[i-1].Role == m.Role {
			return fmt.Sprintf("messages: roles must alternate between \"user\" and \"assistant\", but found multiple %q roles in a row", m.Role)
		}
		bs := m.Blocks()
		if len(bs) == 0 {
			return fmt.Sprintf("messages.%d: all messages must have non-empty content", i)
		}
		for j, b := range bs {
			switch b.Type {
			case "text":
				if b.Text == "" {
					return fmt.Sprintf("messages.%d.content.%d.text: text content blocks must be non-empty", i, j)
				}
			case "tool_use":
				if m.Role != "assistant" {
					return fmt.Sprintf("messages.%d.content.%d: tool_use blocks are only allowed in assistant messages", i, j)
				}
				toolUses[b.ID] = true
			case "tool_result":
				if m.Role != "user" || !toolUses[b.ToolUseID] {
					return fmt.Sprintf("messages.%d.content.%d: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, j, b.ToolUseID)
				}
			}
		}
	}
	return ""
}

func (a *Anthropic) messages(w http.ResponseWriter, r *http.Request, body []byte) {
	var req AnthropicRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeAnthropicError(w, Fault{Status: 400, Message: "invalid JSON body: " + err.Error()}, "")
		return
	}
	req.Raw = body
	if msg := validateAnthropic(&req); msg != "" {
		writeAnthropicError(w, Fault{Status: 400, Message: msg}, "")
		return
	}
	a.mu.Lock()
	replyFn := a.reply
	a.mu.Unlock()
	if replyFn == nil {
		replyFn = AnthropicEcho
	}
	rep := replyFn(&req)
	fault := a.nextFault()
	if fault == (Fault{}) {
		fault = rep.Fault
	}
	if rep.Delay > 0 {
		select {
		case <-time.After(rep.Delay):
		case <-r.Context().Done():
			return
		case <-a.closed:
			return
		}
	}
	if fault.Hang {
		select {
		case <-r.Context().Done():
		case <-a.closed:
		}
		return
	}
	if fault.Status != 0 {
		writeAnthropicError(w, fault, rep.ErrorType)
		return
	}
	msg := a.message(&req, rep)
	if req.Stream {
		a.stream(w, r, msg, rep, fault)
		return
	}
	w.Header().Set("request-id", "req_fake"+strconv.FormatInt(a.seq.Load(), 10))
	writeJSON(w, msg)
}

type anthropicMessage struct {
	ID           string           `json:"id"`
	Type         string           `json:"type"`
	Role         string           `json:"role"`
	Model        string           `json:"model"`
	Content      []AnthropicBlock `json:"content"`
	StopReason   *string          `json:"stop_reason"`
	StopSequence *string          `json:"stop_sequence"`
	Usage        AnthropicUsage   `json:"usage"`
}

// message builds the complete answer for rep.
func (a *Anthropic) message(req *AnthropicRequest, rep AnthropicReply) anthropicMessage {
	n := a.seq.Add(1)
	msg := anthropicMessage{ID: fmt.Sprintf("msg_fake%d", n), Type: "message", Role: "assistant", Model: req.Model, Content: []AnthropicBlock{}}
	if rep.Thinking != "" {
		sig := "sig_fake"
		msg.Content = append(msg.Content, AnthropicBlock{Type: "thinking", Thinking: &rep.Thinking, Signature: &sig})
	}
	if rep.Text != "" {
		msg.Content = append(msg.Content, AnthropicBlock{Type: "text", Text: rep.Text})
	}
	for i, tu := range rep.ToolUses {
		if tu.ID == "" {
			tu.ID = fmt.Sprintf("toolu_fake%d_%d", n, i)
		}
		in := tu.Input
		if len(in) == 0 {
			in = json.RawMessage(`{}`)
		}
		msg.Content = append(msg.Content, AnthropicBlock{Type: "tool_use", ID: tu.ID, Name: tu.Name, Input: in})
	}
	stop := rep.StopReason
	if stop == "" {
		stop = "end_turn"
		if len(rep.ToolUses) > 0 {
			stop = "tool_use"
		}
	}
	msg.StopReason = &stop
	if rep.StopSequence != "" {
		msg.StopSequence = &rep.StopSequence
	}
	if rep.Usage != nil {
		msg.Usage = *rep.Usage
	} else {
		in := WordCount(req.SystemText())
		for _, m := range req.Messages {
			in += WordCount(m.Text())
		}
		out := WordCount(rep.Thinking) + WordCount(rep.Text)
		for _, b := range msg.Content {
			if b.Type == "tool_use" {
				out += WordCount(b.Name + " " + string(b.Input))
			}
		}
		msg.Usage = AnthropicUsage{InputTokens: in, OutputTokens: out}
	}
	return msg
}

// stream writes msg as the Messages API's event sequence: message_start,
// per block content_block_start / _delta... / _stop, message_delta with the
// stop reason and output usage, message_stop; with ping events interleaved.
func (a *Anthropic) stream(w http.ResponseWriter, r *http.Request, msg anthropicMessage, rep AnthropicReply, fault Fault) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(endStream); !ok {
				panic(v)
			}
		}
	}()
	fl, _ := w.(http.Flusher)
	flush := func() {
		if fl != nil {
			fl.Flush()
		}
	}
	sent := 0
	send := func(name string, v any) {
		if fault.DisconnectAfter != 0 && (fault.DisconnectAfter < 0 || sent >= fault.DisconnectAfter) {
			flush()
			disconnect(w)
		}
		if rep.StreamError != nil && sent == rep.StreamErrorAfter {
			b, _ := json.Marshal(map[string]any{"type": "error", "error": rep.StreamError})
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
			flush()
			panic(endStream{}) // the real API ends the stream after an error event
		}
		if rep.StallAfter > 0 && sent == rep.StallAfter {
			flush()
			select {
			case <-r.Context().Done():
				if rep.OnClientGone != nil {
					rep.OnClientGone()
				}
			case <-a.closed:
			}
			panic(http.ErrAbortHandler)
		}
		if rep.EventDelay > 0 && sent > 0 {
			select {
			case <-time.After(rep.EventDelay):
			case <-r.Context().Done():
				panic(http.ErrAbortHandler)
			case <-a.closed:
				panic(http.ErrAbortHandler)
			}
		}
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
		sent++
		flush()
	}
	ping := func() { _, _ = io.WriteString(w, "event: ping\ndata: {\"type\": \"ping\"}\n\n") }

	start := msg
	start.Content = []AnthropicBlock{}
	start.StopReason, start.StopSequence = nil, nil
	start.Usage = AnthropicUsage{InputTokens: msg.Usage.InputTokens, OutputTokens: 1,
		CacheCreationInputTokens: msg.Usage.CacheCreationInputTokens, CacheReadInputTokens: msg.Usage.CacheReadInputTokens}
	send("message_start", map[string]any{"type": "message_start", "message": start})
	ping()
	for i, b := range msg.Content {
		delta := func(d map[string]any) {
			send("content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": d})
		}
		switch b.Type {
		case "thinking":
			send("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]any{"type": "thinking", "thinking": "", "signature": ""}})
			for _, p := range splitKeep(*b.Thinking) {
				delta(map[string]any{"type": "thinking_delta", "thinking": p})
			}
			delta(map[string]any{"type": "signature_delta", "signature": *b.Signature})
		case "text":
			send("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]any{"type": "text", "text": ""}})
			for j, p := range splitKeep(b.Text) {
				delta(map[string]any{"type": "text_delta", "text": p})
				if j == 1 {
					ping()
				}
			}
		case "tool_use":
			send("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]any{"type": "tool_use", "id": b.ID, "name": b.Name, "input": map[string]any{}}})
			// The real API sends an empty fragment first, then pieces of the JSON.
			in := string(b.Input)
			if in == "{}" {
				in = ""
			}
			half := len(in) / 2
			for _, p := range []string{"", in[:half], in[half:]} {
				if p != "" || len(in) > 0 {
					delta(map[string]any{"type": "input_json_delta", "partial_json": p})
				}
			}
		}
		send("content_block_stop", map[string]any{"type": "content_block_stop", "index": i})
	}
	send("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": msg.StopReason, "stop_sequence": msg.StopSequence},
		"usage": map[string]any{"output_tokens": msg.Usage.OutputTokens}})
	send("message_stop", map[string]any{"type": "message_stop"})
}

// endStream ends a fake stream early and cleanly (panicked from deep in stream, recovered there).
type endStream struct{}

// anthropicErrorType is the error type the Messages API uses for a status.
func anthropicErrorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	default:
		return "api_error"
	}
}

func writeAnthropicError(w http.ResponseWriter, f Fault, typ string) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
	}
	if typ == "" {
		typ = anthropicErrorType(f.Status)
	}
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(f.Status)
		if f.Status == 529 {
			msg = "Overloaded"
		}
	}
	b, _ := json.Marshal(map[string]any{"type": "error", "error": AnthropicError{Type: typ, Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", "req_fake_error")
	w.WriteHeader(f.Status)
	_, _ = w.Write(b)
}
