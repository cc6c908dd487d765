package engine

import (
	"cmp"
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Sampling chooses how the next token is drawn from the logits. The zero
// value is greedy decoding.
type Sampling struct {
	// Temperature divides the logits; 0 means greedy (argmax).
	Temperature float64
	// TopK keeps the K most likely tokens; 0 keeps all. TopK 1 is greedy.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches TopP (nucleus sampling); 0 or 1 keeps all.
	TopP float64
	// MinP drops tokens less likely than MinP times the most likely one; 0 keeps all.
	MinP float64
	// Seed makes sampling reproducible: the same seed, prompt and settings give
	// the same tokens, alone or batched. Nil draws a random seed.
	Seed *uint64
	// Logprobs asks for the log-probability of each chosen token, and
	// TopLogprobs (0–20) for that many most likely alternatives. Both are of the
	// model's distribution before temperature, top-k/p and min-p.
	Logprobs    bool
	TopLogprobs int
}

// MaxTopLogprobs is the most alternatives a token's logprobs can list.
const MaxTopLogprobs = 20

// Validate reports settings outside their ranges.
func (s Sampling) Validate() error {
	switch {
	case s.Temperature < 0 || math.IsNaN(s.Temperature) || math.IsInf(s.Temperature, 0):
		return fmt.Errorf("temperature %v must be a finite number ≥ 0 (0 is greedy)", s.Temperature)
	case s.TopK < 0:
		return fmt.Errorf("top_k %d must be ≥ 0 (0 keeps every token)", s.TopK)
	case s.TopP < 0 || s.TopP > 1 || math.IsNaN(s.TopP):
		return fmt.Errorf("top_p %v must be in [0, 1] (0 or 1 keeps every token)", s.TopP)
	case s.MinP < 0 || s.MinP > 1 || math.IsNaN(s.MinP):
		return fmt.Errorf("min_p %v must be in [0, 1]", s.MinP)
	case s.TopLogprobs < 0 || s.TopLogprobs > MaxTopLogprobs:
		return fmt.Errorf("top_logprobs %d must be in [0, %d]", s.TopLogprobs, MaxTopLogprobs)
	}
	return nil
}

// TokenLogprob is one token and its log-probability.
type TokenLogprob struct {
	ID      int32
	Logprob float32
}

// sampler draws tokens for one request, with its own random stream.
type sampler struct {
	s   Sampling
	rng *rand.Rand
	// scratch, reused across steps
	cand  []candidate
	probs []float64
}

type candidate struct {
	id    int32
	logit float32
}

func newSampler(s Sampling, seed uint64) *sampler {
	return &sampler{s: s, rng: rand.New(rand.NewPCG(seed, 0x66f0_a1d2_e49c_b3b7))}
}

func (sp *sampler) greedy() bool { return sp.s.Temperature == 0 || sp.s.TopK == 1 }

// sample picks the next token from a logits row and, when asked, its
// logprob and the top alternatives.
func (sp *sampler) sample(logits []float32) (id int32, logprob float32, top []TokenLogprob) {
	if sp.greedy() {
		id = argmaxRow(logits)
	} else {
		id = sp.draw(logits)
	}
	if sp.s.Logprobs || sp.s.TopLogprobs > 0 {
		lse := logSumExp(logits)
		logprob = float32(float64(logits[id]) - lse)
		if sp.s.TopLogprobs > 0 {
			for _, c := range topK(logits, sp.s.TopLogprobs, nil) {
				top = append(top, TokenLogprob{ID: c.id, Logprob: float32(float64(c.logit) - lse)})
			}
		}
	}
	return id, logprob, top
}

// argmaxRow is the index of the largest logit, the lowest index on ties.
func argmaxRow(row []float32) int32 {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return int32(best)
}

func logSumExp(row []float32) float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, float64(v))
	}
	if math.IsInf(m, -1) {
		return m
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - m)
	}
	return m + math.Log(sum)
}

// draw samples with temperature, top-k, min-p and top-p, in that order (as vLLM).
func (sp *sampler) draw(logits []float32) int32 {
	s := sp.s
	if s.TopK > 0 && s.TopK < len(logits) {
		sp.cand = topK(logits, s.TopK, sp.cand[:0])
	} else {
		sp.cand = sp.cand[:0]
		for i, v := range logits {
			sp.cand = append(sp.cand, candidate{int32(i), v})
		}
		if s.TopP > 0 && s.TopP < 1 {
			sortCandidates(sp.cand)
		}
	}
	// Softmax over the candidates at temperature T.
	m := math.Inf(-1)
	for _, c := range sp.cand {
		m = math.Max(m, float64(c.logit))
	}
	sp.probs = slices.Grow(sp.probs[:0], len(sp.cand))[:len(sp.cand)]
	var sum float64
	for i, c := range sp.cand {
		p := math.Exp((float64(c.logit) - m) / s.Temperature)
		if math.IsNaN(p) {
			p = 0
		}
		sp.probs[i] = p
		sum += p
	}
	if sum == 0 || math.IsNaN(sum) || math.IsInf(sum, 0) {
		return argmaxRow(logits)
	}
	// min-p: relative to the most likely token, whose unnormalised probability is 1.
	if s.MinP > 0 {
		sum = 0
		for i, p := range sp.probs {
			if p < s.MinP {
				sp.probs[i] = 0
			}
			sum += sp.probs[i]
		}
	}
	// top-p over candidates sorted by descending logit.
	if s.TopP > 0 && s.TopP < 1 {
		var cum float64
		for i, p := range sp.probs {
			if cum >= s.TopP*sum {
				sp.probs[i] = 0
				continue
			}
			cum += p
		}
		sum = cum
	}
	u := sp.rng.Float64() * sum
	last := int32(-1)
	for i, p := range sp.probs {
		if p == 0 {
			continue
		}
		last = sp.cand[i].id
		if u < p {
			return last
		}
		u -= p
	}
	if last < 0 {
		return argmaxRow(logits)
	}
	return last // rounding left u just past the end
}

// sortCandidates orders by descending logit, then ascending id.
func sortCandidates(c []candidate) {
	slices.SortFunc(c, func(a, b candidate) int {
		if r := cmp.Compare(b.logit, a.logit); r != 0 {
			return r
		}
		return cmp.Compare(a.id, b.id)
	})
}

// topK returns the k largest logits, sorted descending (ties: lower id first).
func topK(logits []float32, k int, buf []candidate) []candidate {
	k = min(k, len(logits))
	h := minHeap(buf[:0])
	for i, v := range logits {
		c := candidate{int32(i), v}
		if len(h) < k {
			heap.Push(&h, c)
		} else if less(h[0], c) {
			h[0] = c
			heap.Fix(&h, 0)
		}
	}
	out := []candidate(h)
	sortCandidates(out)
	return out
}

// less orders candidates by likelihood: a is less likely than b.
func less(a, b candidate) bool {
	if a.logit != b.logit {
		return a.logit < b.logit
	}
	return a.id > b.id
}

type minHeap []candidate

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return less(h[i], h[j]) }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(candidate)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
