package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

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

// plainRequest and plainResponse are what fastDecode reads of a chat
// request and its response.
type plainRequest struct {
	Messages          []plainMessage `json:"messages"`
	Tools             []api.Tool     `json:"tools"`
	ParallelToolCalls *bool          `json:"parallel_tool_calls"`
}

type plainResponse struct {
	Choices []plainChoice `json:"choices"`
}

type plainChoice struct {
	FinishReason string       `json:"finish_reason"`
	Message      plainMessage `json:"message"`
}

// fastDecode fills ex from plain-shaped bodies and reports whether it could.
// Each body is read by scanPlain when it has the common shape, else by
// encoding/json into the same structs.
func fastDecode(reqBody, respBody []byte, ex *Example) bool {
	var req plainRequest
	var resp plainResponse
	if !scanPlainRequest(reqBody, &req) {
		req = plainRequest{}
		if json.Unmarshal(reqBody, &req) != nil {
			return false
		}
	}
	if !scanPlainResponse(respBody, &resp) {
		resp = plainResponse{}
		if json.Unmarshal(respBody, &resp) != nil {
			return false
		}
	}
	if len(resp.Choices) == 0 {
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

// scanPlain reads the common shape of chat bodies — string or null content,
// no tools or tool calls — about ten times faster than encoding/json, which
// was most of the select stage's cost. It gives what json.Unmarshal into
// plainRequest/plainResponse gives, or reports false for anything it does
// not handle exactly as encoding/json would: invalid JSON or UTF-8, a key
// that matches a field only case-insensitively or twice, a field of another
// type, tools, tool calls. FuzzScanPlain holds it to encoding/json.
type scanPlain struct {
	b []byte
	s string // b copied once: strings without escapes are substrings of it
	i int
}

func newScanPlain(b []byte) *scanPlain { return &scanPlain{b: b, s: string(b)} }

func scanPlainRequest(body []byte, req *plainRequest) bool {
	p := newScanPlain(body)
	var seen uint8
	return p.object(func(k string) bool {
		switch k {
		case "messages":
			if !p.once(&seen, 0) {
				return false
			}
			req.Messages = make([]plainMessage, 0, 4)
			return p.array(func() bool {
				req.Messages = append(req.Messages, plainMessage{})
				return p.message(&req.Messages[len(req.Messages)-1])
			})
		case "tools":
			return p.once(&seen, 1) && p.null()
		case "parallel_tool_calls":
			if !p.once(&seen, 2) {
				return false
			}
			switch {
			case p.null():
				return true
			case p.lit("true"):
				req.ParallelToolCalls = api.Ptr(true)
			case p.lit("false"):
				req.ParallelToolCalls = api.Ptr(false)
			default:
				return false
			}
			return true
		}
		return p.other(k, "messages", "tools", "parallel_tool_calls")
	}) && p.end()
}

func scanPlainResponse(body []byte, resp *plainResponse) bool {
	p := newScanPlain(body)
	var seen uint8
	return p.object(func(k string) bool {
		if k != "choices" {
			return p.other(k, "choices")
		}
		if !p.once(&seen, 0) {
			return false
		}
		resp.Choices = make([]plainChoice, 0, 1)
		return p.array(func() bool {
			var c plainChoice
			var seen uint8
			ok := p.object(func(k string) bool {
				switch k {
				case "finish_reason":
					var ok bool
					c.FinishReason, ok = p.str()
					return p.once(&seen, 0) && ok
				case "message":
					return p.once(&seen, 1) && p.message(&c.Message)
				}
				return p.other(k, "finish_reason", "message")
			})
			resp.Choices = append(resp.Choices, c)
			return ok
		})
	}) && p.end()
}

// message reads one message object into m.
func (p *scanPlain) message(m *plainMessage) bool {
	var seen uint8
	return p.object(func(k string) bool {
		var ok bool
		switch k {
		case "role":
			m.Role, ok = p.str()
			return p.once(&seen, 0) && ok
		case "content":
			m.Content, ok = p.strOrNull()
			return p.once(&seen, 1) && ok
		case "name":
			m.Name, ok = p.str()
			return p.once(&seen, 2) && ok
		case "tool_calls":
			return p.once(&seen, 3) && p.null()
		case "tool_call_id":
			m.ToolCallID, ok = p.str()
			return p.once(&seen, 4) && ok
		case "refusal":
			m.Refusal, ok = p.strOrNull()
			return p.once(&seen, 5) && ok
		}
		return p.other(k, "role", "content", "name", "tool_calls", "tool_call_id", "refusal")
	})
}

// once marks field bit as seen and reports whether it was new: encoding/json
// merges a repeated key into the first one's value, which scanPlain leaves to it.
func (p *scanPlain) once(seen *uint8, bit uint) bool {
	if *seen&(1<<bit) != 0 {
		return false
	}
	*seen |= 1 << bit
	return true
}

// other skips the value of an unknown key, unless encoding/json would match
// it to one of fields case-insensitively.
func (p *scanPlain) other(k string, fields ...string) bool {
	for _, f := range fields {
		if strings.EqualFold(k, f) {
			return false
		}
	}
	return p.skip(0)
}

func (p *scanPlain) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips whitespace and returns the next byte (0 at the end).
func (p *scanPlain) next() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *scanPlain) end() bool {
	p.ws()
	return p.i == len(p.b)
}

func (p *scanPlain) lit(w string) bool {
	if p.next() == w[0] && strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

func (p *scanPlain) null() bool { return p.lit("null") }

// object reads an object, calling field for each key with p at its value;
// field must read the value.
func (p *scanPlain) object(field func(key string) bool) bool {
	if p.next() != '{' {
		return false
	}
	p.i++
	if p.next() == '}' {
		p.i++
		return true
	}
	for {
		k, ok := p.str()
		if !ok || p.next() != ':' {
			return false
		}
		p.i++
		if !field(k) {
			return false
		}
		switch p.next() {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// array reads an array, calling elem with p at each element.
func (p *scanPlain) array(elem func() bool) bool {
	if p.next() != '[' {
		return false
	}
	p.i++
	if p.next() == ']' {
		p.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch p.next() {
		case ',':
			p.i++
		case ']':
			p.i++
			return true
		default:
			return false
		}
	}
}

func (p *scanPlain) strOrNull() (*string, bool) {
	if p.null() {
		return nil, true
	}
	s, ok := p.str()
	if !ok {
		return nil, false
	}
	return &s, true
}

// str reads a string. Strings with escapes are decoded as encoding/json
// does; invalid UTF-8 (which it would replace) is refused.
func (p *scanPlain) str() (string, bool) {
	if p.next() != '"' {
		return "", false
	}
	start := p.i + 1
	ascii := true
	for j := start; j < len(p.b); j++ {
		if j += plainRun(p.b[j:]); j == len(p.b) {
			break
		}
		switch c := p.b[j]; {
		case c == '"':
			if !ascii && !utf8.Valid(p.b[start:j]) {
				return "", false
			}
			p.i = j + 1
			return p.s[start:j], true
		case c == '\\':
			return p.unescape(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

func (p *scanPlain) unescape(start int) (string, bool) {
	b := p.b
	out := make([]byte, 0, 64)
	for j := start; j < len(b); {
		c := b[j]
		switch {
		case c == '"':
			if !utf8.Valid(out) {
				return "", false
			}
			p.i = j + 1
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			j++
			continue
		}
		if j+1 >= len(b) {
			return "", false
		}
		switch e := b[j+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(b[j:])
			if r < 0 {
				return "", false
			}
			j += 6
			if utf16.IsSurrogate(r) {
				// As encoding/json: a valid pair is one rune, anything else U+FFFD.
				if dec := utf16.DecodeRune(r, hex4(b[j:])); dec != unicode.ReplacementChar {
					j += 6
					r = dec
				} else {
					r = unicode.ReplacementChar
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// hex4 decodes a \uXXXX escape at the start of b, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// skip reads and discards any JSON value.
func (p *scanPlain) skip(depth int) bool {
	if depth > 100 { // deeper than chat bodies go: leave it to encoding/json
		return false
	}
	switch c := p.next(); {
	case c == '"':
		return p.skipStr()
	case c == '{':
		return p.object(func(string) bool { return p.skip(depth + 1) })
	case c == '[':
		return p.array(func() bool { return p.skip(depth + 1) })
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.null()
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return false
}

// skipStr skips a string, checking only its syntax (encoding/json accepts
// invalid UTF-8 in a value it ignores).
func (p *scanPlain) skipStr() bool {
	b := p.b
	for j := p.i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			p.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if j+1 >= len(b) {
				return false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if hex4(b[j:]) < 0 {
					return false
				}
				j += 5
			default:
				return false
			}
		}
	}
	return false
}

func (p *scanPlain) number() bool {
	b, i := p.b, p.i
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	p.i = i
	return true
}
