package judge

import (
	"strings"
	"testing"
)

func TestParseScore(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		score      int
		reason     string
		problem    string // substring of the expected problem; "" for success
	}{
		{"clean", `{"score": 8, "reason": "correct"}`, 8, "correct", ""},
		{"fenced", "```json\n{\"score\": 3, \"reason\": \"wrong unit\"}\n```", 3, "wrong unit", ""},
		{"chatty", "Sure! Here is my evaluation.\n\n{\"score\": 10, \"reason\": \"perfect\"}\nLet me know if you need more.", 10, "perfect", ""},
		{"brace in preamble", `Scores use {braces} like so: {"score": 6, "reason": "ok"}`, 6, "ok", ""},
		{"braces in reason", `{"score": 7, "reason": "uses {x} and }"}`, 7, "uses {x} and }", ""},
		{"integral float", `{"score": 9.0, "reason": "r"}`, 9, "r", ""},
		{"string score", `{"score": " 4 ", "reason": "r"}`, 4, "r", ""},
		{"key case", `{"Score": 5, "Reason": "r"}`, 5, "r", ""},
		{"same verdict twice", `{"score": 5, "reason": "r"} so {"score": 5}`, 5, "r", ""},
		{"nested object", `{"verdict": {"score": 2}, "score": 4, "reason": "outer"}`, 4, "outer", ""},
		{"no json", "I would rate this answer an 8 out of 10.", 0, "", "no JSON object"},
		{"empty", "", 0, "", "no JSON object"},
		{"truncated", `{"score": 8, "reason": "cut of`, 0, "", "no JSON object"},
		{"no score field", `{"rating": 8}`, 0, "", `no "score"`},
		{"above range", `{"score": 11, "reason": "great"}`, 0, "", "outside 1-10"},
		{"zero", `{"score": 0}`, 0, "", "outside 1-10"},
		{"fraction", `{"score": 7.5}`, 0, "", "not an integer"},
		{"word", `{"score": "eight"}`, 0, "", "not an integer"},
		{"bool", `{"score": true}`, 0, "", "not a number"},
		{"ambiguous", `Example: {"score": 3}. My verdict: {"score": 9, "reason": "r"}`, 0, "", "ambiguous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			score, reason, problem := parseScore(tc.text)
			if tc.problem != "" {
				if !strings.Contains(problem, tc.problem) {
					t.Fatalf("problem %q, want one containing %q (score %d)", problem, tc.problem, score)
				}
				return
			}
			if problem != "" || score != tc.score || reason != tc.reason {
				t.Fatalf("got score %d reason %q problem %q; want %d %q", score, reason, problem, tc.score, tc.reason)
			}
		})
	}
}

func TestParseWinner(t *testing.T) {
	for _, tc := range []struct {
		name, text, winner, problem string
	}{
		{"A", `{"winner": "A", "reason": "r"}`, "A", ""},
		{"b lower", `{"winner": "b", "reason": "r"}`, "B", ""},
		{"tie", `{"winner": "Tie", "reason": "r"}`, "tie", ""},
		{"answer B", "```\n{\"winner\": \"Answer B\"}\n```", "B", ""},
		{"chatty", "After careful thought: {\"winner\": \"A\", \"reason\": \"more complete\"}", "A", ""},
		{"both", `{"winner": "both"}`, "", `not "A", "B" or "tie"`},
		{"number", `{"winner": 1}`, "", "not a string"},
		{"none", `The first one is better.`, "", "no JSON object"},
		{"ambiguous", `{"winner": "A"} or maybe {"winner": "B"}`, "", "ambiguous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, _, problem := parseWinner(tc.text)
			if tc.problem != "" {
				if !strings.Contains(problem, tc.problem) {
					t.Fatalf("problem %q, want one containing %q (winner %q)", problem, tc.problem, w)
				}
				return
			}
			if problem != "" || w != tc.winner {
				t.Fatalf("got %q problem %q; want %q", w, problem, tc.winner)
			}
		})
	}
}
