// Package api holds Foundry's wire types: the OpenAI chat completions,
// embeddings and models formats, the one HTTP error writer, server-sent
// events, and the reassembly of a chunk stream into one response.
//
// Types keep the fields they do not name in an Extra map so that requests
// pass through Foundry to OpenAI-compatible upstreams unchanged.
package api

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ChatRequest is an OpenAI chat completions request.
type ChatRequest struct {
	Model               string            `json:"model"`
	Messages            []Message         `json:"messages"`
	Tools               []Tool            `json:"tools,omitempty"`
	ToolChoice          *ToolChoice       `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool             `json:"parallel_tool_calls,omitempty"`
	ResponseFormat      *ResponseFormat   `json:"response_format,omitempty"`
	N                   *int              `json:"n,omitempty"`
	Seed                *int64            `json:"seed,omitempty"`
	Logprobs            *bool             `json:"logprobs,omitempty"`
	TopLogprobs         *int              `json:"top_logprobs,omitempty"`
	Stop                Stop              `json:"stop,omitempty"`
	User                string            `json:"user,omitempty"`
	Metadata            map[string]string `json:"metadata,omitempty"`
	Stream              bool              `json:"stream,omitempty"`
	StreamOptions       *StreamOptions    `json:"stream_options,omitempty"`
	MaxTokens           *int              `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int              `json:"max_completion_tokens,omitempty"`
	Temperature         *float64          `json:"temperature,omitempty"`
	TopP                *float64          `json:"top_p,omitempty"`
	FrequencyPenalty    *float64          `json:"frequency_penalty,omitempty"`
	PresencePenalty     *float64          `json:"presence_penalty,omitempty"`

	// Extra holds every other field (logit_bias, store, reasoning_effort,
	// vendor extensions...), sent on unchanged.
	Extra Extra `json:"-"`
}

var chatRequestNames = names("model", "messages", "tools", "tool_choice", "parallel_tool_calls",
	"response_format", "n", "seed", "logprobs", "top_logprobs", "stop", "user", "metadata", "stream",
	"stream_options", "max_tokens", "max_completion_tokens", "temperature", "top_p",
	"frequency_penalty", "presence_penalty")

type chatRequestAlias ChatRequest

// UnmarshalJSON decodes a request, keeping unknown fields in Extra.
func (r *ChatRequest) UnmarshalJSON(data []byte) error {
	var a chatRequestAlias
	extra, err := unmarshalExtra(data, &a, chatRequestNames)
	if err != nil {
		return err
	}
	*r = ChatRequest(a)
	r.Extra = extra
	return nil
}

// MarshalJSON encodes a request with its Extra fields.
func (r ChatRequest) MarshalJSON() ([]byte, error) {
	return marshalExtra(chatRequestAlias(r), r.Extra, chatRequestNames)
}

// MaxOutputTokens returns max_completion_tokens, else max_tokens, else 0.
func (r *ChatRequest) MaxOutputTokens() int {
	if r.MaxCompletionTokens != nil {
		return *r.MaxCompletionTokens
	}
	if r.MaxTokens != nil {
		return *r.MaxTokens
	}
	return 0
}

// IncludeUsage reports whether a streaming client asked for the final usage chunk.
func (r *ChatRequest) IncludeUsage() bool {
	return r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// Validate checks what a gateway must know before calling any upstream.
// It returns an *Error with status 400 naming the offending parameter.
func (r *ChatRequest) Validate() error {
	if r.Model == "" {
		return BadRequest("model", "missing required parameter 'model': name the model to call, e.g. \"gpt-4o-mini\"")
	}
	if len(r.Messages) == 0 {
		return BadRequest("messages", "'messages' must be a non-empty array of {role, content} objects")
	}
	for i, m := range r.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool", "function":
		case "":
			return BadRequest(fmt.Sprintf("messages[%d].role", i), fmt.Sprintf("messages[%d] has no 'role': use system, user, assistant or tool", i))
		default:
			return BadRequest(fmt.Sprintf("messages[%d].role", i), fmt.Sprintf("messages[%d].role %q is not one of system, developer, user, assistant, tool", i, m.Role))
		}
	}
	if r.N != nil && (*r.N < 1 || *r.N > 128) {
		return BadRequest("n", "'n' must be between 1 and 128")
	}
	for i, t := range r.Tools {
		if t.Type == "function" && t.Function.Name == "" {
			return BadRequest(fmt.Sprintf("tools[%d].function.name", i), fmt.Sprintf("tools[%d].function has no 'name'", i))
		}
	}
	return nil
}

// StreamOptions are the options of a streaming request.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage,omitempty"`
}

// Message is one chat message, in a request or in a response.
type Message struct {
	Role       string     `json:"role"`
	Content    Content    `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Refusal    *string    `json:"refusal,omitempty"`
	Extra      Extra      `json:"-"`
}

var messageNames = names("role", "content", "name", "tool_calls", "tool_call_id", "refusal")

type messageAlias Message

// UnmarshalJSON decodes a message, keeping unknown fields in Extra.
func (m *Message) UnmarshalJSON(data []byte) error {
	var a messageAlias
	extra, err := unmarshalExtra(data, &a, messageNames)
	if err != nil {
		return err
	}
	*m = Message(a)
	m.Extra = extra
	return nil
}

// MarshalJSON encodes a message with its Extra fields.
func (m Message) MarshalJSON() ([]byte, error) {
	return marshalExtra(messageAlias(m), m.Extra, messageNames)
}

// Content is a message's content: null, a string, or an array of parts.
type Content struct {
	Text  string        // the string form
	Parts []ContentPart // the array form; non-nil when the content was an array
	set   bool          // false: null/absent
}

// TextContent returns string content.
func TextContent(s string) Content { return Content{Text: s, set: true} }

// PartsContent returns array content.
func PartsContent(parts ...ContentPart) Content {
	if parts == nil {
		parts = []ContentPart{}
	}
	return Content{Parts: parts, set: true}
}

// IsNull reports whether the content is null or absent.
func (c Content) IsNull() bool { return !c.set && c.Parts == nil && c.Text == "" }

// String returns the text of the content: the string, or the text parts joined.
func (c Content) String() string {
	if c.Parts == nil {
		return c.Text
	}
	var b bytes.Buffer
	for _, p := range c.Parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// MarshalJSON writes null, a string or an array.
func (c Content) MarshalJSON() ([]byte, error) {
	switch {
	case c.Parts != nil:
		return json.Marshal(c.Parts)
	case c.set || c.Text != "":
		return json.Marshal(c.Text)
	default:
		return []byte("null"), nil
	}
}

// UnmarshalJSON accepts null, a string or an array of parts.
func (c *Content) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	*c = Content{}
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	switch data[0] {
	case '"':
		c.set = true
		return json.Unmarshal(data, &c.Text)
	case '[':
		c.set = true
		c.Parts = []ContentPart{}
		return json.Unmarshal(data, &c.Parts)
	}
	return fmt.Errorf("content must be a string, an array of parts or null")
}

// ContentPart is one element of array content: text, image_url, input_audio, file...
type ContentPart struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
	Extra    Extra     `json:"-"` // input_audio, file, vendor parts
}

var contentPartNames = names("type", "text", "image_url")

type contentPartAlias ContentPart

// UnmarshalJSON decodes a part, keeping unknown fields in Extra.
func (p *ContentPart) UnmarshalJSON(data []byte) error {
	var a contentPartAlias
	extra, err := unmarshalExtra(data, &a, contentPartNames)
	if err != nil {
		return err
	}
	*p = ContentPart(a)
	p.Extra = extra
	return nil
}

// MarshalJSON encodes a part with its Extra fields.
func (p ContentPart) MarshalJSON() ([]byte, error) {
	return marshalExtra(contentPartAlias(p), p.Extra, contentPartNames)
}

// ImageURL is an image given by URL or data: URI.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// Tool is a tool the model may call.
type Tool struct {
	Type     string      `json:"type"`
	Function FunctionDef `json:"function"`
}

// FunctionDef describes a callable function; Parameters is a JSON Schema.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ToolChoice is "none", "auto", "required", or a named function.
type ToolChoice struct {
	Mode     string // "none", "auto", "required"; "" when Function is set
	Function string // the forced function's name
	raw      json.RawMessage
}

// MarshalJSON writes the string or object form (the original bytes when unchanged).
func (t ToolChoice) MarshalJSON() ([]byte, error) {
	if t.raw != nil {
		return t.raw, nil
	}
	if t.Function != "" {
		return json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": t.Function}})
	}
	return json.Marshal(t.Mode)
}

// UnmarshalJSON accepts the string or object form.
func (t *ToolChoice) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	*t = ToolChoice{raw: append(json.RawMessage(nil), data...)}
	if len(data) > 0 && data[0] == '"' {
		return json.Unmarshal(data, &t.Mode)
	}
	var o struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(data, &o); err != nil {
		return fmt.Errorf("tool_choice must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}")
	}
	t.Function = o.Function.Name
	if t.Function == "" {
		t.Mode = o.Type
	}
	return nil
}

// ResponseFormat is {"type":"text"|"json_object"|"json_schema", "json_schema":{...}}.
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema is the json_schema response format's payload.
type JSONSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// Stop is the stop parameter: a string or an array of strings.
type Stop []string

// UnmarshalJSON accepts a string, an array of strings or null.
func (s *Stop) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		*s = nil
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var one string
		if err := json.Unmarshal(data, &one); err != nil {
			return err
		}
		*s = Stop{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return fmt.Errorf("stop must be a string or an array of strings")
	}
	*s = many
	return nil
}

// ToolCall is a call the model made, in a response message.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall is a function name and its JSON-encoded arguments.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ChatResponse is a non-streaming chat completion.
type ChatResponse struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"` // "chat.completion"
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []Choice `json:"choices"`
	Usage             *Usage   `json:"usage,omitempty"`
	SystemFingerprint string   `json:"system_fingerprint,omitempty"`
	ServiceTier       string   `json:"service_tier,omitempty"`
	Extra             Extra    `json:"-"`
}

var chatResponseNames = names("id", "object", "created", "model", "choices", "usage", "system_fingerprint", "service_tier")

type chatResponseAlias ChatResponse

// UnmarshalJSON decodes a response, keeping unknown fields in Extra.
func (r *ChatResponse) UnmarshalJSON(data []byte) error {
	var a chatResponseAlias
	extra, err := unmarshalExtra(data, &a, chatResponseNames)
	if err != nil {
		return err
	}
	*r = ChatResponse(a)
	r.Extra = extra
	return nil
}

// MarshalJSON encodes a response with its Extra fields.
func (r ChatResponse) MarshalJSON() ([]byte, error) {
	return marshalExtra(chatResponseAlias(r), r.Extra, chatResponseNames)
}

// Choice is one completion of a response.
type Choice struct {
	Index        int       `json:"index"`
	Message      Message   `json:"message"`
	FinishReason string    `json:"finish_reason"`
	Logprobs     *Logprobs `json:"logprobs"`
}

// Logprobs are per-token log probabilities.
type Logprobs struct {
	Content []TokenLogprob `json:"content"`
	Refusal []TokenLogprob `json:"refusal,omitempty"`
}

// TokenLogprob is one token's log probability and its most likely alternatives.
type TokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []TopLogprob `json:"top_logprobs"`
}

// TopLogprob is one alternative token.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// Usage is token usage as OpenAI reports it.
type Usage struct {
	PromptTokens            int                      `json:"prompt_tokens"`
	CompletionTokens        int                      `json:"completion_tokens"`
	TotalTokens             int                      `json:"total_tokens"`
	PromptTokensDetails     *PromptTokensDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *CompletionTokensDetails `json:"completion_tokens_details,omitempty"`
}

// PromptTokensDetails breaks prompt tokens down.
type PromptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
	AudioTokens  int `json:"audio_tokens,omitempty"`
}

// CompletionTokensDetails breaks completion tokens down.
type CompletionTokensDetails struct {
	ReasoningTokens          int `json:"reasoning_tokens"`
	AudioTokens              int `json:"audio_tokens,omitempty"`
	AcceptedPredictionTokens int `json:"accepted_prediction_tokens,omitempty"`
	RejectedPredictionTokens int `json:"rejected_prediction_tokens,omitempty"`
}

// ChatChunk is one server-sent event of a streaming chat completion.
type ChatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"` // "chat.completion.chunk"
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint,omitempty"`
	ServiceTier       string        `json:"service_tier,omitempty"`
	Choices           []ChunkChoice `json:"choices"`
	Usage             *Usage        `json:"usage,omitempty"`
	Extra             Extra         `json:"-"`
}

var chatChunkNames = names("id", "object", "created", "model", "system_fingerprint", "service_tier", "choices", "usage")

type chatChunkAlias ChatChunk

// UnmarshalJSON decodes a chunk, keeping unknown fields in Extra.
func (c *ChatChunk) UnmarshalJSON(data []byte) error {
	var a chatChunkAlias
	extra, err := unmarshalExtra(data, &a, chatChunkNames)
	if err != nil {
		return err
	}
	*c = ChatChunk(a)
	c.Extra = extra
	return nil
}

// MarshalJSON encodes a chunk with its Extra fields.
func (c ChatChunk) MarshalJSON() ([]byte, error) {
	if c.Choices == nil {
		c.Choices = []ChunkChoice{}
	}
	return marshalExtra(chatChunkAlias(c), c.Extra, chatChunkNames)
}

// ChunkChoice is one choice's delta in a chunk.
type ChunkChoice struct {
	Index        int       `json:"index"`
	Delta        Delta     `json:"delta"`
	FinishReason *string   `json:"finish_reason"`
	Logprobs     *Logprobs `json:"logprobs,omitempty"`
}

// Delta is the increment of a message in a chunk.
type Delta struct {
	Role      string          `json:"role,omitempty"`
	Content   *string         `json:"content,omitempty"`
	Refusal   *string         `json:"refusal,omitempty"`
	ToolCalls []ToolCallDelta `json:"tool_calls,omitempty"`
	Extra     Extra           `json:"-"` // e.g. reasoning_content from some servers
}

var deltaNames = names("role", "content", "refusal", "tool_calls")

type deltaAlias Delta

// UnmarshalJSON decodes a delta, keeping unknown fields in Extra.
func (d *Delta) UnmarshalJSON(data []byte) error {
	var a deltaAlias
	extra, err := unmarshalExtra(data, &a, deltaNames)
	if err != nil {
		return err
	}
	*d = Delta(a)
	d.Extra = extra
	return nil
}

// MarshalJSON encodes a delta with its Extra fields.
func (d Delta) MarshalJSON() ([]byte, error) {
	return marshalExtra(deltaAlias(d), d.Extra, deltaNames)
}

// ToolCallDelta is an increment of one tool call, identified by Index.
type ToolCallDelta struct {
	Index    int               `json:"index"`
	ID       string            `json:"id,omitempty"`
	Type     string            `json:"type,omitempty"`
	Function FunctionCallDelta `json:"function"`
}

// FunctionCallDelta is an increment of a function call's name and arguments.
type FunctionCallDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// Ptr returns a pointer to v, for optional fields.
func Ptr[T any](v T) *T { return &v }
