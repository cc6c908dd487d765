package eval

import (
	"encoding/json"
	"reflect"
	"strings"
	"unicode"
)

// Normalize collapses every run of whitespace to one space and trims the
// ends: exact match ignores layout, not case or punctuation.
func Normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

// ExactMatch is 1 when the normalised answer equals the normalised reference, else 0.
func ExactMatch(answer, reference string) float64 {
	if Normalize(answer) == Normalize(reference) {
		return 1
	}
	return 0
}

// Tokens splits text the way ROUGE's reference implementation (Google's
// rouge_score) does by default: lowercased, runs of letters and digits,
// everything else a separator.
func Tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// RougeL is the ROUGE-L F1 of answer against reference: with L the length
// of the longest common subsequence of their tokens, precision L/|answer|,
// recall L/|reference|, F1 their harmonic mean. Two empty texts score 1;
// one empty text scores 0.
func RougeL(answer, reference string) float64 {
	a, r := Tokens(answer), Tokens(reference)
	if len(a) == 0 && len(r) == 0 {
		return 1
	}
	l := lcs(a, r)
	if l == 0 {
		return 0
	}
	p, rec := float64(l)/float64(len(a)), float64(l)/float64(len(r))
	return 2 * p * rec / (p + rec)
}

// lcs is the length of the longest common subsequence, in O(len(b)) memory.
func lcs(a, b []string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for i := range a {
		for j := range b {
			switch {
			case a[i] == b[j]:
				cur[j+1] = prev[j] + 1
			case prev[j+1] >= cur[j]:
				cur[j+1] = prev[j+1]
			default:
				cur[j+1] = cur[j]
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ParseJSON decodes an answer as JSON. Surrounding whitespace and one
// Markdown code fence (```json ... ```) are allowed, since chat models add
// them to otherwise valid answers; anything else makes it invalid.
func ParseJSON(s string) (any, bool) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "```"); ok {
		if body, ok := strings.CutSuffix(rest, "```"); ok {
			if nl := strings.IndexByte(body, '\n'); nl >= 0 && !strings.ContainsAny(body[:nl], "{[\"") {
				body = body[nl+1:] // the fence's language tag
			}
			s = strings.TrimSpace(body)
		}
	}
	if s == "" {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if strings.TrimSpace(s[dec.InputOffset():]) != "" {
		return nil, false // text after the value
	}
	return v, true
}

// FieldMatches compares a JSON answer with a JSON-object reference field by
// field: for each top-level field of the reference, whether the answer is an
// object holding an equal value (numbers compare by value, so 1 equals 1.0;
// objects and arrays compare deeply). ok is false when the reference is not
// a JSON object, so the metric does not apply.
func FieldMatches(answer, reference string) (fields map[string]bool, ok bool) {
	ref, valid := ParseJSON(reference)
	refObj, isObj := ref.(map[string]any)
	if !valid || !isObj {
		return nil, false
	}
	ans, _ := ParseJSON(answer)
	ansObj, _ := ans.(map[string]any)
	fields = make(map[string]bool, len(refObj))
	for k, want := range refObj {
		got, present := ansObj[k]
		fields[k] = present && jsonEqual(got, want)
	}
	return fields, true
}

// FieldAccuracy is the fraction of true values in fields (0 for none).
func FieldAccuracy(fields map[string]bool) float64 {
	if len(fields) == 0 {
		return 0
	}
	n := 0
	for _, ok := range fields {
		if ok {
			n++
		}
	}
	return float64(n) / float64(len(fields))
}

func jsonEqual(a, b any) bool {
	return reflect.DeepEqual(canonical(a), canonical(b))
}

// canonical turns json.Numbers into float64 so that 1 and 1.0 are equal.
func canonical(v any) any {
	switch v := v.(type) {
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return f
		}
		return v.String()
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = canonical(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = canonical(x)
		}
		return out
	}
	return v
}

// Scores are one answer's task metrics against its reference.
type Scores struct {
	Exact     float64 `json:"exact"`
	RougeL    float64 `json:"rouge_l"`
	JSONValid *bool   `json:"json_valid,omitempty"` // set when the reference is JSON
	// Fields holds, for a JSON-object reference, whether each of its
	// top-level fields was matched; FieldAccuracy is their mean.
	Fields        map[string]bool `json:"fields,omitempty"`
	FieldAccuracy *float64        `json:"field_accuracy,omitempty"`
}

// Score computes every task metric of answer against reference. JSON
// validity applies only where the reference itself is JSON, and field
// accuracy only where it is a JSON object.
func Score(answer, reference string) Scores {
	s := Scores{Exact: ExactMatch(answer, reference), RougeL: RougeL(answer, reference)}
	if looksLikeJSON(reference) {
		_, valid := ParseJSON(answer)
		s.JSONValid = &valid
	}
	if f, ok := FieldMatches(answer, reference); ok {
		acc := FieldAccuracy(f)
		s.Fields, s.FieldAccuracy = f, &acc
	}
	return s
}

// looksLikeJSON keeps bare numbers and words ("42", "true") — valid JSON
// but plain-text answers — out of the JSON metrics: only objects and arrays count.
func looksLikeJSON(s string) bool {
	v, _ := ParseJSON(s)
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}
