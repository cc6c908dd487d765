package pricing

import (
	"math"
	"testing"
)

func TestLookupAndCost(t *testing.T) {
	tab := New(map[string]Price{"support-bot": {Input: 1, Output: 2}, "gpt-4o": {Input: 5, Output: 15}})
	cases := []struct {
		model          string
		prompt, cached int
		completion     int
		want           float64
		ok             bool
	}{
		{"gpt-4o-mini", 1_000_000, 0, 1_000_000, 0.75, true},
		{"gpt-4o-mini-2024-07-18", 1000, 0, 0, 0.00015, true},
		{"openai/gpt-4o", 1_000_000, 0, 0, 5, true}, // override wins
		{"support-bot", 500_000, 0, 500_000, 1.5, true},
		{"claude-3-5-haiku-20241022", 1_000_000, 0, 0, 0.8, true},
		{"gpt-4o-mini", 1_000_000, 1_000_000, 0, 0.075, true},
		{"llama3.2", 10, 0, 10, 0, false},
		{"gpt-4oops", 10, 0, 10, 0, false},
	}
	for _, c := range cases {
		got, ok := tab.Cost(c.model, c.prompt, c.cached, c.completion)
		if ok != c.ok || math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Cost(%s) = %v, %v; want %v, %v", c.model, got, ok, c.want, c.ok)
		}
	}
}
