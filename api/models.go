package api

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Model is one entry of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is the body of GET /v1/models.
type ModelList struct {
	Object string  `json:"object"` // "list"
	Data   []Model `json:"data"`
}

// EmbeddingRequest is an OpenAI embeddings request.
type EmbeddingRequest struct {
	Model string `json:"model"`
	// Input is a string, an array of strings, an array of token ids, or an
	// array of arrays of token ids; kept raw so it passes through unchanged.
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format,omitempty"`
	Dimensions     *int            `json:"dimensions,omitempty"`
	User           string          `json:"user,omitempty"`
	Extra          Extra           `json:"-"`
}

var embeddingRequestNames = names("model", "input", "encoding_format", "dimensions", "user")

type embeddingRequestAlias EmbeddingRequest

// UnmarshalJSON decodes a request, keeping unknown fields in Extra.
func (r *EmbeddingRequest) UnmarshalJSON(data []byte) error {
	var a embeddingRequestAlias
	extra, err := unmarshalExtra(data, &a, embeddingRequestNames)
	if err != nil {
		return err
	}
	*r = EmbeddingRequest(a)
	r.Extra = extra
	return nil
}

// MarshalJSON encodes a request with its Extra fields.
func (r EmbeddingRequest) MarshalJSON() ([]byte, error) {
	return marshalExtra(embeddingRequestAlias(r), r.Extra, embeddingRequestNames)
}

// Validate checks the request's shape.
func (r *EmbeddingRequest) Validate() error {
	if r.Model == "" {
		return BadRequest("model", "missing required parameter 'model'")
	}
	in := bytes.TrimSpace(r.Input)
	if len(in) == 0 || string(in) == "null" {
		return BadRequest("input", "missing required parameter 'input': a string or an array of strings")
	}
	if in[0] != '"' && in[0] != '[' {
		return BadRequest("input", "'input' must be a string, an array of strings, or token ids")
	}
	return nil
}

// Texts returns the input as strings when it is a string or an array of
// strings (for local token counting); nil for token-id input.
func (r *EmbeddingRequest) Texts() []string {
	var one string
	if json.Unmarshal(r.Input, &one) == nil {
		return []string{one}
	}
	var many []string
	if json.Unmarshal(r.Input, &many) == nil {
		return many
	}
	return nil
}

// EmbeddingResponse is the body of an embeddings response.
type EmbeddingResponse struct {
	Object string          `json:"object"` // "list"
	Data   []Embedding     `json:"data"`
	Model  string          `json:"model"`
	Usage  *EmbeddingUsage `json:"usage,omitempty"`
}

// Embedding is one vector; Embedding is a float array or a base64 string,
// depending on encoding_format, kept raw.
type Embedding struct {
	Object    string          `json:"object"` // "embedding"
	Index     int             `json:"index"`
	Embedding json.RawMessage `json:"embedding"`
}

// EmbeddingUsage is token usage of an embeddings call.
type EmbeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// DecodeStrict decodes one JSON value from data into v and turns decoding
// errors into a 400 *Error that says what to fix.
func DecodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return BadRequest("", "request body is empty: send a JSON object")
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case asErr(err, &se):
		return BadRequest("", fmt.Sprintf("request body is not valid JSON (at byte %d): %v", se.Offset, se))
	case asErr(err, &te):
		field := te.Field
		return BadRequest(field, fmt.Sprintf("parameter '%s' has the wrong type: got JSON %s, want %s", field, te.Value, te.Type))
	default:
		return BadRequest("", "invalid request body: "+err.Error())
	}
}
