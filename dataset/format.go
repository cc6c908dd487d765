package dataset

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/foundryhq/foundry/api"
)

// Formats Foundry imports and exports.
const (
	// FormatOpenAI is OpenAI's chat fine-tuning JSONL: {"messages": [...], "tools": [...]} per line.
	FormatOpenAI = "openai"
	// FormatShareGPT is {"conversations": [{"from": "human"|"gpt"|"system"|"function_call"|"observation", "value": ...}], "tools": "<JSON>"} per line.
	FormatShareGPT = "sharegpt"
	// FormatAlpaca is {"instruction", "input", "output", "system", "history": [[user, assistant], ...]} per line.
	FormatAlpaca = "alpaca"
	// FormatParquet is a Parquet file, one row per example: Foundry's flat
	// schema (see ParquetRow), or the columns of a dataset on the Hugging
	// Face hub: "messages" as a list of {role, content} structs (OpenAI
	// style), "conversations" as {from, value} (ShareGPT), or
	// "instruction", "input", "output" (Alpaca).
	FormatParquet = "parquet"
)

// Formats lists the formats by name.
var Formats = []string{FormatOpenAI, FormatShareGPT, FormatAlpaca, FormatParquet}

// ParquetRow is the Parquet schema Foundry writes and reads: flat columns,
// with the conversation as a JSON string in OpenAI's message format (so
// tools, tool calls and content parts survive without a nested schema).
type ParquetRow struct {
	ID        string   `parquet:"id"`
	Split     string   `parquet:"split"`
	Messages  string   `parquet:"messages"` // JSON array of OpenAI chat messages, answer last
	Tools     string   `parquet:"tools"`    // JSON array of OpenAI tools, or ""
	Route     string   `parquet:"route"`
	Model     string   `parquet:"model"`
	Score     *float64 `parquet:"score,optional"`
	CreatedAt string   `parquet:"created_at"` // RFC 3339, or ""
}

// DetectFormat guesses a file's format from its extension, and for JSON
// lines from the keys of its first non-empty line.
func DetectFormat(path string) (string, error) {
	if strings.HasSuffix(strings.ToLower(path), ".parquet") {
		return FormatParquet, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	for {
		line, err := br.ReadBytes('\n')
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			var keys map[string]json.RawMessage
			if json.Unmarshal(line, &keys) == nil {
				switch {
				case keys["messages"] != nil:
					return FormatOpenAI, nil
				case keys["conversations"] != nil:
					return FormatShareGPT, nil
				case keys["instruction"] != nil || keys["output"] != nil:
					return FormatAlpaca, nil
				}
			}
			return "", fmt.Errorf("%s: cannot tell the format from its first line (want keys messages, conversations or instruction/output); name it with format:", path)
		}
		if err != nil {
			return "", fmt.Errorf("%s: empty file", path)
		}
	}
}

// FileSource imports a local dataset file. A Hugging Face dataset repo
// fetched with `foundry pull` is just such files under the hub cache.
type FileSource struct {
	Path   string
	Format string // "" detects it
}

// Name is "select".
func (s *FileSource) Name() string { return "select" }

// Examples reads the file; rows that do not parse are dropped as
// "unreadable row" with their line (or Parquet row) number.
func (s *FileSource) Examples(ctx context.Context, out *Out) error {
	format := s.Format
	if format == "" {
		var err error
		if format, err = DetectFormat(s.Path); err != nil {
			return fmt.Errorf("import: %w", err)
		}
	}
	return ReadFile(ctx, s.Path, format, func(ex *Example, err error) error {
		if err != nil {
			out.Drop(ex, "unreadable row", err.Error())
			return nil
		}
		return out.Keep(ctx, ex)
	})
}

// ReadFile reads a dataset file in format and calls fn for each row: with
// the example, or with a placeholder example (Meta.Line set) and the reason
// the row could not be read. fn's error stops the read.
func ReadFile(ctx context.Context, path, format string, fn func(*Example, error) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	base := filepath.Base(path)
	if format == FormatParquet {
		return readParquet(ctx, f, path, base, fn)
	}
	decode, ok := lineDecoders[format]
	if !ok {
		return fmt.Errorf("import %s: unknown format %q (want one of %s)", path, format, strings.Join(Formats, ", "))
	}
	br := bufio.NewReaderSize(f, 1<<20)
	rows := &fileRows{path: path, base: base, unit: "line", fn: fn}
	for n := 1; ; n++ {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("import %s: line %d: %w", path, n, rerr)
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			ex, derr := decode(t)
			if err := rows.emit(n, ex, derr); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
	}
}

// fileRows hands the rows read from one file to fn: each stamped with the
// file and its line or row number (which also names a row without an id),
// the readable ones numbered in order, an error prefixed with where it was.
type fileRows struct {
	path, base string
	unit       string // "line" or "row"
	seq        int64
	fn         func(*Example, error) error
}

func (r *fileRows) emit(n int, ex *Example, err error) error {
	if ex == nil {
		ex = &Example{}
	}
	ex.Meta.Source, ex.Meta.Line = r.path, n
	if ex.Meta.ID == "" {
		ex.Meta.ID = fmt.Sprintf("%s:%d", r.base, n)
	}
	if err != nil {
		err = fmt.Errorf("%s %d: %w", r.unit, n, err)
	} else {
		ex.Seq = r.seq
		r.seq++
	}
	return r.fn(ex, err)
}

var lineDecoders = map[string]func([]byte) (*Example, error){
	FormatOpenAI:   decodeOpenAI,
	FormatShareGPT: decodeShareGPT,
	FormatAlpaca:   decodeAlpaca,
}

func decodeOpenAI(line []byte) (*Example, error) {
	var ft api.FineTuneExample
	if err := json.Unmarshal(line, &ft); err != nil {
		return nil, err
	}
	if len(ft.Messages) == 0 {
		return nil, errors.New(`no "messages"`)
	}
	for i := range ft.Messages {
		m := &ft.Messages[i]
		m.Extra = nil
		if m.Role == "" {
			return nil, fmt.Errorf("messages[%d] has no role", i)
		}
	}
	return &Example{FineTuneExample: ft}, nil
}

type shareGPTTurn struct {
	From  string `json:"from"`
	Value string `json:"value"`
}

type shareGPTLine struct {
	Conversations []shareGPTTurn `json:"conversations"`
	System        string         `json:"system,omitempty"`
	Tools         string         `json:"tools,omitempty"` // JSON array of function definitions
}

func decodeShareGPT(line []byte) (*Example, error) {
	var l shareGPTLine
	if err := json.Unmarshal(line, &l); err != nil {
		return nil, err
	}
	if len(l.Conversations) == 0 {
		return nil, errors.New(`no "conversations"`)
	}
	ex := &Example{}
	if l.System != "" {
		ex.Messages = append(ex.Messages, api.Message{Role: "system", Content: api.TextContent(l.System)})
	}
	if l.Tools != "" {
		var defs []api.FunctionDef
		if err := json.Unmarshal([]byte(l.Tools), &defs); err != nil {
			return nil, fmt.Errorf("tools: %w", err)
		}
		for _, d := range defs {
			ex.Tools = append(ex.Tools, api.Tool{Type: "function", Function: d})
		}
	}
	var calls []string // ids of the last assistant turn's tool calls, answered in order by observations
	for i, t := range l.Conversations {
		switch t.From {
		case "system":
			ex.Messages = append(ex.Messages, api.Message{Role: "system", Content: api.TextContent(t.Value)})
		case "human", "user":
			ex.Messages = append(ex.Messages, api.Message{Role: "user", Content: api.TextContent(t.Value)})
		case "gpt", "assistant":
			ex.Messages = append(ex.Messages, api.Message{Role: "assistant", Content: api.TextContent(t.Value)})
			calls = nil
		case "function_call":
			var c struct {
				Name      string          `json:"name"`
				Arguments json.RawMessage `json:"arguments"`
			}
			if err := json.Unmarshal([]byte(t.Value), &c); err != nil || c.Name == "" {
				return nil, fmt.Errorf("conversations[%d]: function_call value must be {\"name\", \"arguments\"}", i)
			}
			args := string(c.Arguments)
			var s string
			if json.Unmarshal(c.Arguments, &s) == nil { // arguments given as a JSON string
				args = s
			}
			n := len(ex.Messages)
			if n == 0 || ex.Messages[n-1].Role != "assistant" || (len(ex.Messages[n-1].ToolCalls) == 0 && i > 0 && l.Conversations[i-1].From != "gpt") {
				ex.Messages = append(ex.Messages, api.Message{Role: "assistant"})
				calls = nil
				n++
			}
			id := fmt.Sprintf("call_%d", i)
			ex.Messages[n-1].ToolCalls = append(ex.Messages[n-1].ToolCalls, api.ToolCall{ID: id, Type: "function", Function: api.FunctionCall{Name: c.Name, Arguments: args}})
			calls = append(calls, id)
		case "observation", "tool":
			m := api.Message{Role: "tool", Content: api.TextContent(t.Value)}
			if len(calls) > 0 {
				m.ToolCallID, calls = calls[0], calls[1:]
			}
			ex.Messages = append(ex.Messages, m)
		default:
			return nil, fmt.Errorf("conversations[%d]: unknown from %q (want system, human, gpt, function_call or observation)", i, t.From)
		}
	}
	return ex, nil
}

type alpacaLine struct {
	Instruction string      `json:"instruction"`
	Input       string      `json:"input"`
	Output      string      `json:"output"`
	System      string      `json:"system,omitempty"`
	History     [][2]string `json:"history,omitempty"`
}

func decodeAlpaca(line []byte) (*Example, error) {
	var l alpacaLine
	if err := json.Unmarshal(line, &l); err != nil {
		return nil, err
	}
	if l.Instruction == "" && l.Input == "" {
		return nil, errors.New(`empty "instruction" and "input"`)
	}
	ex := &Example{}
	if l.System != "" {
		ex.Messages = append(ex.Messages, api.Message{Role: "system", Content: api.TextContent(l.System)})
	}
	for _, h := range l.History {
		ex.Messages = append(ex.Messages, api.Message{Role: "user", Content: api.TextContent(h[0])},
			api.Message{Role: "assistant", Content: api.TextContent(h[1])})
	}
	prompt := l.Instruction
	if l.Input != "" {
		if prompt != "" {
			prompt += "\n\n"
		}
		prompt += l.Input
	}
	ex.Messages = append(ex.Messages, api.Message{Role: "user", Content: api.TextContent(prompt)},
		api.Message{Role: "assistant", Content: api.TextContent(l.Output)})
	return ex, nil
}

// Writer writes examples in one format.
type Writer interface {
	// Write writes one example; an *UnrepresentableError means the example
	// cannot be expressed in the format (it was skipped, the writer is fine).
	Write(ex *Example) error
	Close() error
}

// UnrepresentableError says why an example was skipped by a Writer.
type UnrepresentableError struct{ Reason string }

func (e *UnrepresentableError) Error() string { return e.Reason }

// NewWriter returns a Writer of format onto w. Close flushes but does not close w.
func NewWriter(w io.Writer, format string) (Writer, error) {
	switch format {
	case FormatOpenAI, FormatShareGPT, FormatAlpaca:
		return &jsonlWriter{bw: bufio.NewWriterSize(w, 1<<16), format: format}, nil
	case FormatParquet:
		return &parquetWriter{w: parquet.NewGenericWriter[ParquetRow](w)}, nil
	}
	return nil, fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

type jsonlWriter struct {
	bw     *bufio.Writer
	format string
}

func (w *jsonlWriter) Write(ex *Example) error {
	b, err := EncodeLine(ex, w.format)
	if err != nil {
		return err
	}
	w.bw.Write(b)
	return w.bw.WriteByte('\n')
}

func (w *jsonlWriter) Close() error { return w.bw.Flush() }

// EncodeLine encodes ex as one JSON line (without the newline) of format.
func EncodeLine(ex *Example, format string) ([]byte, error) {
	switch format {
	case FormatOpenAI:
		if b, ok := appendOpenAILine(nil, ex); ok {
			return b, nil
		}
		b, err := json.Marshal(ex.FineTuneExample)
		return unescapeHTML(b), err
	case FormatShareGPT:
		b, err := encodeShareGPT(ex)
		return unescapeHTML(b), err
	case FormatAlpaca:
		b, err := encodeAlpaca(ex)
		return unescapeHTML(b), err
	}
	return nil, fmt.Errorf("format %q is not a JSON lines format", format)
}

// unescapeHTML undoes encoding/json's HTML escaping of <, > and & (the
// nested MarshalJSON methods of api's types escape regardless of encoder
// settings), so placeholders read <EMAIL_1> in the files. It follows escape
// sequences left to right, so an escaped backslash is never misread.
func unescapeHTML(b []byte) []byte {
	if bytes.IndexByte(b, '\\') < 0 {
		return b
	}
	out := b[:0:0]
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			switch string(b[i+2 : i+6]) {
			case "003c":
				out = append(out, '<')
				i += 5
				continue
			case "003e":
				out = append(out, '>')
				i += 5
				continue
			case "0026":
				out = append(out, '&')
				i += 5
				continue
			}
		}
		out = append(out, b[i], b[i+1])
		i++
	}
	return out
}

func encodeShareGPT(ex *Example) ([]byte, error) {
	var l shareGPTLine
	if len(ex.Tools) > 0 {
		defs := make([]api.FunctionDef, len(ex.Tools))
		for i, t := range ex.Tools {
			defs[i] = t.Function
		}
		b, err := json.Marshal(defs)
		if err != nil {
			return nil, err
		}
		l.Tools = string(b)
	}
	for _, m := range ex.Messages {
		text := m.Content.String()
		if len(m.Content.Parts) > 0 && len(text) == 0 {
			return nil, &UnrepresentableError{"sharegpt holds text only (a message has only non-text parts)"}
		}
		switch m.Role {
		case "system", "developer":
			l.Conversations = append(l.Conversations, shareGPTTurn{"system", text})
		case "user":
			l.Conversations = append(l.Conversations, shareGPTTurn{"human", text})
		case "tool", "function":
			l.Conversations = append(l.Conversations, shareGPTTurn{"observation", text})
		case "assistant":
			if text != "" || len(m.ToolCalls) == 0 {
				l.Conversations = append(l.Conversations, shareGPTTurn{"gpt", text})
			}
			for _, c := range m.ToolCalls {
				args := json.RawMessage(c.Function.Arguments)
				if !json.Valid(args) {
					b, _ := json.Marshal(c.Function.Arguments)
					args = b
				}
				b, err := json.Marshal(struct {
					Name      string          `json:"name"`
					Arguments json.RawMessage `json:"arguments"`
				}{c.Function.Name, args})
				if err != nil {
					return nil, err
				}
				l.Conversations = append(l.Conversations, shareGPTTurn{"function_call", string(b)})
			}
		default:
			return nil, &UnrepresentableError{fmt.Sprintf("sharegpt has no role %q", m.Role)}
		}
	}
	return json.Marshal(l)
}

func encodeAlpaca(ex *Example) ([]byte, error) {
	var l alpacaLine
	msgs := ex.Messages
	if len(ex.Tools) > 0 {
		return nil, &UnrepresentableError{"alpaca has no tools"}
	}
	if len(msgs) > 0 && msgs[0].Role == "system" {
		l.System = msgs[0].Content.String()
		msgs = msgs[1:]
	}
	if len(msgs) < 2 || len(msgs)%2 != 0 {
		return nil, &UnrepresentableError{"alpaca needs user/assistant pairs ending with the answer"}
	}
	for i, m := range msgs {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if m.Role != want || len(m.ToolCalls) > 0 || (len(m.Content.Parts) > 0 && m.Content.String() == "") {
			return nil, &UnrepresentableError{"alpaca needs alternating user/assistant text messages"}
		}
	}
	for i := 0; i+2 < len(msgs); i += 2 {
		l.History = append(l.History, [2]string{msgs[i].Content.String(), msgs[i+1].Content.String()})
	}
	l.Instruction = msgs[len(msgs)-2].Content.String()
	l.Output = msgs[len(msgs)-1].Content.String()
	return json.Marshal(l)
}

type parquetWriter struct {
	w   *parquet.GenericWriter[ParquetRow]
	buf []ParquetRow
}

func (w *parquetWriter) Write(ex *Example) error {
	msgs, err := json.Marshal(ex.Messages)
	if err != nil {
		return err
	}
	row := ParquetRow{ID: ex.Meta.ID, Split: ex.Split, Messages: string(msgs), Route: ex.Meta.Route, Model: ex.Meta.Model, Score: ex.Meta.Score}
	if len(ex.Tools) > 0 {
		b, err := json.Marshal(ex.Tools)
		if err != nil {
			return err
		}
		row.Tools = string(b)
	}
	if !ex.Meta.CreatedAt.IsZero() {
		row.CreatedAt = ex.Meta.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	w.buf = append(w.buf, row)
	if len(w.buf) == 1024 {
		return w.flush()
	}
	return nil
}

func (w *parquetWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

func (w *parquetWriter) Close() error {
	if err := w.flush(); err != nil {
		return err
	}
	return w.w.Close()
}

func readParquet(ctx context.Context, f *os.File, path, base string, fn func(*Example, error) error) (err error) {
	defer func() {
		// A corrupt file can make the decoder panic; report it as the file's error.
		if p := recover(); p != nil {
			err = fmt.Errorf("import %s: not a readable Parquet file: %v", path, p)
		}
	}()
	if decode, columns := parquetColumns(parquet.NewReader(f).Schema()); decode != nil {
		return readParquetColumns(ctx, f, path, base, decode, fn)
	} else if columns != "" {
		return fmt.Errorf("import %s: the Parquet columns (%s) are not a dataset Foundry reads: want Foundry's (id, messages as JSON text, ...), messages as a list of {role, content}, conversations as {from, value}, or instruction/input/output", path, columns)
	}
	r := parquet.NewGenericReader[ParquetRow](f)
	defer r.Close()
	rows := make([]ParquetRow, 256)
	out := &fileRows{path: path, base: base, unit: "row", fn: fn}
	var n int
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, rerr := r.Read(rows)
		for _, row := range rows[:k] {
			n++
			ex := &Example{Meta: Meta{ID: row.ID, Route: row.Route, Model: row.Model, Score: row.Score}}
			ex.Split = row.Split
			if row.CreatedAt != "" {
				ex.Meta.CreatedAt, _ = time.Parse(time.RFC3339Nano, row.CreatedAt)
			}
			derr := json.Unmarshal([]byte(row.Messages), &ex.Messages)
			if derr == nil && len(ex.Messages) == 0 {
				derr = errors.New("empty messages")
			}
			if derr == nil && row.Tools != "" {
				derr = json.Unmarshal([]byte(row.Tools), &ex.Tools)
			}
			if derr == nil {
				for i := range ex.Messages {
					ex.Messages[i].Extra = nil
				}
			}
			if err := out.emit(n, ex, derr); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("import %s: row %d: %w", path, n+1, rerr)
		}
	}
}

// parquetColumns picks the decoder of a Parquet file that is not in
// Foundry's schema (see FormatParquet) from its top-level columns: nil
// and "" for Foundry's own schema (messages as JSON text), nil and the
// column names for a schema Foundry cannot read.
func parquetColumns(s *parquet.Schema) (decode func([]byte) (*Example, error), columns string) {
	has := map[string]parquet.Node{}
	var names []string
	for _, f := range s.Fields() {
		has[f.Name()] = f
		names = append(names, f.Name())
	}
	switch m, ok := has["messages"]; {
	case ok && m.Leaf() && m.Type().Kind() == parquet.ByteArray:
		return nil, "" // Foundry's ParquetRow
	case ok:
		return decodeOpenAI, ""
	}
	if _, ok := has["conversations"]; ok {
		return decodeShareGPT, ""
	}
	_, instruction := has["instruction"]
	_, output := has["output"]
	if instruction && output {
		return decodeAlpaca, ""
	}
	return nil, strings.Join(names, ", ")
}

// readParquetColumns reads a hub-style Parquet file row by row as
// column-name maps, decoding each as the JSON line it would be in the
// matching JSONL format.
func readParquetColumns(ctx context.Context, f *os.File, path, base string, decode func([]byte) (*Example, error), fn func(*Example, error) error) error {
	r := parquet.NewReader(f)
	defer r.Close()
	rows := &fileRows{path: path, base: base, unit: "row", fn: fn}
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		row := map[string]any{}
		if err := r.Read(&row); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("import %s: row %d: %w", path, n, err)
		}
		line, err := json.Marshal(row)
		var ex *Example
		if err == nil {
			ex, err = decode(line)
		}
		if err := rows.emit(n, ex, err); err != nil {
			return err
		}
	}
}
