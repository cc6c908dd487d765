package engine

import (
	"math"
	"testing"
)

// TestSamplerFilters draws many tokens from a known distribution and checks
// that each filter keeps exactly the tokens it should.
func TestSamplerFilters(t *testing.T) {
	// probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 at temperature 1
	logits := []float32{0, 0, 0, 0, 0}
	for i, p := range []float64{0.0625, 0.5, 0.125, 0.25, 0.0625} {
		logits[i] = float32(math.Log(p))
	}
	for _, tc := range []struct {
		name    string
		s       Sampling
		allowed []int32
	}{
		{"all", Sampling{Temperature: 1}, []int32{0, 1, 2, 3, 4}},
		{"top-k 2", Sampling{Temperature: 1, TopK: 2}, []int32{1, 3}},
		{"top-p 0.7", Sampling{Temperature: 1, TopP: 0.7}, []int32{1, 3}},
		{"top-p 0.8", Sampling{Temperature: 1, TopP: 0.8}, []int32{1, 3, 2}},
		{"min-p 0.3", Sampling{Temperature: 1, MinP: 0.3}, []int32{1, 3}},
		{"min-p 0.2 top-k 1", Sampling{Temperature: 1, MinP: 0.2, TopK: 1}, []int32{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := newSampler(tc.s, 1)
			seen := map[int32]int{}
			for range 4000 {
				id, _, _ := sp.sample(logits)
				seen[id]++
			}
			for _, id := range tc.allowed {
				if seen[id] == 0 {
					t.Errorf("token %d never drawn: %v", id, seen)
				}
				delete(seen, id)
			}
			if len(seen) > 0 {
				t.Errorf("drew filtered-out tokens %v", seen)
			}
		})
	}
	// Unfiltered frequencies follow the distribution.
	sp := newSampler(Sampling{Temperature: 1}, 2)
	n := 20000
	count := 0
	for range n {
		if id, _, _ := sp.sample(logits); id == 1 {
			count++
		}
	}
	if f := float64(count) / float64(n); math.Abs(f-0.5) > 0.02 {
		t.Fatalf("token 1 (p=0.5) drawn with frequency %.3f", f)
	}
}

func TestTopK(t *testing.T) {
	got := topK([]float32{3, 1, 4, 1, 5, 9, 2, 6}, 3, nil)
	want := []int32{5, 7, 4}
	for i, c := range got {
		if c.id != want[i] {
			t.Fatalf("top 3 = %v, want ids %v", got, want)
		}
	}
}
