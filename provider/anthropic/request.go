package anthropic

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
)

// messagesRequest is the body of POST /v1/messages.
type messagesRequest struct {
	Model         string          `json:"model"`
	System        any             `json:"system,omitempty"` // a string, or []block when a part carries cache_control
	Messages      []message       `json:"messages"`
	MaxTokens     int             `json:"max_tokens"`
	Metadata      *metadata       `json:"metadata,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	TopK          json.RawMessage `json:"top_k,omitempty"`
	Thinking      json.RawMessage `json:"thinking,omitempty"`
	Tools         []tool          `json:"tools,omitempty"`
	ToolChoice    *toolChoice     `json:"tool_choice,omitempty"`
}

type metadata struct {
	UserID string `json:"user_id"`
}

type message struct {
	Role    string  `json:"role"` // "user" or "assistant"
	Content []block `json:"content"`
}

// block is a content block of a request or a response: text, image,
// document, tool_use, tool_result, thinking or redacted_thinking.
type block struct {
	Type         string          `json:"type"`
	Text         string          `json:"text,omitempty"`
	Source       *source         `json:"source,omitempty"`
	ID           string          `json:"id,omitempty"`
	Name         string          `json:"name,omitempty"`
	Input        json.RawMessage `json:"input,omitempty"`
	ToolUseID    string          `json:"tool_use_id,omitempty"`
	Content      any             `json:"content,omitempty"` // tool_result: a string or []block
	IsError      bool            `json:"is_error,omitempty"`
	Thinking     string          `json:"thinking,omitempty"`
	Signature    string          `json:"signature,omitempty"`
	Data         string          `json:"data,omitempty"` // redacted_thinking
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type source struct {
	Type      string `json:"type"` // "base64" or "url"
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type tool struct {
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type toolChoice struct {
	Type                   string `json:"type"` // auto, any, tool, none
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// Instructions added to the system prompt for response_format, which the
// Messages API has no parameter for.
const (
	jsonObjectInstruction = "Respond with a single valid JSON object and nothing else: no prose, no code fences."
	jsonSchemaInstruction = "Respond with a single valid JSON object and nothing else (no prose, no code fences) that conforms to this JSON Schema"
)

// toMessagesRequest translates an OpenAI chat request into a Messages API
// request. defaultMax is used when the request sets no output limit.
// Failures are 400 *provider.UpstreamErrors naming the offending parameter.
func (p *Provider) toMessagesRequest(req *api.ChatRequest, defaultMax int) (*messagesRequest, error) {
	bad := func(format string, args ...any) error {
		return &provider.UpstreamError{Provider: p.name, Status: http.StatusBadRequest, Type: "invalid_request_error",
			Message: fmt.Sprintf(format, args...)}
	}
	if req.N != nil && *req.N > 1 {
		return nil, bad("'n' = %d is not supported by %s (the Messages API returns one completion per call): send n=1 and make several calls", *req.N, p.name)
	}
	if req.Logprobs != nil && *req.Logprobs {
		return nil, bad("'logprobs' is not supported by %s: remove it from the request", p.name)
	}
	out := &messagesRequest{
		Model:         req.Model,
		MaxTokens:     req.MaxOutputTokens(),
		StopSequences: req.Stop,
		Temperature:   req.Temperature,
		TopP:          req.TopP,
		TopK:          req.Extra["top_k"],
		Thinking:      req.Extra["thinking"],
	}
	if out.MaxTokens == 0 {
		out.MaxTokens = defaultMax
	}
	if req.User != "" {
		out.Metadata = &metadata{UserID: req.User}
	}

	var system []block
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "developer":
			bs, err := textBlocks(m.Content)
			if err != nil {
				return nil, bad("messages[%d]: %v", i, err)
			}
			system = append(system, bs...)
		case "user":
			bs, err := userBlocks(m.Content)
			if err != nil {
				return nil, bad("messages[%d]: %v", i, err)
			}
			out.append("user", bs...)
		case "assistant":
			bs, err := assistantBlocks(m)
			if err != nil {
				return nil, bad("messages[%d]: %v", i, err)
			}
			out.append("assistant", bs...)
		case "tool":
			if m.ToolCallID == "" {
				return nil, bad("messages[%d] (role tool) has no 'tool_call_id': set it to the id of the assistant's tool call it answers", i)
			}
			res := block{Type: "tool_result", ToolUseID: m.ToolCallID}
			if m.Content.Parts == nil {
				if s := m.Content.Text; s != "" {
					res.Content = s
				}
			} else {
				bs, err := userBlocks(m.Content)
				if err != nil {
					return nil, bad("messages[%d]: %v", i, err)
				}
				if len(bs) > 0 {
					res.Content = bs
				}
			}
			out.append("user", res)
		default:
			return nil, bad("messages[%d].role %q is not supported by %s: use system, developer, user, assistant or tool", i, m.Role, p.name)
		}
	}
	if len(out.Messages) == 0 {
		return nil, bad("'messages' has no user or assistant message with content: %s needs at least one", p.name)
	}

	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object":
			system = append(system, block{Type: "text", Text: jsonObjectInstruction})
		case "json_schema":
			if rf.JSONSchema == nil || len(bytes.TrimSpace(rf.JSONSchema.Schema)) == 0 {
				return nil, bad("response_format json_schema has no 'json_schema.schema'")
			}
			var schema bytes.Buffer
			if err := json.Compact(&schema, rf.JSONSchema.Schema); err != nil {
				return nil, bad("response_format.json_schema.schema is not valid JSON: %v", err)
			}
			text := jsonSchemaInstruction
			if rf.JSONSchema.Name != "" {
				text += fmt.Sprintf(" (named %q", rf.JSONSchema.Name)
				if rf.JSONSchema.Description != "" {
					text += ": " + rf.JSONSchema.Description
				}
				text += ")"
			}
			system = append(system, block{Type: "text", Text: text + ":\n" + schema.String()})
		default:
			return nil, bad("response_format type %q is not supported by %s: use text, json_object or json_schema", rf.Type, p.name)
		}
	}
	out.System = systemValue(system)

	for i, t := range req.Tools {
		if t.Type != "function" {
			return nil, bad("tools[%d].type %q is not supported by %s: only function tools are", i, t.Type, p.name)
		}
		schema := t.Function.Parameters
		if len(bytes.TrimSpace(schema)) == 0 || string(bytes.TrimSpace(schema)) == "null" {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, tool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}
	if len(out.Tools) > 0 {
		if tc := req.ToolChoice; tc != nil {
			switch {
			case tc.Function != "":
				out.ToolChoice = &toolChoice{Type: "tool", Name: tc.Function}
			case tc.Mode == "auto":
				out.ToolChoice = &toolChoice{Type: "auto"}
			case tc.Mode == "required":
				out.ToolChoice = &toolChoice{Type: "any"}
			case tc.Mode == "none":
				out.ToolChoice = &toolChoice{Type: "none"}
			default:
				return nil, bad("tool_choice %q is not supported by %s: use auto, none, required or a named function", tc.Mode, p.name)
			}
		}
		if req.ParallelToolCalls != nil && !*req.ParallelToolCalls {
			if out.ToolChoice == nil {
				out.ToolChoice = &toolChoice{Type: "auto"}
			}
			if out.ToolChoice.Type != "none" {
				out.ToolChoice.DisableParallelToolUse = true
			}
		}
	}
	return out, nil
}

// append adds blocks to the conversation, merging them into the last
// message when it has the same role (the Messages API wants user and
// assistant turns to alternate). Messages without blocks are dropped.
func (r *messagesRequest) append(role string, bs ...block) {
	if len(bs) == 0 {
		return
	}
	if n := len(r.Messages); n > 0 && r.Messages[n-1].Role == role {
		r.Messages[n-1].Content = append(r.Messages[n-1].Content, bs...)
		return
	}
	r.Messages = append(r.Messages, message{Role: role, Content: bs})
}

// systemValue is the system prompt as a plain string, or as blocks when one
// carries cache_control (which only the block form can hold).
func systemValue(bs []block) any {
	if len(bs) == 0 {
		return nil
	}
	texts := make([]string, len(bs))
	for i, b := range bs {
		if b.CacheControl != nil {
			return bs
		}
		texts[i] = b.Text
	}
	return strings.Join(texts, "\n\n")
}

// textBlocks returns the text of system content, one block per part.
func textBlocks(c api.Content) ([]block, error) {
	if c.Parts == nil {
		if c.Text == "" {
			return nil, nil
		}
		return []block{{Type: "text", Text: c.Text}}, nil
	}
	var out []block
	for j, part := range c.Parts {
		if part.Type != "text" {
			return nil, fmt.Errorf("content[%d] of type %q is not allowed in a system message: only text is", j, part.Type)
		}
		if part.Text != "" {
			out = append(out, block{Type: "text", Text: part.Text, CacheControl: part.Extra["cache_control"]})
		}
	}
	return out, nil
}

// userBlocks translates user (or tool result) content: text, images and PDF files.
func userBlocks(c api.Content) ([]block, error) {
	if c.Parts == nil {
		return textBlocks(c)
	}
	var out []block
	for j, part := range c.Parts {
		var b block
		switch part.Type {
		case "text":
			if part.Text == "" {
				continue // the Messages API rejects empty text blocks
			}
			b = block{Type: "text", Text: part.Text}
		case "image_url":
			if part.ImageURL == nil || part.ImageURL.URL == "" {
				return nil, fmt.Errorf("content[%d] (image_url) has no 'image_url.url'", j)
			}
			src, err := imageSource(part.ImageURL.URL)
			if err != nil {
				return nil, fmt.Errorf("content[%d].image_url: %w", j, err)
			}
			b = block{Type: "image", Source: src}
		case "file":
			src, err := fileSource(part.Extra["file"])
			if err != nil {
				return nil, fmt.Errorf("content[%d].file: %w", j, err)
			}
			b = block{Type: "document", Source: src}
		default:
			return nil, fmt.Errorf("content[%d] of type %q is not supported by the Messages API: use text, image_url or file (PDF)", j, part.Type)
		}
		b.CacheControl = part.Extra["cache_control"]
		out = append(out, b)
	}
	return out, nil
}

// imageSource turns an image URL into a source: data: URLs become base64
// sources, http(s) URLs url sources.
func imageSource(u string) (*source, error) {
	if strings.HasPrefix(u, "data:") {
		mediaType, data, err := parseDataURL(u)
		if err != nil {
			return nil, err
		}
		return &source{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &source{Type: "url", URL: u}, nil
	}
	return nil, fmt.Errorf("image URL must be a data: URL or an http(s) URL, got %q", truncate(u, 40))
}

// fileSource turns an OpenAI file part ({"file_data":"data:application/pdf;base64,..."}) into a document source.
func fileSource(raw json.RawMessage) (*source, error) {
	var f struct {
		FileData string `json:"file_data"`
		FileID   string `json:"file_id"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("want {\"file_data\": \"data:application/pdf;base64,...\"}: %w", err)
	}
	if f.FileData == "" {
		return nil, fmt.Errorf("only inline 'file_data' (a data: URL) is supported, not uploaded file ids")
	}
	mediaType, data, err := parseDataURL(f.FileData)
	if err != nil {
		return nil, err
	}
	return &source{Type: "base64", MediaType: mediaType, Data: data}, nil
}

// parseDataURL splits "data:<media type>;base64,<data>" and checks the data.
func parseDataURL(u string) (mediaType, data string, err error) {
	rest, ok := strings.CutPrefix(u, "data:")
	meta, data, found := strings.Cut(rest, ",")
	if !ok || !found {
		return "", "", fmt.Errorf("malformed data: URL: want data:<media type>;base64,<data>")
	}
	mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
	if !isBase64 || mediaType == "" {
		return "", "", fmt.Errorf("data: URL must be base64 with a media type, e.g. data:image/png;base64,...")
	}
	if _, err := base64.StdEncoding.DecodeString(data); err != nil {
		return "", "", fmt.Errorf("data: URL payload is not valid base64: %w", err)
	}
	return mediaType, data, nil
}

// assistantBlocks translates an earlier assistant turn: text, then its tool calls.
func assistantBlocks(m api.Message) ([]block, error) {
	var out []block
	if m.Content.Parts == nil {
		if m.Content.Text != "" {
			out = append(out, block{Type: "text", Text: m.Content.Text})
		}
	} else {
		for j, part := range m.Content.Parts {
			switch part.Type {
			case "text":
				if part.Text != "" {
					out = append(out, block{Type: "text", Text: part.Text, CacheControl: part.Extra["cache_control"]})
				}
			case "refusal":
				// A refusal is text the model produced.
				var r string
				_ = json.Unmarshal(part.Extra["refusal"], &r)
				if r != "" {
					out = append(out, block{Type: "text", Text: r})
				}
			default:
				return nil, fmt.Errorf("assistant content[%d] of type %q is not supported: only text is", j, part.Type)
			}
		}
	}
	if len(out) == 0 && m.Refusal != nil && *m.Refusal != "" {
		out = append(out, block{Type: "text", Text: *m.Refusal})
	}
	for k, tc := range m.ToolCalls {
		if tc.ID == "" || tc.Function.Name == "" {
			return nil, fmt.Errorf("tool_calls[%d] needs an 'id' and a 'function.name'", k)
		}
		input := json.RawMessage(`{}`)
		if args := strings.TrimSpace(tc.Function.Arguments); args != "" {
			var buf bytes.Buffer
			if err := json.Compact(&buf, []byte(args)); err != nil {
				return nil, fmt.Errorf("tool_calls[%d].function.arguments is not valid JSON: %v", k, err)
			}
			input = buf.Bytes()
		}
		out = append(out, block{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
