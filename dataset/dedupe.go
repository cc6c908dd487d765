package dataset

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"unsafe"
)

// DedupeSpec configures the Dedupe stage.
type DedupeSpec struct {
	// Exact removes rows whose text is identical after lowercasing and
	// collapsing punctuation and whitespace (default true).
	Exact *bool `yaml:"exact" json:"exact,omitempty"`
	// Near removes rows whose word-shingle Jaccard similarity to a kept row
	// is at least Threshold (default true).
	Near      *bool   `yaml:"near" json:"near,omitempty"`
	Threshold float64 `yaml:"threshold" json:"threshold,omitempty"` // default 0.8
	Shingle   int     `yaml:"shingle" json:"shingle,omitempty"`     // words per shingle, default 5
	// Field is the text compared: "dialogue" (default: every message but
	// system prompts), "conversation", "prompt" or "answer".
	Field string `yaml:"field" json:"field,omitempty"`
}

func (s DedupeSpec) withDefaults() DedupeSpec {
	t := true
	if s.Exact == nil {
		s.Exact = &t
	}
	if s.Near == nil {
		s.Near = &t
	}
	if s.Threshold == 0 {
		s.Threshold = 0.8
	}
	if s.Shingle == 0 {
		s.Shingle = 5
	}
	if s.Field == "" {
		s.Field = "dialogue"
	}
	return s
}

// Drop reasons of the dedupe stage.
const (
	ReasonExactDuplicate = "exact duplicate"
	ReasonNearDuplicate  = "near duplicate"
)

// Dedupe builds the dedupe stage: exact duplicates after normalisation, then
// near-duplicates by MinHash-LSH, keeping the best row of each cluster (the
// highest feedback score, then the highest judge score, then the newest,
// then the later row).
//
// Keeping the best of a cluster needs every row before deciding, so rows are
// spooled to a file in dir (os.TempDir when "") and replayed once the input
// ends. The per-row state lives outside the Go heap in unlinked files in dir,
// mapped shared (see offHeap), so it costs disk and page cache rather than
// the process's own memory: 32 bytes of row state (cluster leader and best
// row, scores, time, where it is in the spool), the exact-hash index
// (12 bytes a slot, ≈17 bytes a row at its 57–85% load), and for rows that
// start a cluster one 8-byte LSH entry per band (12 bands at the default
// threshold: ≈135 bytes) — about 185 bytes a row in all; bench/dataset
// measures it. Near-duplicate candidates are verified by the exact Jaccard
// similarity of their shingle sets, the candidate's recomputed from its row
// read back from the spool, so LSH only decides which pairs are compared.
// The replay gives the spool's disk blocks back as it reads them.
func Dedupe(spec DedupeSpec, dir string) (Stage, error) {
	spec = spec.withDefaults()
	if spec.Threshold <= 0 || spec.Threshold > 1 {
		return nil, fmt.Errorf("dedupe.threshold %v must be in (0, 1]", spec.Threshold)
	}
	switch spec.Field {
	case "dialogue", "conversation", "prompt", "answer":
	default:
		return nil, fmt.Errorf("dedupe.field %q must be dialogue, conversation, prompt or answer", spec.Field)
	}
	if spec.Shingle < 1 {
		return nil, fmt.Errorf("dedupe.shingle %d must be at least 1", spec.Shingle)
	}
	d := &dedupe{spec: spec, dir: dir}
	d.bands, d.rows = lshParams(spec.Threshold)
	return d, nil
}

type dedupe struct {
	spec        DedupeSpec
	dir         string
	bands, rows int
}

func (d *dedupe) Name() string { return "dedupe" }

// Row kinds.
const (
	kindLeader = iota
	kindExact
	kindNear
)

func (d *dedupe) Run(ctx context.Context, in <-chan *Example, out *Out) error {
	rowFile, err := os.CreateTemp(d.dir, "foundry-dedupe-rows-*.bin")
	if err != nil {
		return fmt.Errorf("dedupe spool: %w (set the data dir or TMPDIR to a writable place)", err)
	}
	defer os.Remove(rowFile.Name())
	defer rowFile.Close()
	var (
		norm     normalizer
		norm2    normalizer // a candidate's
		rows     = rowTable{dir: d.dir}
		exact    = newExactIndex(d.dir)
		bandIdx  = newBandIndex(d.dir)
		clusters int64 // leaders with duplicates
		sig      = make([]uint32, d.bands*d.rows)
		full     = make([]bool, d.bands*d.rows)
		keys     = make([]uint64, d.bands)
		cands    = make([]uint32, d.bands) // the row each band key finds
		found    = make([]bool, d.bands)
		at       = make([]slotRef, d.bands) // else where it goes
		other    []uint64
	)
	defer rows.release()
	defer func() {
		if exact != nil {
			exact.release()
			bandIdx.release()
		}
	}()
	enc := &rowSpool{w: rowFile, r: rowFile}
	better := func(a, b uint32) bool { // is row a better than row b?
		ra, rb := rows.at(a), rows.at(b)
		for _, s := range [2][2]float32{{ra.score, rb.score}, {ra.judge, rb.judge}} {
			sa, sb := s[0], s[1]
			if sa != sb && !(math.IsNaN(float64(sa)) && math.IsNaN(float64(sb))) {
				return math.IsNaN(float64(sb)) || sa > sb
			}
		}
		if ra.when != rb.when {
			return ra.when > rb.when
		}
		return a > b
	}
	join := func(i, l uint32) { // row i is a duplicate of leader l's cluster
		rows.at(i).leader = l
		rl := rows.at(l)
		cur := l
		if rl.best == 0 {
			clusters++
		} else {
			cur = rl.best - 1
		}
		if better(i, cur) {
			cur = i
		}
		rl.best = cur + 1
	}
	var n uint32
	for ex := range in {
		if n == math.MaxUint32-1 {
			return fmt.Errorf("dedupe supports at most %d rows per build", math.MaxUint32-1)
		}
		i := n
		n++
		off, err := enc.put(ex)
		if err != nil {
			return fmt.Errorf("dedupe spool: %w", err)
		}
		s := float32(math.NaN())
		if ex.Meta.Score != nil {
			s = float32(*ex.Meta.Score)
		}
		js := float32(math.NaN())
		if ex.Meta.JudgeScore != nil {
			js = float32(*ex.Meta.JudgeScore)
		}
		ri := rows.add()
		*ri = rowInfo{at: off, leader: i, kind: kindLeader, score: s, judge: js, when: uint32(max(ex.Meta.CreatedAt.Unix(), 0))}

		h := norm.normalizeExample(ex, d.spec.Field)
		var hAt slotRef
		if *d.spec.Exact {
			l, ok, where := exact.find(h)
			if ok {
				ri.kind = kindExact
				join(i, l)
				continue
			}
			hAt = where
		}
		if *d.spec.Near {
			shingles := norm.shingles(d.spec.Shingle)
			minHash(shingles, sig, full)
			for b := range keys {
				keys[b] = bandKey(b, sig[b*d.rows:(b+1)*d.rows])
			}
			// Look every band up once (the index is large: each lookup is a cache miss).
			for b, k := range keys {
				cands[b], found[b], at[b] = bandIdx.find(k)
			}
			bestJ, bestC := -1.0, uint32(0)
			sorted := false
			for b := range keys {
				c := cands[b]
				if !found[b] || c == i {
					continue
				}
				seen := false
				for b2 := range b { // skip a candidate already checked through an earlier band
					if found[b2] && cands[b2] == c {
						seen = true
						break
					}
				}
				if seen {
					continue
				}
				cx, err := enc.at(rows.at(c).at)
				if err != nil {
					return fmt.Errorf("dedupe spool: %w", err)
				}
				norm2.normalizeExample(cx, d.spec.Field)
				other = norm2.shingles(d.spec.Shingle)
				if !sorted {
					shingles, sorted = setOf(shingles), true
				}
				if j := jaccard(shingles, setOf(other)); j > bestJ {
					bestJ, bestC = j, c
				}
			}
			if bestJ >= d.spec.Threshold {
				ri.kind = kindNear
				join(i, bestC)
				if *d.spec.Exact {
					exact.fill(hAt, h, bestC)
				}
				continue
			}
			for b, k := range keys {
				if found[b] {
					bandIdx.putIfAbsent(k, i) // present: only grows the table when due, as before
				} else {
					bandIdx.fill(at[b], k, i)
				}
			}
		}
		if *d.spec.Exact {
			exact.fill(hAt, h, i)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := enc.flush(); err != nil {
		return fmt.Errorf("dedupe spool: %w", err)
	}
	// What the per-row state cost, for the funnel (bench/dataset reports it per row).
	out.Count("index bytes", int64(len(exact.keys))*12+int64(len(bandIdx.slots))*8+int64(len(rows.chunks))*rowChunk*int64(unsafe.Sizeof(rowInfo{})))
	exact.release() // free the indexes before replaying
	bandIdx.release()
	exact, bandIdx = nil, nil
	out.Count("clusters with duplicates", clusters)
	out.Count("lsh bands", int64(d.bands))
	out.Count("lsh rows per band", int64(d.rows))

	if _, err := rowFile.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("dedupe spool: %w", err)
	}
	reasonOf := func(i, winner uint32) string {
		if k, kw := rows.at(i).kind, rows.at(winner).kind; k == kindExact || k == kindLeader && kw == kindExact {
			return ReasonExactDuplicate
		}
		return ReasonNearDuplicate
	}
	winnerOf := func(i uint32) uint32 {
		l := rows.at(i).leader
		if b := rows.at(l).best; b != 0 {
			return b - 1
		}
		return l
	}
	// The funnel shows the first few dropped rows of each reason with the id
	// of the row kept in their place; find them now so the replay can note
	// those ids as it passes them.
	sampled := map[uint32]bool{}
	wanted := map[uint32]string{}
	perReason := map[string]int{}
	for i := uint32(0); i < n && len(sampled) < 2*maxSamples; i++ {
		if w := winnerOf(i); w != i {
			if r := reasonOf(i, w); perReason[r] < maxSamples {
				perReason[r]++
				sampled[i] = true
				wanted[w] = ""
			}
		}
	}
	type pending struct {
		ex     *Example
		reason string
		winner uint32
	}
	var later []pending

	dec := &rowReader{r: bufio.NewReaderSize(&readOnce{f: rowFile}, 1<<20)}
	for i := uint32(0); i < n; i++ {
		ex, err := dec.next()
		if err != nil {
			return fmt.Errorf("dedupe spool: row %d: %w", i, err)
		}
		if _, ok := wanted[i]; ok {
			wanted[i] = ex.Meta.ID
		}
		w := winnerOf(i)
		if w == i {
			if err := out.Keep(ctx, ex); err != nil {
				return err
			}
			continue
		}
		switch {
		case !sampled[i]:
			out.drop(ex, reasonOf(i, w), "", false)
		case w < i:
			out.drop(ex, reasonOf(i, w), "kept "+wanted[w], true)
		default:
			later = append(later, pending{ex, reasonOf(i, w), w})
		}
	}
	for _, p := range later {
		out.drop(p.ex, p.reason, "kept "+wanted[p.winner], true)
	}
	return nil
}
