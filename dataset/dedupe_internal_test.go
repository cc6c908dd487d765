package dataset

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/api"
)

// TestNearDuplicateRecall builds a set with known pairs: for each base text
// (120 random words from a 2,000-word vocabulary) a copy edited until its
// exact shingle Jaccard similarity to the base is in a target range. Pairs at
// J ≥ 0.85 must be found (recall floor) and pairs at J < 0.7 must not be
// (false-positive ceiling). The labels are exact Jaccard over the same
// 5-word shingles the stage uses.
func TestNearDuplicateRecall(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := make([]string, 2000)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%dx", i)
	}
	words := func(n int) []string {
		w := make([]string, n)
		for i := range w {
			w[i] = vocab[rng.IntN(len(vocab))]
		}
		return w
	}
	var norm normalizer
	shOf := func(s string) []uint64 {
		norm.normalize(s)
		return setOf(append([]uint64(nil), norm.shingles(5)...))
	}
	type pair struct {
		base, copy string
		j          float64
	}
	var pairs []pair
	// Edit a copy of base until its Jaccard falls into [lo, hi).
	makePair := func(lo, hi float64) pair {
		for {
			base := words(120)
			cp := append([]string(nil), base...)
			bs := shOf(strings.Join(base, " "))
			for {
				j := jaccard(bs, shOf(strings.Join(cp, " ")))
				if j < hi && j >= lo {
					return pair{strings.Join(base, " "), strings.Join(cp, " "), j}
				}
				if j < lo {
					break // overshot: start again
				}
				cp[rng.IntN(len(cp))] = vocab[rng.IntN(len(vocab))]
			}
		}
	}
	const perBand = 100
	for range perBand {
		pairs = append(pairs, makePair(0.85, 1.0)) // should be found
	}
	for range perBand {
		pairs = append(pairs, makePair(0.8, 0.85)) // at the threshold: reported, not asserted
	}
	for range perBand {
		pairs = append(pairs, makePair(0.3, 0.7)) // must not be found
	}
	stage, err := Dedupe(DedupeSpec{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	in := make(chan *Example, len(pairs)*2)
	for i, p := range pairs {
		for k, text := range []string{p.base, p.copy} {
			ex := &Example{Meta: Meta{ID: fmt.Sprintf("p%d-%d", i, k)}, Seq: int64(2*i + k)}
			ex.Messages = []api.Message{{Role: "user", Content: api.TextContent(text)}}
			in <- ex
		}
	}
	close(in)
	kept := map[string]bool{}
	rep := &StageReport{Stage: "dedupe"}
	out := &Out{rep: rep, sink: func(ex *Example) error { kept[ex.Meta.ID] = true; return nil }}
	if err := stage.Run(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	found := func(i int) bool { return !kept[fmt.Sprintf("p%d-0", i)] || !kept[fmt.Sprintf("p%d-1", i)] }
	rate := func(from int) float64 {
		n := 0
		for i := from; i < from+perBand; i++ {
			if found(i) {
				n++
			}
		}
		return float64(n) / perBand
	}
	recall, edge, fpRate := rate(0), rate(perBand), rate(2*perBand)
	t.Logf("near-duplicate recall %.2f at J>=0.85, %.2f at 0.8<=J<0.85; false positives %.2f at 0.3<=J<0.7 (bands %d x rows %d)",
		recall, edge, fpRate, stage.(*dedupe).bands, stage.(*dedupe).rows)
	if recall < 0.9 {
		t.Errorf("recall %.2f at J >= 0.85, want >= 0.9", recall)
	}
	if fpRate > 0.02 {
		t.Errorf("false-positive rate %.2f at J < 0.7, want <= 0.02", fpRate)
	}
	if rep.Out+rep.dropped != int64(2*len(pairs)) {
		t.Errorf("kept %d + dropped %d != %d rows", rep.Out, rep.dropped, 2*len(pairs))
	}
}

func TestLSHParams(t *testing.T) {
	b, r := lshParams(0.8)
	if b != 12 || r != 6 {
		t.Errorf("lshParams(0.8) = %d x %d, want 12 x 6", b, r)
	}
	if p := candidateProb(0.85, b, r); p < 0.99 {
		t.Errorf("P(candidate | J=0.85) = %.3f", p)
	}
}

func TestNormalizeExact(t *testing.T) {
	var n normalizer
	a := n.normalize("Hello,   WORLD!  How are you?")
	b := n.normalize("hello world how are you")
	c := n.normalize("hello world how are they")
	if a != b || a == c {
		t.Errorf("normalised hashes: %x %x %x", a, b, c)
	}
}
