package judge

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrGarbage is the error a judge call returns (wrapped in a *GarbageError)
// when the judge's answer could not be parsed into a valid verdict, even
// after one repair request. Count it with errors.Is; report examples from
// the *GarbageError.
var ErrGarbage = errors.New("judge answered garbage")

// GarbageError is a judge answer that could not be used.
type GarbageError struct {
	Model   string
	Version string   // prompt version
	Problem string   // why the last answer was rejected
	Answers []string // the raw answers, first and after the repair request
}

func (e *GarbageError) Error() string {
	last := ""
	if len(e.Answers) > 0 {
		last = e.Answers[len(e.Answers)-1]
	}
	return fmt.Sprintf("judge %s (%s): no valid verdict after %d answers: %s; last answer %q "+
		"(use a stronger judge model or one that supports response_format json_object)",
		e.Model, e.Version, len(e.Answers), e.Problem, clip(last, 200))
}

func (e *GarbageError) Unwrap() error { return ErrGarbage }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// jsonObjects returns the top-level JSON objects embedded in text, in order:
// a bare object, one inside a code fence, or one after a chatty preamble.
func jsonObjects(text string) []map[string]json.RawMessage {
	var out []map[string]json.RawMessage
	for i := 0; i < len(text); {
		j := strings.IndexByte(text[i:], '{')
		if j < 0 {
			break
		}
		i += j
		dec := json.NewDecoder(strings.NewReader(text[i:]))
		var obj map[string]json.RawMessage
		if err := dec.Decode(&obj); err != nil {
			i++
			continue
		}
		out = append(out, obj)
		i += int(dec.InputOffset())
	}
	return out
}

// field looks a key up case-insensitively.
func field(obj map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := obj[key]; ok {
		return v, true
	}
	for k, v := range obj {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func reasonOf(obj map[string]json.RawMessage) string {
	raw, ok := field(obj, "reason")
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// parseScore reads {"score": n, "reason": "..."} from a judge's answer.
// problem is non-empty when there is no unambiguous score in 1..10.
func parseScore(text string) (score int, reason, problem string) {
	objs := jsonObjects(text)
	if len(objs) == 0 {
		return 0, "", "no JSON object in the answer"
	}
	problem = `no "score" field`
	found := false
	for _, obj := range objs {
		raw, ok := field(obj, "score")
		if !ok {
			continue
		}
		s, p := scoreValue(raw)
		if p != "" {
			problem = p
			continue
		}
		if found && s != score {
			return 0, "", fmt.Sprintf("ambiguous: the answer holds several scores (%d and %d)", score, s)
		}
		if !found {
			score, reason, found = s, reasonOf(obj), true
		}
	}
	if !found {
		return 0, "", problem
	}
	return score, reason, ""
}

func scoreValue(raw json.RawMessage) (int, string) {
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, fmt.Sprintf("score %s is not a number", clip(string(raw), 40))
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return 0, fmt.Sprintf("score %q is not an integer", clip(s, 40))
		}
		f = float64(n)
	}
	if f != math.Trunc(f) {
		return 0, fmt.Sprintf("score %v is not an integer", f)
	}
	if f < 1 || f > 10 {
		return 0, fmt.Sprintf("score %v is outside 1-10", f)
	}
	return int(f), ""
}

// parseWinner reads {"winner": "A"|"B"|"tie", "reason": "..."} from a judge's answer.
func parseWinner(text string) (winner, reason, problem string) {
	objs := jsonObjects(text)
	if len(objs) == 0 {
		return "", "", "no JSON object in the answer"
	}
	problem = `no "winner" field`
	for _, obj := range objs {
		raw, ok := field(obj, "winner")
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			problem = fmt.Sprintf("winner %s is not a string", clip(string(raw), 40))
			continue
		}
		var w string
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "a", "answer a":
			w = "A"
		case "b", "answer b":
			w = "B"
		case "tie", "draw", "equal":
			w = Tie
		default:
			problem = fmt.Sprintf(`winner %q is not "A", "B" or "tie"`, clip(s, 40))
			continue
		}
		if winner != "" && w != winner {
			return "", "", fmt.Sprintf("ambiguous: the answer names several winners (%s and %s)", winner, w)
		}
		if winner == "" {
			winner, reason = w, reasonOf(obj)
		}
	}
	if winner == "" {
		return "", "", problem
	}
	return winner, reason, ""
}
