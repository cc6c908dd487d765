package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sort"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/tokenizer"
)

// Example is one tokenized conversation. Mask[i] says whether Tokens[i] is
// a token the model learns to produce (an assistant token, unless the loss
// covers all tokens).
type Example struct {
	Line   int // 1-based line of the JSONL file it came from
	Tokens []int32
	Mask   []bool
}

// targets is the number of loss positions: masked tokens after the first.
func (e Example) targets() int {
	n := 0
	for _, m := range e.Mask[1:] {
		if m {
			n++
		}
	}
	return n
}

// DataOptions control how conversations become examples.
type DataOptions struct {
	// MaxLen is the longest example in tokens; longer ones are dropped, or
	// cut to MaxLen with Truncate. Default 1024.
	MaxLen   int
	Truncate bool
	// AllTokens puts the loss on every token, not only the assistant's.
	AllTokens bool
}

// Data is a tokenized dataset with what was left out and why.
type Data struct {
	Examples  []Example
	Truncated int // examples cut to MaxLen
	Dropped   int // examples over MaxLen left out (or with no assistant token left after truncation)
	// DroppedLines are the JSONL lines of the first dropped examples (at most 10).
	DroppedLines []int
	Tokens       int // tokens of the kept examples
}

// ReadJSONL decodes OpenAI fine-tuning JSONL ({"messages": [...], "tools":
// [...]} per line), skipping blank lines. Errors name the file and line.
// lines[i] is the line number of examples[i].
func ReadJSONL(r io.Reader, name string) (examples []api.FineTuneExample, lines []int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	n := 0
	for sc.Scan() {
		n++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var ex api.FineTuneExample
		if err := json.Unmarshal(b, &ex); err != nil {
			return nil, nil, fmt.Errorf("%s line %d: not a JSON fine-tuning example: %v", name, n, err)
		}
		if len(ex.Messages) == 0 {
			return nil, nil, fmt.Errorf("%s line %d: no \"messages\" (each line must be {\"messages\": [...]})", name, n)
		}
		examples = append(examples, ex)
		lines = append(lines, n)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(examples) == 0 {
		return nil, nil, fmt.Errorf("%s has no examples", name)
	}
	return examples, lines, nil
}

// LoadData reads the JSONL file at path and tokenizes it with tok's chat template.
func LoadData(path string, tok *tokenizer.Tokenizer, opts DataOptions) (*Data, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load data: %w", err)
	}
	defer f.Close()
	exs, lines, err := ReadJSONL(f, path)
	if err != nil {
		return nil, err
	}
	return TokenizeExamples(exs, lines, path, tok, opts)
}

// TokenizeExamples renders each conversation with tok's chat template and
// marks the assistant spans (minus messages with "weight": 0) for the loss.
func TokenizeExamples(exs []api.FineTuneExample, lines []int, name string, tok *tokenizer.Tokenizer, opts DataOptions) (*Data, error) {
	if opts.MaxLen == 0 {
		opts.MaxLen = 1024
	}
	if opts.MaxLen < 2 {
		return nil, fmt.Errorf("max length must be at least 2 tokens, got %d", opts.MaxLen)
	}
	d := &Data{}
	for i, ex := range exs {
		line := i + 1
		if lines != nil {
			line = lines[i]
		}
		e, err := tokenizeExample(ex, tok, opts.AllTokens)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, line, err)
		}
		e.Line = line
		if len(e.Tokens) > opts.MaxLen {
			if !opts.Truncate {
				d.drop(line)
				continue
			}
			e.Tokens, e.Mask = e.Tokens[:opts.MaxLen], e.Mask[:opts.MaxLen]
			if e.targets() == 0 {
				d.drop(line)
				continue
			}
			d.Truncated++
		}
		d.Examples = append(d.Examples, e)
		d.Tokens += len(e.Tokens)
	}
	if len(d.Examples) == 0 {
		return nil, fmt.Errorf("%s: all %d examples are longer than the max length %d tokens (raise --max-len, or --truncate)", name, d.Dropped, opts.MaxLen)
	}
	return d, nil
}

func (d *Data) drop(line int) {
	d.Dropped++
	if len(d.DroppedLines) < 10 {
		d.DroppedLines = append(d.DroppedLines, line)
	}
}

// tokenizeExample renders one conversation and encodes it span by span, so
// that assistant spans map to whole tokens.
func tokenizeExample(ex api.FineTuneExample, tok *tokenizer.Tokenizer, all bool) (Example, error) {
	req := tokenizer.ChatRequest{}
	var train []bool // per assistant message: in the loss
	for _, m := range ex.Messages {
		tm := tokenizer.Message{Role: m.Role, Content: m.Content.String(), Name: m.Name, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			args, _ := json.Marshal(tc.Function.Arguments) // a JSON string holding the object, as OpenAI sends it
			tm.ToolCalls = append(tm.ToolCalls, tokenizer.ToolCall{ID: tc.ID, Type: tc.Type, Function: tokenizer.FunctionCall{Name: tc.Function.Name, Arguments: args}})
		}
		req.Messages = append(req.Messages, tm)
		if m.Role == "assistant" {
			w := true
			if raw, ok := m.Extra["weight"]; ok {
				var v float64
				if err := json.Unmarshal(raw, &v); err != nil || (v != 0 && v != 1) {
					return Example{}, fmt.Errorf("assistant message weight must be 0 or 1, got %s", raw)
				}
				w = v == 1
			}
			train = append(train, w)
		}
	}
	if len(train) == 0 {
		return Example{}, errors.New("no assistant message: a training example needs the answer to learn (role \"assistant\")")
	}
	for _, t := range ex.Tools {
		b, err := json.Marshal(t)
		if err != nil {
			return Example{}, err
		}
		req.Tools = append(req.Tools, b)
	}
	r, err := tok.RenderChat(req)
	if err != nil {
		return Example{}, err
	}
	var e Example
	add := func(text string, mask bool) {
		for _, id := range tok.Encode(text, tokenizer.EncodeOptions{}) {
			e.Tokens = append(e.Tokens, int32(id))
			e.Mask = append(e.Mask, mask || all)
		}
	}
	at, any := 0, false
	for i, sp := range r.Assistant {
		add(r.Text[at:sp.Start], false)
		n := len(e.Tokens)
		add(r.Text[sp.Start:sp.End], train[i])
		if len(e.Tokens) == n {
			return Example{}, fmt.Errorf("assistant message %d renders to no tokens", i)
		}
		any = any || train[i]
		at = sp.End
	}
	add(r.Text[at:], false)
	if !any && !all {
		return Example{}, errors.New("every assistant message has weight 0: nothing to learn")
	}
	if len(e.Tokens) < 2 {
		return Example{}, errors.New("the rendered conversation is shorter than 2 tokens")
	}
	return e, nil
}

// batch is a padded batch: inputs and targets [B, T] (targets shifted by
// one), weights [B, T] 1 where the target is in the loss, 0 on padding;
// positions and segments [B, T] for packed rows (segment 0 is padding).
type batch struct {
	B, T      int
	Inputs    []int32
	Targets   []int32
	Weights   []float32
	Positions []int32
	Segments  []int32
	NTargets  int
	NTokens   int // real (non-padding) input positions
}

// lengthBucket rounds n up to a power of two from 16, capped at max: few
// distinct shapes, so XLA compiles few graphs.
func lengthBucket(n, max int) int {
	b := 16
	for b < n {
		b *= 2
	}
	return min(b, max)
}

// makeBatch lays out rows (each one example, or several packed one after
// another) as one batch of size rows, padded to a length bucket. A packed
// example's positions restart at 0 and its last token has no target, so it
// never predicts the next example's first token.
func makeBatch(rows [][]Example, size, maxLen int) batch {
	longest := 0
	for _, row := range rows {
		n := 0
		for _, e := range row {
			n += len(e.Tokens) - 1
		}
		longest = max(longest, n)
	}
	T := lengthBucket(longest, maxLen)
	b := batch{B: size, T: T, Inputs: make([]int32, size*T), Targets: make([]int32, size*T), Weights: make([]float32, size*T),
		Positions: make([]int32, size*T), Segments: make([]int32, size*T)}
	for r, row := range rows {
		at := r * T
		for s, e := range row {
			for i := 0; i+1 < len(e.Tokens); i++ {
				b.Inputs[at] = e.Tokens[i]
				b.Targets[at] = e.Tokens[i+1]
				b.Positions[at] = int32(i)
				b.Segments[at] = int32(s + 1)
				if e.Mask[i+1] {
					b.Weights[at] = 1
					b.NTargets++
				}
				b.NTokens++
				at++
			}
		}
		for p := at; p < (r+1)*T; p++ { // padding: positions keep counting, segment 0
			b.Positions[p] = int32(p - r*T)
		}
	}
	return b
}

// epochBatches orders one epoch into micro-batches of rows of example
// indices: a seeded shuffle, then, within windows of 16 batches, examples
// sorted by length (so a batch pads little), then the batches shuffled
// again. With pack, examples are instead placed first-fit into the rows of
// the current batch (each row holding up to maxLen tokens) in shuffled
// order. The same seed and epoch give the same batches.
func epochBatches(exs []Example, size, maxLen int, pack bool, seed uint64, epoch int) [][][]int {
	r := rand.New(rand.NewPCG(seed, uint64(epoch)+0xe90c))
	perm := r.Perm(len(exs))
	var out [][][]int
	if pack {
		var rows [][]int
		var fill []int
		for _, i := range perm {
			n := len(exs[i].Tokens) - 1
			placed := false
			for j := range rows {
				if fill[j]+n <= maxLen {
					rows[j], fill[j], placed = append(rows[j], i), fill[j]+n, true
					break
				}
			}
			if placed {
				continue
			}
			if len(rows) == size {
				out = append(out, rows)
				rows, fill = nil, nil
			}
			rows, fill = append(rows, []int{i}), append(fill, n)
		}
		if len(rows) > 0 {
			out = append(out, rows)
		}
		return out
	}
	window := size * 16
	for w := 0; w < len(perm); w += window {
		win := slices.Clone(perm[w:min(w+window, len(perm))])
		sort.SliceStable(win, func(i, j int) bool { return len(exs[win[i]].Tokens) < len(exs[win[j]].Tokens) })
		for b := 0; b < len(win); b += size {
			var rows [][]int
			for _, i := range win[b:min(b+size, len(win))] {
				rows = append(rows, []int{i})
			}
			out = append(out, rows)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// rowsOf resolves rows of example indices.
func rowsOf(exs []Example, idx [][]int) [][]Example {
	rows := make([][]Example, len(idx))
	for r, row := range idx {
		for _, i := range row {
			rows[r] = append(rows[r], exs[i])
		}
	}
	return rows
}

// splitValidation moves a seeded fraction of exs (at least one) to a validation set.
func splitValidation(exs []Example, frac float64, seed uint64) (train, val []Example) {
	n := int(float64(len(exs))*frac + 0.5)
	if frac > 0 && n == 0 {
		n = 1
	}
	if n >= len(exs) {
		n = len(exs) - 1
	}
	perm := rand.New(rand.NewPCG(seed, 0x5911)).Perm(len(exs))
	inVal := map[int]bool{}
	for _, i := range perm[:n] {
		inVal[i] = true
	}
	for i, e := range exs {
		if inVal[i] {
			val = append(val, e)
		} else {
			train = append(train, e)
		}
	}
	return train, val
}
