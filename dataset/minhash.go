package dataset

import (
	"math"
	"slices"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// normalizer reads text as its words: lowercased runs of letters and digits,
// with everything else a break. It keeps only their hashes, reusing its
// buffers between rows.
type normalizer struct {
	words []uint64 // a hash of each word
	sh    []uint64 // shingle hashes
}

// normalize fills n.words with the word hashes of s and returns the
// exact-duplicate hash (never 0): two texts have the same one when they have
// the same words, whatever the case, punctuation and spacing.
func (n *normalizer) normalize(s string) uint64 {
	n.reset()
	n.feed(s)
	return n.finish()
}

// normalizeExample normalises the text of ex's messages selected by field
// (see Example.Text) without building the joined string.
func (n *normalizer) normalizeExample(ex *Example, field string) uint64 {
	n.reset()
	last := len(ex.Messages) - 1
	for i := range ex.Messages {
		m := &ex.Messages[i]
		answer := i == last && m.Role == "assistant"
		switch field {
		case "prompt":
			if answer {
				continue
			}
		case "answer":
			if !answer {
				continue
			}
		case "dialogue", "":
			if m.Role == "system" || m.Role == "developer" {
				continue
			}
		}
		if m.Content.Parts == nil {
			n.feed(m.Content.Text)
		} else {
			for _, p := range m.Content.Parts {
				if p.Type == "text" {
					n.feed(p.Text)
				}
			}
		}
		for _, c := range m.ToolCalls {
			n.feed(c.Function.Name)
			n.feed(c.Function.Arguments)
		}
	}
	return n.finish()
}

func (n *normalizer) reset() {
	n.words = n.words[:0]
}

// asciiFold maps an ASCII letter or digit to its lower case and anything
// else to 0 (a word break).
var asciiFold = func() (t [utf8.RuneSelf]byte) {
	for c := range t {
		switch {
		case 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
			t[c] = byte(c)
		case 'A' <= c && c <= 'Z':
			t[c] = byte(c + 'a' - 'A')
		}
	}
	return t
}()

// feed adds text; the end of each piece ends a word.
//
// Each word's hash is built as its folded bytes are read: they are shifted
// into acc, which is folded into h every 8 bytes (no byte of a word is 0, so
// a full acc is one whose top byte is set) and mixed at the word's end. No
// normalised text is built.
func (n *normalizer) feed(s string) {
	const k = 0x9E3779B97F4A7C15
	words := n.words
	var acc, h uint64
	in := false // inside a word
	var enc [utf8.UTFMax]byte
	for i := 0; i < len(s); {
		var bs []byte // the folded bytes of the next character; nil for a break
		if c := s[i]; c < utf8.RuneSelf {
			i++
			f := asciiFold[c]
			if f != 0 && in { // the common case: a word goes on
				if acc = acc<<8 | uint64(f); acc>>56 != 0 {
					h, acc = (h^acc)*k, 0
				}
				continue
			}
			if f != 0 {
				enc[0] = f
				bs = enc[:1]
			}
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				bs = utf8.AppendRune(enc[:0], unicode.ToLower(r))
			}
		}
		if bs == nil {
			if in {
				words, in = append(words, mix64(h^acc)), false
			}
			continue
		}
		if !in {
			in, acc, h = true, 0, k
		}
		for _, c := range bs {
			if acc = acc<<8 | uint64(c); acc>>56 != 0 {
				h, acc = (h^acc)*k, 0
			}
		}
	}
	if in {
		words = append(words, mix64(h^acc))
	}
	n.words = words
}

// finish hashes the word sequence.
func (n *normalizer) finish() uint64 {
	h := xxhash.Sum64(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(n.words))), 8*len(n.words)))
	if h == 0 {
		h = 1
	}
	return h
}

// shingles returns the hashes of the k-word shingles of the last normalised
// text (one shingle of all words when there are fewer than k), unsorted and
// possibly repeated: MinHash does not care, and setOf makes a set of them
// for the rare exact comparison.
func (n *normalizer) shingles(k int) []uint64 {
	n.sh = n.sh[:0]
	w := n.words
	if len(w) == 0 {
		return n.sh
	}
	if len(w) < k {
		k = len(w)
	}
	for i := 0; i+k <= len(w); i++ {
		h := w[i]
		for j := 1; j < k; j++ {
			h = h*0x9E3779B97F4A7C15 + w[i+j]
		}
		n.sh = append(n.sh, mix64(h))
	}
	return n.sh
}

// setOf sorts sh and removes repeats, in place.
func setOf(sh []uint64) []uint64 {
	if len(sh) == 0 {
		return sh
	}
	slices.Sort(sh)
	out := sh[:1]
	for _, x := range sh[1:] {
		if x != out[len(out)-1] {
			out = append(out, x)
		}
	}
	return out
}

// mix64 is splitmix64's finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// minHash computes a one-permutation MinHash signature (Li, Owen, Zhang
// 2012) with rotation densification (Shrivastava, Li 2014) into sig: each
// shingle hash lands in one of len(sig) bins by its high bits, each bin keeps
// its smallest low bits, and empty bins borrow from the next full one. It
// costs O(shingles + bins) instead of O(shingles × bins) for k hash functions,
// with the same collision probability: P[sig_a[i] == sig_b[i]] ≈ Jaccard(a, b).
func minHash(sh []uint64, sig []uint32, full []bool) {
	k := uint64(len(sig))
	for i := range sig {
		sig[i], full[i] = math.MaxUint32, false
	}
	for _, x := range sh {
		b := ((x >> 32) * k) >> 32
		if v := uint32(x); !full[b] || v < sig[b] {
			sig[b], full[b] = v, true
		}
	}
	if len(sh) == 0 {
		return
	}
	for i := range sig {
		if full[i] {
			continue
		}
		for d := 1; d < len(sig); d++ {
			if j := (i + d) % len(sig); full[j] {
				sig[i] = sig[j] + uint32(d)*0x9E3779B9 // offset by distance so borrowed bins differ
				break
			}
		}
	}
}

// lshParams chooses bands × rows for a Jaccard threshold t: the fewest bands
// (each band costs one index entry per row) such that a pair at similarity t
// becomes a candidate with probability ≥ 0.97, among row counts for which a
// pair at t-0.3 becomes one with probability ≤ 0.2 (candidates are verified
// by exact Jaccard over shingles, so a false candidate costs a disk read, not
// a wrong answer). At t = 0.8 this gives 12 bands × 6 rows.
func lshParams(t float64) (bands, rows int) {
	best := 0
	for r := 2; r <= 16; r++ {
		pr := math.Pow(t, float64(r))
		b := int(math.Ceil(math.Log(1-0.97) / math.Log(1-pr)))
		if b < 1 {
			b = 1
		}
		if b*r > 256 {
			continue
		}
		low := math.Max(t-0.3, 0.05)
		fp := 1 - math.Pow(1-math.Pow(low, float64(r)), float64(b))
		if fp > 0.2 {
			continue
		}
		if best == 0 || b < best {
			best, bands, rows = b, b, r
		}
	}
	if best == 0 {
		return 16, 8
	}
	return bands, rows
}

// candidateProb is the probability that a pair at Jaccard s shares a band.
func candidateProb(s float64, bands, rows int) float64 {
	return 1 - math.Pow(1-math.Pow(s, float64(rows)), float64(bands))
}

// jaccard returns |a∩b| / |a∪b| of two sets made by setOf.
func jaccard(a, b []uint64) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	i, j, inter := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			inter++
			i++
			j++
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
}
