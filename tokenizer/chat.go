package tokenizer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/ncruces/go-strftime"
	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
)

// Message is one chat turn as chat templates see it (OpenAI-style fields).
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Parts, when set, is passed as content instead: a list of
	// {"type": "text", "text": ...} (or "image") dicts, as multimodal
	// templates (Gemma 3) iterate them.
	Parts []ContentPart `json:"-"`
	// Name, ToolCalls, ToolCallID and ReasoningContent (Qwen3's template
	// reads it) are passed to the template only when set.
	Name             string     `json:"name,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID       string     `json:"tool_call_id,omitempty"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
}

// ContentPart is one element of a multi-part message content.
type ContentPart struct {
	Type string `json:"type"` // "text" or "image"
	Text string `json:"text,omitempty"`
}

// ToolCall is an assistant's call of a tool.
type ToolCall struct {
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"` // "function" when empty
	Function FunctionCall `json:"function"`
}

// FunctionCall names the function and its arguments. Arguments is JSON: an
// object, or (as OpenAI sends it) a string holding an object; templates get
// the object either way, keys in order, as HF templates expect a dict.
type FunctionCall struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// ChatRequest is what a chat template renders.
type ChatRequest struct {
	Messages []Message
	// Tools are OpenAI tool schemas ({"type":"function","function":{...}}),
	// passed through with their key order.
	Tools               []json.RawMessage
	AddGenerationPrompt bool
	// ContinueFinalMessage ends the text right after the last (assistant)
	// message's content, without its end-of-turn marker, so generation
	// continues it (HF's continue_final_message). Excludes
	// AddGenerationPrompt.
	ContinueFinalMessage bool
	// Vars are extra template variables, e.g. {"enable_thinking": false}.
	Vars map[string]any
}

// Span is a byte range [Start, End) of rendered text.
type Span struct{ Start, End int }

// Rendered is a rendered chat.
type Rendered struct {
	Text string
	// Assistant holds, per assistant message in order, the span of text the
	// model must produce for it (content, tool calls and the end-of-turn
	// marker): the positions to train on when masking the loss.
	Assistant []Span
}

// ChatTemplate is a compiled Jinja2 chat template.
type ChatTemplate struct {
	tpl                *exec.Template
	bosToken, eosToken string
	// snap moves a position inside an added token to its end, so a span
	// never splits "<|eot_id|>" when a header's first byte equals the one
	// before it.
	snap func(text string, pos int) int
}

// HF renders with trim_blocks and lstrip_blocks (transformers'
// _compile_jinja_template); @huggingface/jinja does the same.
var chatConfig = func() *config.Config {
	c := config.New()
	c.TrimBlocks = true
	c.LeftStripBlocks = true
	return c
}()

var (
	envOnce sync.Once
	chatEnv *exec.Environment
)

func chatEnvironment() *exec.Environment {
	envOnce.Do(func() {
		filters := exec.NewFilterSet(map[string]exec.FilterFunction{}).Update(builtins.Filters)
		_ = filters.Replace("tojson", filterToJSON)
		_ = filters.Replace("items", filterItems)
		_ = filters.Replace("reverse", filterReverse)
		ctx := exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables)
		ctx.Set("strftime_now", func(_ *exec.Evaluator, params *exec.VarArgs) *exec.Value {
			if len(params.Args) != 1 {
				return exec.AsValue(errors.New("strftime_now takes one format argument"))
			}
			return exec.AsValue(strftime.Format(params.Args[0].String(), now()))
		})
		ctx.Set("__foundry_ifelse", ifElse)
		methods := builtins.Methods
		methods.Dict = orderedDictMethods()
		methods.Str = pythonStrMethods()
		chatEnv = &exec.Environment{
			Context:           ctx,
			Filters:           filters,
			Tests:             builtins.Tests,
			ControlStructures: builtins.ControlStructures,
			Methods:           methods,
		}
	})
	return chatEnv
}

// now is time.Now, replaceable in tests.
var now = time.Now

// TemplateError is raised by a template's raise_exception, e.g. "Conversation
// roles must alternate user/assistant/user/assistant/...".
type TemplateError struct{ Msg string }

func (e *TemplateError) Error() string { return "chat template: " + e.Msg }

// NewChatTemplate compiles a Jinja2 chat template. bosToken and eosToken
// are the strings the template sees as bos_token and eos_token.
func NewChatTemplate(source, bosToken, eosToken string) (*ChatTemplate, error) {
	source = preprocessTemplate(source)
	sum := sha256.Sum256([]byte(source))
	id := "chat-" + hex.EncodeToString(sum[:8])
	tpl, err := exec.NewTemplate(id, chatConfig, sourceLoader{id, source}, chatEnvironment())
	if err != nil {
		return nil, fmt.Errorf("parse chat template: %w (Foundry renders templates with gonja; report the construct it lacks)", err)
	}
	return &ChatTemplate{tpl: tpl, bosToken: bosToken, eosToken: eosToken}, nil
}

// sourceLoader serves the template itself and nothing else: a model's
// template must not {% include %} files from the machine.
type sourceLoader struct{ id, source string }

func (l sourceLoader) Read(path string) (io.Reader, error) {
	if path != l.id {
		return nil, fmt.Errorf("chat templates cannot include or import other templates (%q)", path)
	}
	return strings.NewReader(l.source), nil
}

func (l sourceLoader) Resolve(path string) (string, error) { return path, nil }

func (l sourceLoader) Inherit(string) (loaders.Loader, error) { return l, nil }

// CompileChatTemplate compiles the tokenizer's chat template. name picks one of
// several named templates ("" for the default, or "tool_use" as HF picks
// when tools are given and the config has one).
func (t *Tokenizer) CompileChatTemplate(name string) (*ChatTemplate, error) {
	src := t.ChatTemplate
	if name != "" {
		s, ok := t.ChatTemplates[name]
		if !ok {
			return nil, fmt.Errorf("chat template %q not found in tokenizer_config.json (have %v)", name, keys(t.ChatTemplates))
		}
		src = s
	}
	if src == "" {
		return nil, errors.New("the model has no chat_template in tokenizer_config.json (pass one with NewChatTemplate)")
	}
	ct, err := NewChatTemplate(src, t.BOSToken, t.EOSToken)
	if err != nil {
		return nil, err
	}
	ct.snap = t.added.snapToTokenEnd
	return ct, nil
}

// ApplyChatTemplate renders req with the tokenizer's template, picking the
// "tool_use" template when tools are given and the config names one (as
// HF's apply_chat_template does). It renders once; RenderChat also finds
// the assistant spans, for training.
func (t *Tokenizer) ApplyChatTemplate(req ChatRequest) (string, error) {
	ct, err := t.chatTemplate(req)
	if err != nil {
		return "", err
	}
	return ct.RenderText(req)
}

// RenderChat renders req like ApplyChatTemplate and finds the assistant
// spans (see ChatTemplate.Render); it renders the conversation several times.
func (t *Tokenizer) RenderChat(req ChatRequest) (Rendered, error) {
	ct, err := t.chatTemplate(req)
	if err != nil {
		return Rendered{}, err
	}
	return ct.Render(req)
}

// chatTemplate returns the compiled template for req, compiling it once.
func (t *Tokenizer) chatTemplate(req ChatRequest) (*ChatTemplate, error) {
	name := ""
	if len(t.ChatTemplates) > 0 {
		if _, ok := t.ChatTemplates["tool_use"]; ok && len(req.Tools) > 0 {
			name = "tool_use"
		} else if _, ok := t.ChatTemplates["default"]; ok {
			name = "default"
		}
	}
	t.chatMu.Lock()
	if t.chatCache == nil {
		t.chatCache = map[string]*ChatTemplate{}
	}
	ct, ok := t.chatCache[name]
	t.chatMu.Unlock()
	if !ok {
		var err error
		if ct, err = t.CompileChatTemplate(name); err != nil {
			return nil, err
		}
		t.chatMu.Lock()
		t.chatCache[name] = ct
		t.chatMu.Unlock()
	}
	return ct, nil
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// RenderText renders req and returns only the text.
func (c *ChatTemplate) RenderText(req ChatRequest) (string, error) {
	if req.ContinueFinalMessage && req.AddGenerationPrompt {
		return "", errors.New("chat template: ContinueFinalMessage and AddGenerationPrompt exclude each other")
	}
	vars, err := c.vars(req, req.Messages, req.AddGenerationPrompt)
	if err != nil {
		return "", err
	}
	text, err := c.exec(vars)
	if err != nil || !req.ContinueFinalMessage {
		return text, err
	}
	// As transformers: cut after the last occurrence of the final content.
	if len(req.Messages) == 0 {
		return "", errors.New("chat template: ContinueFinalMessage needs a final message")
	}
	final := req.Messages[len(req.Messages)-1].Content
	trimmed := strings.TrimSpace(final)
	loc := strings.LastIndex(text, trimmed)
	if trimmed == "" || loc < 0 {
		return "", errors.New("chat template: ContinueFinalMessage: the final message's content does not appear in the rendered text")
	}
	if left := strings.TrimLeftFunc(final, unicode.IsSpace); strings.HasPrefix(text[loc:], left) {
		return text[:loc+len(left)], nil
	}
	return text[:loc+len(trimmed)], nil
}

// Render renders req and finds the assistant spans. A span starts where
// rendering the conversation before the message with
// add_generation_prompt=true ends. It ends where the next turn's header
// starts, found by rendering the conversation up to the message followed by
// a probe user turn; when that differs from the full text (Qwen3 renders the
// last assistant turn with its reasoning), it ends where rendering the
// conversation through the message ends.
func (c *ChatTemplate) Render(req ChatRequest) (Rendered, error) {
	if req.ContinueFinalMessage {
		// Spans come from the whole rendering, clipped to the cut text.
		cut, err := c.RenderText(req)
		if err != nil {
			return Rendered{}, err
		}
		whole := req
		whole.ContinueFinalMessage = false
		r, err := c.Render(whole)
		if err != nil {
			return Rendered{}, err
		}
		r.Text = cut
		for i := range r.Assistant {
			r.Assistant[i].Start = min(r.Assistant[i].Start, len(cut))
			r.Assistant[i].End = min(r.Assistant[i].End, len(cut))
		}
		return r, nil
	}
	text, err := c.RenderText(req)
	if err != nil {
		return Rendered{}, err
	}
	out := Rendered{Text: text}
	from := 0
	for i, m := range req.Messages {
		if m.Role != "assistant" {
			continue
		}
		before, err := c.renderPrefix(req, req.Messages[:i], true)
		if err != nil || !strings.HasPrefix(text, before) || len(before) < from {
			return Rendered{}, fmt.Errorf("chat template: rendering the conversation before assistant message %d is not a prefix of the full rendering, so its span for loss masking is unknown", i)
		}
		end := c.turnEnd(req, i, text)
		if end < 0 {
			after, err := c.renderPrefix(req, req.Messages[:i+1], false)
			if err != nil || !strings.HasPrefix(text, after) || len(after) < len(before) {
				return Rendered{}, fmt.Errorf("chat template: cannot find where assistant message %d ends in the rendered text, so its span for loss masking is unknown", i)
			}
			end = len(after)
		}
		out.Assistant = append(out.Assistant, Span{len(before), end})
		from = end
	}
	return out, nil
}

const probeContent = "\ue000foundry-probe\ue001"

// turnEnd returns where assistant message i's rendering ends in text, or -1.
func (c *ChatTemplate) turnEnd(req ChatRequest, i int, text string) int {
	probe := Message{Role: "user", Content: probeContent}
	msgs := append(append([]Message(nil), req.Messages[:i+1]...), probe)
	withProbe, err := c.renderPrefix(req, msgs, false)
	if err != nil {
		return -1
	}
	p := strings.Index(withProbe, probeContent)
	// Rendered alone and without tools, so that no system block (Qwen's
	// tool prompt) precedes the probe's header.
	alone, err := c.renderPrefix(ChatRequest{Vars: req.Vars}, []Message{probe}, false)
	q := strings.Index(alone, probeContent)
	if err != nil || p < 0 || q < 0 {
		return -1
	}
	// The probe turn's header is the longest common suffix of what precedes
	// the probe in both renderings.
	h := 0
	for h < p && h < q && withProbe[p-1-h] == alone[q-1-h] {
		h++
	}
	end := p - h
	if c.snap != nil {
		end = c.snap(withProbe, end)
	}
	if end > len(text) || text[:end] != withProbe[:end] {
		return -1
	}
	return end
}

// renderPrefix renders msgs with req's tools and variables.
func (c *ChatTemplate) renderPrefix(req ChatRequest, msgs []Message, gen bool) (string, error) {
	vars, err := c.vars(req, msgs, gen)
	if err != nil {
		return "", err
	}
	return c.exec(vars)
}

func (c *ChatTemplate) exec(vars map[string]any) (s string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("chat template panicked: %v", r)
		}
	}()
	var raised *TemplateError
	vars["raise_exception"] = func(_ *exec.Evaluator, params *exec.VarArgs) *exec.Value {
		raised = &TemplateError{Msg: "raise_exception called"}
		if len(params.Args) > 0 {
			raised.Msg = params.Args[0].String()
		}
		return exec.AsValue(raised)
	}
	var b strings.Builder
	if err := c.tpl.Execute(&b, exec.NewContext(vars)); err != nil {
		if raised != nil {
			return "", raised
		}
		return "", fmt.Errorf("render chat template: %w", err)
	}
	return b.String(), nil
}

func (c *ChatTemplate) vars(req ChatRequest, msgs []Message, gen bool) (map[string]any, error) {
	messages := make([]any, 0, len(msgs))
	for i, m := range msgs {
		d, err := messageDict(m)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		messages = append(messages, d)
	}
	vars := map[string]any{
		"messages":              messages,
		"add_generation_prompt": gen,
		"bos_token":             c.bosToken,
		"eos_token":             c.eosToken,
	}
	if len(req.Tools) > 0 {
		tools := make([]any, 0, len(req.Tools))
		for i, raw := range req.Tools {
			v, err := orderedJSON(raw)
			if err != nil {
				return nil, fmt.Errorf("tool %d: %w", i, err)
			}
			tools = append(tools, v)
		}
		vars["tools"] = tools
	}
	for k, v := range req.Vars {
		vars[k] = v
	}
	return vars, nil
}

func messageDict(m Message) (*exec.Dict, error) {
	d := exec.NewDict()
	set := func(k string, v any) {
		d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(k), Value: exec.AsValue(v)})
	}
	set("role", m.Role)
	if m.Parts != nil {
		parts := make([]any, 0, len(m.Parts))
		for _, p := range m.Parts {
			pd := exec.NewDict()
			pd.Pairs = append(pd.Pairs, &exec.Pair{Key: exec.AsValue("type"), Value: exec.AsValue(p.Type)})
			if p.Type == "text" {
				pd.Pairs = append(pd.Pairs, &exec.Pair{Key: exec.AsValue("text"), Value: exec.AsValue(p.Text)})
			}
			parts = append(parts, pd)
		}
		set("content", parts)
	} else {
		set("content", m.Content)
	}
	if m.ReasoningContent != "" {
		set("reasoning_content", m.ReasoningContent)
	}
	if m.Name != "" {
		set("name", m.Name)
	}
	if len(m.ToolCalls) > 0 {
		calls := make([]any, 0, len(m.ToolCalls))
		for _, tc := range m.ToolCalls {
			args, err := toolArguments(tc.Function.Arguments)
			if err != nil {
				return nil, fmt.Errorf("tool call %q: %w", tc.Function.Name, err)
			}
			fn := exec.NewDict()
			fn.Pairs = append(fn.Pairs,
				&exec.Pair{Key: exec.AsValue("name"), Value: exec.AsValue(tc.Function.Name)},
				&exec.Pair{Key: exec.AsValue("arguments"), Value: exec.AsValue(args)})
			call := exec.NewDict()
			if tc.ID != "" {
				call.Pairs = append(call.Pairs, &exec.Pair{Key: exec.AsValue("id"), Value: exec.AsValue(tc.ID)})
			}
			typ := tc.Type
			if typ == "" {
				typ = "function"
			}
			call.Pairs = append(call.Pairs,
				&exec.Pair{Key: exec.AsValue("type"), Value: exec.AsValue(typ)},
				&exec.Pair{Key: exec.AsValue("function"), Value: exec.AsValue(fn)})
			calls = append(calls, call)
		}
		set("tool_calls", calls)
	}
	if m.ToolCallID != "" {
		set("tool_call_id", m.ToolCallID)
	}
	return d, nil
}

func toolArguments(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return exec.NewDict(), nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if obj, err := orderedJSON([]byte(s)); err == nil {
			if _, ok := obj.(*exec.Dict); ok {
				return obj, nil
			}
		}
		return s, nil
	}
	return orderedJSON(raw)
}

// orderedJSON decodes JSON keeping object key order (*exec.Dict), as
// Python dicts do; integers stay int so tojson prints them without ".0".
func orderedJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeOrdered(dec)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: trailing data")
	}
	return v, nil
}

func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			d := exec.NewDict()
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(k.(string)), Value: exec.AsValue(v)})
			}
			_, err := dec.Token()
			return d, err
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := dec.Token()
			return list, err
		}
	case json.Number:
		if i, err := strconv.Atoi(string(t)); err == nil {
			return i, nil
		}
		f, err := t.Float64()
		return f, err
	}
	return tok, nil
}

// filterToJSON is transformers' tojson: json.dumps(x, ensure_ascii=False,
// indent=indent) with Python's separators, keys in insertion order and no
// HTML escaping.
func filterToJSON(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	indent := -1
	if v, ok := params.KwArgs["indent"]; ok && !v.IsNil() {
		indent = v.Integer()
	} else if len(params.Args) > 0 && !params.Args[0].IsNil() {
		indent = params.Args[0].Integer()
	}
	var b strings.Builder
	if err := writePyJSON(&b, in, indent, 0); err != nil {
		return exec.AsValue(err)
	}
	return exec.AsSafeValue(b.String())
}

func writePyJSON(b *strings.Builder, v *exec.Value, indent, depth int) error {
	nl := func(d int) {
		if indent >= 0 {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(" ", indent*d))
		}
	}
	sep := ", "
	if indent >= 0 {
		sep = ","
	}
	switch {
	case v == nil || v.IsNil():
		b.WriteString("null")
	case v.IsBool():
		if v.Bool() {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case v.IsString():
		writePyString(b, v.String())
	case v.IsInteger():
		b.WriteString(strconv.Itoa(v.Integer()))
	case v.IsFloat():
		b.WriteString(pyFloat(v.Float()))
	case v.IsDict():
		pairs := dictPairs(v)
		if len(pairs) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteByte('{')
		for i, p := range pairs {
			if i > 0 {
				b.WriteString(sep)
			}
			nl(depth + 1)
			writePyString(b, p.Key.String())
			b.WriteString(": ")
			if err := writePyJSON(b, p.Value, indent, depth+1); err != nil {
				return err
			}
		}
		nl(depth)
		b.WriteByte('}')
	case v.IsList():
		n := v.Len()
		if n == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(sep)
			}
			nl(depth + 1)
			if err := writePyJSON(b, v.Index(i), indent, depth+1); err != nil {
				return err
			}
		}
		nl(depth)
		b.WriteByte(']')
	default:
		return fmt.Errorf("tojson: cannot encode %s", v.String())
	}
	return nil
}

// dictPairs returns a dict's items in insertion order (sorted keys for Go
// maps, which have none).
func dictPairs(v *exec.Value) []*exec.Pair {
	switch d := v.Interface().(type) {
	case *exec.Dict:
		return d.Pairs
	case exec.Dict:
		return d.Pairs
	}
	var out []*exec.Pair
	for _, k := range v.Keys() {
		item, _ := v.GetItem(k.Interface())
		out = append(out, &exec.Pair{Key: k, Value: item})
	}
	return out
}

func writePyString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// pyFloat formats like Python's repr(float).
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

// filterItems is |items keeping insertion order.
func filterItems(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	var out []any
	for _, p := range dictPairs(in) {
		out = append(out, []any{p.Key, p.Value})
	}
	return exec.AsValue(out)
}

// filterReverse reverses a list or string. gonja v2.9.1's sorts lists in
// descending order instead, and leaves two-element sequences alone.
func filterReverse(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if in.IsString() {
		r := []rune(in.String())
		slices.Reverse(r)
		return exec.AsValue(string(r))
	}
	var out []any
	if in.IsList() {
		for i := in.Len() - 1; i >= 0; i-- {
			out = append(out, in.Index(i).Interface())
		}
		return exec.AsValue(out)
	}
	for _, p := range dictPairs(in) {
		out = append(out, p.Key.Interface())
	}
	slices.Reverse(out)
	return exec.AsValue(out)
}

// orderedDictMethods wraps gonja's dict methods so that items(), keys()
// and values() keep insertion order.
func orderedDictMethods() *exec.MethodSet[map[string]any] {
	base := builtins.Methods.Dict
	m := map[string]exec.Method[map[string]any]{}
	for _, name := range []string{"get", "pop", "setdefault", "update", "copy", "clear"} {
		if f, ok := base.Get(name); ok {
			m[name] = f
		}
	}
	m["items"] = func(_ map[string]any, self *exec.Value, _ *exec.VarArgs) (any, error) {
		var out []any
		for _, p := range dictPairs(self) {
			out = append(out, []any{p.Key, p.Value})
		}
		return out, nil
	}
	m["keys"] = func(_ map[string]any, self *exec.Value, _ *exec.VarArgs) (any, error) {
		var out []any
		for _, p := range dictPairs(self) {
			out = append(out, p.Key)
		}
		return out, nil
	}
	m["values"] = func(_ map[string]any, self *exec.Value, _ *exec.VarArgs) (any, error) {
		var out []any
		for _, p := range dictPairs(self) {
			out = append(out, p.Value)
		}
		return out, nil
	}
	return exec.NewMethodSet(m)
}

// EncodeChat renders req with the tokenizer's chat template and encodes
// the text without adding special tokens (the template writes them), as
// apply_chat_template(tokenize=True) does. mask[i] is true when token i
// overlaps an assistant span: the tokens to train on (a token that straddles
// a span's edge, such as "\n\n" joining the header's newline and the
// content's, counts as inside).
func (t *Tokenizer) EncodeChat(req ChatRequest) (ids []int, mask []bool, err error) {
	r, err := t.RenderChat(req)
	if err != nil {
		return nil, nil, err
	}
	ids = t.Encode(r.Text, EncodeOptions{})
	// Token i covers the text streamed while adding it; the tokens of one
	// character split across tokens all take the range of that character.
	type rng struct{ start, end int }
	ranges := make([]rng, len(ids))
	sd := NewStreamDecoder(t, false)
	pos, held := 0, 0
	for i, id := range ids {
		n := len(sd.Add(id))
		if i == len(ids)-1 {
			n += len(sd.Flush())
		}
		if n > 0 {
			for k := held; k <= i; k++ {
				ranges[k] = rng{pos, pos + n}
			}
			held = i + 1
		}
		pos += n
	}
	if pos != len(r.Text) {
		return nil, nil, fmt.Errorf("encode chat: decoding the tokens gives %d bytes, the rendered text has %d (the normalizer changed the text), so the loss mask cannot be aligned", pos, len(r.Text))
	}
	// As HF's return_assistant_tokens_mask: every token overlapping a span.
	mask = make([]bool, len(ids))
	span := 0
	for i, g := range ranges {
		for span < len(r.Assistant) && r.Assistant[span].End <= g.start {
			span++
		}
		mask[i] = span < len(r.Assistant) && g.start < r.Assistant[span].End && g.end > r.Assistant[span].Start
	}
	return ids, mask, nil
}
