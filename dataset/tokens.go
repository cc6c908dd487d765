package dataset

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/foundryhq/foundry/hub"
	"github.com/foundryhq/foundry/tokenizer"
)

// TokenCounter counts tokens for a version's length histogram and the
// validate stage's token bounds.
type TokenCounter interface {
	// Method names the counter in the manifest (Histogram.Method):
	// ApproxMethod, or "tokenizer NAME".
	Method() string
	// Tokens counts a whole example as the model reads it.
	Tokens(ex *Example) int
	// TextTokens counts a piece of text (an answer).
	TextTokens(s string) int
}

// ApproxMethod is the Histogram.Method of the default counter, an
// estimate: characters / 4 (see ApproxTokens).
const ApproxMethod = "≈ chars/4"

// legacyApproxMethod is what versions built before ApproxMethod recorded.
const legacyApproxMethod = "approximate: characters/4"

// Approx is the default TokenCounter: characters / 4, no tokenizer needed.
var Approx TokenCounter = approxCounter{}

type approxCounter struct{}

func (approxCounter) Method() string          { return ApproxMethod }
func (approxCounter) Tokens(ex *Example) int  { return ApproxTokens(ex.Chars()) }
func (approxCounter) TextTokens(s string) int { return ApproxTokens(len(s)) }

// Estimated reports whether the histogram's counts are the chars/4 estimate
// rather than a tokenizer's.
func (h Histogram) Estimated() bool {
	return h.Method == "" || h.Method == ApproxMethod || h.Method == legacyApproxMethod
}

// Label is how the histogram's counter is shown: ApproxMethod for any
// estimate (also of versions built before the field was written), else
// the tokenizer it names.
func (h Histogram) Label() string {
	if h.Estimated() {
		return ApproxMethod
	}
	return h.Method
}

// TokenizerCounter counts real tokens with a Hugging Face tokenizer: a
// conversation is rendered with the tokenizer's chat template (the text
// the model is trained on, special tokens included) and encoded; without a
// chat template, or for a row the template rejects, the messages' text
// (Example.Text("conversation")) is encoded. It is safe for concurrent use.
type TokenizerCounter struct {
	tok  *tokenizer.Tokenizer
	name string
	// fallbacks counts rows the chat template could not render.
	fallbacks atomic.Int64
}

// NewTokenizerCounter counts with tok; name (a model id or directory) is
// recorded in the manifest as "tokenizer NAME".
func NewTokenizerCounter(tok *tokenizer.Tokenizer, name string) *TokenizerCounter {
	return &TokenizerCounter{tok: tok, name: name}
}

// tokenizerFiles are what a tokenizer needs from a model repo.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja", "special_tokens_map.json"}

// LoadTokenCounter loads the tokenizer named by ref: a directory holding
// tokenizer.json (or the file itself), or a Hugging Face model id
// ORG/NAME[@rev] whose tokenizer files are taken from the hub cache or
// fetched into it (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE honoured), with
// download progress to progress (nil: none).
func LoadTokenCounter(ctx context.Context, ref string, progress io.Writer) (*TokenizerCounter, error) {
	if ref == "" {
		return nil, fmt.Errorf("tokenizer: name a directory holding tokenizer.json or a Hugging Face model id")
	}
	var (
		tok *tokenizer.Tokenizer
		err error
	)
	switch st, serr := os.Stat(ref); {
	case serr == nil && st.IsDir():
		tok, err = tokenizer.Load(ref)
	case serr == nil:
		tok, err = tokenizer.LoadFile(ref)
	default:
		c, herr := hub.New(hub.Options{Include: tokenizerFiles, Progress: progress})
		if herr != nil {
			return nil, fmt.Errorf("tokenizer %s: %w", ref, herr)
		}
		dir, herr := c.ResolveModel(ctx, ref)
		if herr != nil {
			return nil, fmt.Errorf("tokenizer %s: %w", ref, herr)
		}
		tok, err = tokenizer.Load(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", ref, err)
	}
	return NewTokenizerCounter(tok, ref), nil
}

// Method is "tokenizer NAME".
func (c *TokenizerCounter) Method() string { return "tokenizer " + c.name }

// Tokens counts the example as the chat template renders it (or its
// messages' text when the tokenizer has no template or the template
// rejects the row).
func (c *TokenizerCounter) Tokens(ex *Example) int {
	if c.tok.ChatTemplate != "" || len(c.tok.ChatTemplates) > 0 {
		if text, err := c.tok.ApplyChatTemplate(chatRequest(ex)); err == nil {
			return len(c.tok.Encode(text, tokenizer.EncodeOptions{}))
		}
		c.fallbacks.Add(1)
	}
	return c.TextTokens(ex.Text("conversation"))
}

// TextTokens encodes s as plain text: special tokens written in it are
// counted as text, as a user's message is.
func (c *TokenizerCounter) TextTokens(s string) int {
	return len(c.tok.Encode(s, tokenizer.EncodeOptions{SplitSpecial: true}))
}

// Fallbacks is how many rows so far the chat template could not render and
// were counted from their text instead.
func (c *TokenizerCounter) Fallbacks() int64 { return c.fallbacks.Load() }

// chatRequest is the conversation as chat templates see it: tool-call
// arguments as the JSON string OpenAI sends, tools passed through.
func chatRequest(ex *Example) tokenizer.ChatRequest {
	req := tokenizer.ChatRequest{Messages: make([]tokenizer.Message, 0, len(ex.Messages))}
	for _, m := range ex.Messages {
		tm := tokenizer.Message{Role: m.Role, Content: m.Content.String(), Name: m.Name, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			args, _ := json.Marshal(tc.Function.Arguments)
			tm.ToolCalls = append(tm.ToolCalls, tokenizer.ToolCall{ID: tc.ID, Type: tc.Type,
				Function: tokenizer.FunctionCall{Name: tc.Function.Name, Arguments: args}})
		}
		req.Messages = append(req.Messages, tm)
	}
	for _, t := range ex.Tools {
		if b, err := json.Marshal(t); err == nil {
			req.Tools = append(req.Tools, b)
		}
	}
	return req
}

// tokenBounds applies the validate spec's token bounds (min_tokens,
// max_tokens on the answer, max_total_tokens on the conversation) with a
// real tokenizer: validate is built without them, and its rows that pass
// are checked here, in the same funnel line.
func tokenBounds(spec ValidateSpec, c TokenCounter) (Stage, error) {
	rest := spec
	rest.MinTokens, rest.MaxTokens, rest.MaxTotalTokens = 0, 0, 0
	st, err := Validate(rest)
	if err != nil {
		return nil, err
	}
	rs, ok := st.(RowStage)
	if !ok {
		return nil, fmt.Errorf("validate: token bounds with a tokenizer need the validate stage to be a RowStage (it is %T); drop tokenizer: or the token bounds", st)
	}
	decide := rs.Decide
	rs.Decide = func(ctx context.Context, ex *Example, out *Out) (string, string, error) {
		reason, detail, err := decide(ctx, ex, out)
		if reason != "" || err != nil {
			return reason, detail, err
		}
		if spec.MinTokens > 0 || spec.MaxTokens > 0 {
			n := c.TextTokens(ex.AnswerText())
			if spec.MinTokens > 0 && n < spec.MinTokens {
				return ReasonTooShort, fmt.Sprintf("%d tokens (%s)", n, c.Method()), nil
			}
			if spec.MaxTokens > 0 && n > spec.MaxTokens {
				return ReasonTooLong, fmt.Sprintf("answer: %d tokens (%s)", n, c.Method()), nil
			}
		}
		if spec.MaxTotalTokens > 0 {
			if n := c.Tokens(ex); n > spec.MaxTotalTokens {
				return ReasonTooLong, fmt.Sprintf("conversation: %d tokens (%s)", n, c.Method()), nil
			}
		}
		return "", "", nil
	}
	return rs, nil
}
