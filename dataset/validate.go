package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ValidateSpec configures the Validate stage. The zero value drops upstream
// errors, empty answers, truncated and filtered answers and refusals, and
// checks nothing else.
type ValidateSpec struct {
	// JSON requires the answer to parse as JSON (after removing a ```json fence).
	JSON bool `yaml:"json" json:"json,omitempty"`
	// Schema, a JSON Schema (any draft 4–2020-12, inline as YAML or JSON),
	// must validate the answer; it implies JSON.
	Schema any `yaml:"schema" json:"schema,omitempty"`
	// MustMatch and MustNotMatch are Go regular expressions tested against the answer.
	MustMatch    []string `yaml:"must_match" json:"must_match,omitempty"`
	MustNotMatch []string `yaml:"must_not_match" json:"must_not_match,omitempty"`
	// Bounds on the answer's length in characters and tokens: the spec's
	// tokenizer's when it names one, else approximate (characters/4); 0
	// means no bound.
	MinChars  int `yaml:"min_chars" json:"min_chars,omitempty"`
	MaxChars  int `yaml:"max_chars" json:"max_chars,omitempty"`
	MinTokens int `yaml:"min_tokens" json:"min_tokens,omitempty"`
	MaxTokens int `yaml:"max_tokens" json:"max_tokens,omitempty"`
	// MaxTotalTokens bounds the whole conversation (approximate tokens).
	MaxTotalTokens int `yaml:"max_total_tokens" json:"max_total_tokens,omitempty"`
	// KeepRefusals keeps answers that look like refusals.
	KeepRefusals bool `yaml:"keep_refusals" json:"keep_refusals,omitempty"`
	// RefusalPhrases are added to DefaultRefusalPhrases.
	RefusalPhrases []string `yaml:"refusal_phrases" json:"refusal_phrases,omitempty"`
	// KeepTruncated keeps answers cut off by max_tokens (finish_reason "length").
	KeepTruncated bool `yaml:"keep_truncated" json:"keep_truncated,omitempty"`
}

// DefaultRefusalPhrases mark an answer as a refusal when one of them occurs
// (case-insensitively, apostrophes normalised) in its first 300 characters.
// They are the stock openings of chat models declining a request; an answer
// that merely mentions being unable to do something later on is kept.
var DefaultRefusalPhrases = []string{
	"i'm sorry, but i can't", "i'm sorry, but i cannot", "i am sorry, but i cannot", "i'm sorry, i can't",
	"sorry, but i can't", "sorry, i can't help", "i can't help with that", "i cannot help with that",
	"i can't assist with", "i cannot assist with", "i'm unable to help", "i am unable to help",
	"i'm unable to assist", "i am unable to assist", "i'm not able to help", "i can't comply",
	"i cannot comply", "i won't be able to help", "i cannot fulfill", "i can't fulfill",
	"i must decline", "i'm not able to provide", "i cannot provide assistance",
	"as an ai language model", "as an ai model, i cannot", "i'm afraid i can't", "i'm afraid i cannot",
}

// refusalWindow is how much of an answer's start is searched for refusal phrases.
const refusalWindow = 300

// Validate builds the validate stage.
func Validate(spec ValidateSpec) (Stage, error) {
	v := &validator{spec: spec}
	for _, p := range spec.MustMatch {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("validate.must_match %q: %w", p, err)
		}
		v.must = append(v.must, re)
	}
	for _, p := range spec.MustNotMatch {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("validate.must_not_match %q: %w", p, err)
		}
		v.mustNot = append(v.mustNot, re)
	}
	if spec.Schema != nil {
		doc, err := toJSONValue(spec.Schema)
		if err != nil {
			return nil, fmt.Errorf("validate.schema: %w", err)
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("spec://validate.schema", doc); err != nil {
			return nil, fmt.Errorf("validate.schema: %w", err)
		}
		if v.schema, err = c.Compile("spec://validate.schema"); err != nil {
			return nil, fmt.Errorf("validate.schema is not a valid JSON Schema: %w", err)
		}
	}
	for _, p := range DefaultRefusalPhrases {
		v.refusals = append(v.refusals, []byte(strings.ToLower(p)))
	}
	for _, p := range spec.RefusalPhrases {
		v.extraRefusals = append(v.extraRefusals, []byte(strings.ToLower(p)))
	}
	return RowStage{StageName: "validate", Decide: v.decide}, nil
}

type validator struct {
	spec     ValidateSpec
	must     []*regexp.Regexp
	mustNot  []*regexp.Regexp
	schema   *jsonschema.Schema
	refusals [][]byte // DefaultRefusalPhrases: each contains a refusalAnchor
	// extraRefusals are the spec's phrases, always searched.
	extraRefusals [][]byte
}

// refusalAnchors are words at least one of which every default refusal
// phrase contains; an answer without any is not searched further, which
// saves most of the check's time.
var refusalAnchors = [][]byte{[]byte("sorry"), []byte("can't"), []byte("cannot"), []byte("unable"), []byte("not able"),
	[]byte("won't"), []byte("decline"), []byte("as an ai")}

// anchorPairs holds the first two bytes of the anchors.
var anchorPairs = func() (p pairSet) {
	for _, a := range refusalAnchors {
		p.add(string(a))
	}
	return p
}()

// hasAnchor reports whether head contains a refusal anchor, in one pass.
func hasAnchor(head []byte) bool {
	for i := 0; i+1 < len(head); i++ {
		if !anchorPairs.has(head[i], head[i+1]) {
			continue
		}
		for _, a := range refusalAnchors {
			if bytes.HasPrefix(head[i:], a) {
				return true
			}
		}
	}
	return false
}

// Drop reasons of the validate stage.
const (
	ReasonUpstreamError = "upstream error"
	ReasonEmptyAnswer   = "empty answer"
	ReasonTruncated     = "truncated (finish_reason length)"
	ReasonFiltered      = "content filtered"
	ReasonRefusal       = "refusal"
	ReasonInvalidJSON   = "answer is not valid JSON"
	ReasonSchema        = "answer does not match the schema"
	ReasonMustMatch     = "answer does not match a required pattern"
	ReasonMustNotMatch  = "answer matches a forbidden pattern"
	ReasonTooShort      = "answer too short"
	ReasonTooLong       = "too long"
)

func (v *validator) decide(_ context.Context, ex *Example, _ *Out) (string, string, error) {
	if ex.Meta.Error != "" {
		return ReasonUpstreamError, ex.Meta.Error, nil
	}
	a := ex.Answer()
	if ex.Meta.Refusal != "" && !v.spec.KeepRefusals {
		return ReasonRefusal, ex.Meta.Refusal, nil
	}
	text := ex.AnswerText()
	if a == nil || strings.TrimSpace(text) == "" {
		return ReasonEmptyAnswer, "", nil
	}
	switch ex.Meta.FinishReason {
	case "length":
		if !v.spec.KeepTruncated {
			return ReasonTruncated, truncate(text, 80), nil
		}
	case "content_filter":
		return ReasonFiltered, "", nil
	}
	if !v.spec.KeepRefusals && len(a.ToolCalls) == 0 {
		if p := v.refusal(text); p != "" {
			return ReasonRefusal, p, nil
		}
	}
	n := len(text)
	if v.spec.MinChars > 0 && n < v.spec.MinChars || v.spec.MinTokens > 0 && ApproxTokens(n) < v.spec.MinTokens {
		return ReasonTooShort, fmt.Sprintf("%d chars", n), nil
	}
	if v.spec.MaxChars > 0 && n > v.spec.MaxChars || v.spec.MaxTokens > 0 && ApproxTokens(n) > v.spec.MaxTokens {
		return ReasonTooLong, fmt.Sprintf("answer: %d chars", n), nil
	}
	if v.spec.MaxTotalTokens > 0 {
		if t := ApproxTokens(ex.Chars()); t > v.spec.MaxTotalTokens {
			return ReasonTooLong, fmt.Sprintf("conversation: ~%d tokens", t), nil
		}
	}
	if v.spec.JSON || v.schema != nil {
		body := stripFence(text)
		if !json.Valid([]byte(body)) {
			return ReasonInvalidJSON, truncate(text, 80), nil
		}
		if v.schema != nil {
			doc, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
			if err != nil {
				return ReasonInvalidJSON, err.Error(), nil
			}
			if err := v.schema.Validate(doc); err != nil {
				return ReasonSchema, firstLine(err.Error()), nil
			}
		}
	}
	for _, re := range v.must {
		if !re.MatchString(text) {
			return ReasonMustMatch, re.String(), nil
		}
	}
	for _, re := range v.mustNot {
		if loc := re.FindStringIndex(text); loc != nil {
			return ReasonMustNotMatch, re.String() + ": " + truncate(text[loc[0]:loc[1]], 60), nil
		}
	}
	return "", "", nil
}

// refusal returns the refusal phrase found at the start of text, or "".
func (v *validator) refusal(text string) string {
	if len(text) > refusalWindow {
		text = text[:refusalWindow]
	}
	// Lowercase ASCII into a stack buffer (no allocation per row); other
	// text takes the general path.
	var buf [refusalWindow]byte
	head := buf[:len(text)]
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= 0x80 {
			head = []byte(strings.ToLower(strings.ReplaceAll(text, "’", "'")))
			break
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		head[i] = c
	}
	for _, p := range v.extraRefusals {
		if bytes.Contains(head, p) {
			return string(p)
		}
	}
	if !hasAnchor(head) {
		return ""
	}
	for _, p := range v.refusals {
		if bytes.Contains(head, p) {
			return string(p)
		}
	}
	return ""
}

// stripFence removes a Markdown code fence around a JSON answer.
func stripFence(s string) string {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "```") {
		return t
	}
	t = strings.TrimPrefix(t, "```")
	if i := strings.IndexByte(t, '\n'); i >= 0 {
		t = t[i+1:]
	}
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(t), "```"))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// toJSONValue turns a schema decoded from YAML (maps with any keys) into the
// plain JSON values jsonschema expects, by a JSON round trip.
func toJSONValue(v any) (any, error) {
	if s, ok := v.(string); ok { // a schema given as a JSON string
		return jsonschema.UnmarshalJSON(strings.NewReader(s))
	}
	b, err := json.Marshal(normalizeYAML(v))
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
}

func normalizeYAML(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[fmt.Sprint(k)] = normalizeYAML(val)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[k] = normalizeYAML(val)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = normalizeYAML(val)
		}
		return out
	}
	return v
}
