package api

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Accumulator reassembles a stream of chat chunks into one ChatResponse, as
// if the call had not been streamed: contents and tool-call arguments
// concatenated, logprobs appended, the last finish reason and usage kept.
// The zero value is ready to use.
type Accumulator struct {
	resp    ChatResponse
	choices map[int]*accChoice
	chunks  int
}

type accChoice struct {
	role      string
	content   strings.Builder
	hasText   bool
	refusal   strings.Builder
	hasRef    bool
	tools     map[int]*ToolCall
	finish    string
	logprobs  *Logprobs
	extraText map[string]*strings.Builder // e.g. reasoning_content
}

// Add folds one chunk in.
func (a *Accumulator) Add(c *ChatChunk) {
	if c == nil {
		return
	}
	a.chunks++
	if a.resp.ID == "" {
		a.resp.ID = c.ID
	}
	if c.Created != 0 && a.resp.Created == 0 {
		a.resp.Created = c.Created
	}
	if c.Model != "" {
		a.resp.Model = c.Model
	}
	if c.SystemFingerprint != "" {
		a.resp.SystemFingerprint = c.SystemFingerprint
	}
	if c.ServiceTier != "" {
		a.resp.ServiceTier = c.ServiceTier
	}
	if c.Usage != nil {
		u := *c.Usage
		a.resp.Usage = &u
	}
	if a.choices == nil {
		a.choices = map[int]*accChoice{}
	}
	for i := range c.Choices {
		cc := &c.Choices[i]
		if cc.Index < 0 || cc.Index > 1<<16 {
			continue // nonsense index from a broken upstream; never allocate for it
		}
		ch := a.choices[cc.Index]
		if ch == nil {
			ch = &accChoice{}
			a.choices[cc.Index] = ch
		}
		d := &cc.Delta
		if d.Role != "" {
			ch.role = d.Role
		}
		if d.Content != nil {
			ch.content.WriteString(*d.Content)
			ch.hasText = true
		}
		if d.Refusal != nil {
			ch.refusal.WriteString(*d.Refusal)
			ch.hasRef = true
		}
		for k, v := range d.Extra {
			var s string
			if len(v) > 0 && v[0] == '"' && jsonUnmarshalString(v, &s) {
				if ch.extraText == nil {
					ch.extraText = map[string]*strings.Builder{}
				}
				b := ch.extraText[k]
				if b == nil {
					b = &strings.Builder{}
					ch.extraText[k] = b
				}
				b.WriteString(s)
			}
		}
		for _, td := range d.ToolCalls {
			if td.Index < 0 || td.Index > 1<<16 {
				continue
			}
			if ch.tools == nil {
				ch.tools = map[int]*ToolCall{}
			}
			tc := ch.tools[td.Index]
			if tc == nil {
				tc = &ToolCall{Type: "function"}
				ch.tools[td.Index] = tc
			}
			if td.ID != "" {
				tc.ID = td.ID
			}
			if td.Type != "" {
				tc.Type = td.Type
			}
			tc.Function.Name += td.Function.Name
			tc.Function.Arguments += td.Function.Arguments
		}
		if cc.FinishReason != nil && *cc.FinishReason != "" {
			ch.finish = *cc.FinishReason
		}
		if cc.Logprobs != nil {
			if ch.logprobs == nil {
				ch.logprobs = &Logprobs{}
			}
			ch.logprobs.Content = append(ch.logprobs.Content, cc.Logprobs.Content...)
			ch.logprobs.Refusal = append(ch.logprobs.Refusal, cc.Logprobs.Refusal...)
		}
	}
}

// Chunks returns how many chunks were added.
func (a *Accumulator) Chunks() int { return a.chunks }

// Response returns the reassembled response. It may be called at any time
// (for a broken stream it holds what arrived).
func (a *Accumulator) Response() *ChatResponse {
	r := a.resp
	r.Object = "chat.completion"
	idx := make([]int, 0, len(a.choices))
	for i := range a.choices {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	r.Choices = make([]Choice, 0, len(idx))
	for _, i := range idx {
		ch := a.choices[i]
		m := Message{Role: ch.role}
		if m.Role == "" {
			m.Role = "assistant"
		}
		if ch.hasText || len(ch.tools) == 0 {
			m.Content = TextContent(ch.content.String())
		}
		if ch.hasRef {
			m.Refusal = Ptr(ch.refusal.String())
		}
		if len(ch.tools) > 0 {
			ti := make([]int, 0, len(ch.tools))
			for k := range ch.tools {
				ti = append(ti, k)
			}
			sort.Ints(ti)
			for _, k := range ti {
				m.ToolCalls = append(m.ToolCalls, *ch.tools[k])
			}
		}
		for k, b := range ch.extraText {
			if m.Extra == nil {
				m.Extra = Extra{}
			}
			m.Extra[k] = jsonString(b.String())
		}
		r.Choices = append(r.Choices, Choice{Index: i, Message: m, FinishReason: ch.finish, Logprobs: ch.logprobs})
	}
	return &r
}

// ReassembleSSE reads an OpenAI chat completion event stream from r up to
// "[DONE]" or the end and returns the reassembled response and the number of
// chunks. An error is returned for a chunk that is not valid JSON or a
// broken stream, together with what was reassembled so far.
func ReassembleSSE(r io.Reader) (*ChatResponse, int, error) {
	var acc Accumulator
	sr := NewSSEReader(r)
	for {
		ev, err := sr.Next()
		if err == io.EOF {
			return acc.Response(), acc.Chunks(), nil
		}
		if err != nil {
			return acc.Response(), acc.Chunks(), err
		}
		if IsDone(ev.Data) {
			return acc.Response(), acc.Chunks(), nil
		}
		var c ChatChunk
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			return acc.Response(), acc.Chunks(), fmt.Errorf("decode stream chunk %d: %w", acc.Chunks()+1, err)
		}
		acc.Add(&c)
	}
}
