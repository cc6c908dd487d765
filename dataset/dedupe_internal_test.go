package dataset

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
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
	dir := t.TempDir()
	stage, err := Dedupe(DedupeSpec{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	// Every base, then unrelated rows, then every copy: the filler (more
	// than the spool's buffer) makes the check of a copy against its base
	// read the base back from the spool file, not from memory.
	const fillers = 1500
	in := make(chan *Example, len(pairs)*2+fillers)
	var seq int64
	send := func(id, text string) {
		ex := &Example{Meta: Meta{ID: id}, Seq: seq}
		ex.Messages = []api.Message{{Role: "user", Content: api.TextContent(text)}}
		in <- ex
		seq++
	}
	for i, p := range pairs {
		send(fmt.Sprintf("p%d-0", i), p.base)
	}
	for i := range fillers {
		send(fmt.Sprintf("f%d", i), strings.Join(words(150), " "))
	}
	for i, p := range pairs {
		send(fmt.Sprintf("p%d-1", i), p.copy)
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
	if rep.Out+rep.dropped != int64(2*len(pairs)+fillers) {
		t.Errorf("kept %d + dropped %d != %d rows", rep.Out, rep.dropped, 2*len(pairs)+fillers)
	}
	for i := range fillers {
		if !kept[fmt.Sprintf("f%d", i)] {
			t.Errorf("unrelated row f%d dropped", i)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("dedupe left %d files in its dir, want none", len(left))
	}
}

// TestOffHeap checks that offHeap's file-backed memory starts zeroed, holds
// what is written through several grown tables, and leaves no file behind.
func TestOffHeap(t *testing.T) {
	dir := t.TempDir()
	x := newExactIndex(dir)
	b := newBandIndex(dir)
	rows := rowTable{dir: dir}
	const n = 3 * rowChunk / 2
	for i := range uint32(n) {
		r := rows.add()
		if *r != (rowInfo{}) {
			t.Fatalf("row %d not zeroed: %+v", i, *r)
		}
		r.leader = i
		x.put(uint64(i)*7919+1, i)
		b.putIfAbsent(uint64(i)<<32, i)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("%d index files visible in the dir, want them unlinked", len(left))
	}
	for i := range uint32(n) {
		if rows.at(i).leader != i {
			t.Fatalf("row %d: leader %d", i, rows.at(i).leader)
		}
		if v, ok := x.get(uint64(i)*7919 + 1); !ok || v != i {
			t.Fatalf("exact %d: %d, %v", i, v, ok)
		}
		if v, ok := b.get(uint64(i) << 32); !ok || v != i {
			t.Fatalf("band %d: %d, %v", i, v, ok)
		}
	}
	rows.release()
	x.release()
	b.release()
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

// TestIndexFill checks that find-then-fill, as dedupe uses it for a row's
// band keys, leaves the indexes answering as putIfAbsent and put would,
// across growth and keys that share a tag or a probe run.
func TestIndexFill(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	dir := t.TempDir()
	a, b := newBandIndex(dir), newBandIndex(dir)
	xa, xb := newExactIndex(dir), newExactIndex(dir)
	defer func() { a.release(); b.release(); xa.release(); xb.release() }()
	key := func() uint64 { return uint64(rng.IntN(20000))<<32 | uint64(rng.Uint32()) } // tags repeat
	var all []uint64
	for row := range uint32(20000) {
		keys := make([]uint64, 12)
		at := make([]slotRef, 12)
		found := make([]bool, 12)
		for i := range keys {
			keys[i] = key()
			_, found[i], at[i] = b.find(keys[i])
		}
		for i, k := range keys {
			a.putIfAbsent(k, row)
			if found[i] {
				b.putIfAbsent(k, row)
			} else {
				b.fill(at[i], k, row)
			}
		}
		h := uint64(rng.IntN(30000)) + 1
		if _, ok, where := xb.find(h); !ok {
			xb.fill(where, h, row)
		}
		xa.put(h, row)
		all = append(all, keys...)
	}
	for _, k := range all {
		ra, oka := a.get(k)
		rb, okb := b.get(k)
		if ra != rb || oka != okb {
			t.Fatalf("band key %x: putIfAbsent gives %d %v, fill %d %v", k, ra, oka, rb, okb)
		}
	}
	if a.n != b.n || len(a.slots) != len(b.slots) {
		t.Errorf("band index: %d entries in %d slots, fill %d in %d", a.n, len(a.slots), b.n, len(b.slots))
	}
	for h := uint64(1); h <= 30000; h++ {
		ra, oka := xa.get(h)
		rb, okb := xb.get(h)
		if ra != rb || oka != okb {
			t.Fatalf("exact key %d: put gives %d %v, fill %d %v", h, ra, oka, rb, okb)
		}
	}
}
