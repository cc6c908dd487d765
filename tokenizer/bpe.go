package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpe is the BPE model of tokenizer.json.
type bpe struct {
	vocab        map[string]int
	idToToken    []string
	merges       map[uint64]merge // (left id, right id) → merge
	unk          int              // -1 when the model has no unk token
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix
	byteIDs      [256]int

	mu    sync.RWMutex
	cache map[string][]int
}

type merge struct {
	rank int32
	id   int32
}

// Words at most this long are cached; the cache is cleared when full.
const (
	cacheWordBytes = 256
	cacheEntries   = 200_000
)

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func parseModel(raw json.RawMessage) (*bpe, error) {
	var m struct {
		Type         string            `json:"type"`
		Vocab        json.RawMessage   `json:"vocab"`
		Merges       []json.RawMessage `json:"merges"`
		UnkToken     *string           `json:"unk_token"`
		FuseUnk      bool              `json:"fuse_unk"`
		ByteFallback bool              `json:"byte_fallback"`
		IgnoreMerges bool              `json:"ignore_merges"`
		Prefix       *string           `json:"continuing_subword_prefix"`
		Suffix       *string           `json:"end_of_word_suffix"`
		Dropout      *float64          `json:"dropout"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("tokenizer.json: parse model: %w", err)
	}
	if m.Type == "" && len(m.Merges) > 0 {
		m.Type = "BPE"
	}
	if m.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer.json: model type %q is not supported (Foundry supports BPE: byte-level BPE as in Llama 3/Qwen and SentencePiece-style BPE with byte fallback as in Llama 2/Mistral/Gemma; WordPiece and Unigram models are not supported)", m.Type)
	}
	if m.Dropout != nil && *m.Dropout > 0 {
		return nil, fmt.Errorf("tokenizer.json: BPE dropout %g is not supported (it is a training-time option; set it to null)", *m.Dropout)
	}
	b := &bpe{unk: -1, fuseUnk: m.FuseUnk, byteFallback: m.ByteFallback, ignoreMerges: m.IgnoreMerges, cache: map[string][]int{}}
	if m.Prefix != nil {
		b.prefix = *m.Prefix
	}
	if m.Suffix != nil {
		b.suffix = *m.Suffix
	}
	if err := json.Unmarshal(m.Vocab, &b.vocab); err != nil {
		return nil, fmt.Errorf("tokenizer.json: model vocab is not a {token: id} object: %w", err)
	}
	maxID := -1
	for _, id := range b.vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer.json: model vocab has negative id %d", id)
		}
		maxID = max(maxID, id)
	}
	b.idToToken = make([]string, maxID+1)
	for s, id := range b.vocab {
		b.idToToken[id] = s
	}
	if m.UnkToken != nil {
		id, ok := b.vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("tokenizer.json: unk_token %q is not in the vocab", *m.UnkToken)
		}
		b.unk = id
	}
	for i := range b.byteIDs {
		b.byteIDs[i] = -1
		if id, ok := b.vocab[fmt.Sprintf("<0x%02X>", i)]; ok {
			b.byteIDs[i] = id
		}
	}
	b.merges = make(map[uint64]merge, len(m.Merges))
	for rank, r := range m.Merges {
		var left, right string
		var s string
		if json.Unmarshal(r, &s) == nil {
			var ok bool
			left, right, ok = strings.Cut(s, " ")
			if !ok || strings.Contains(right, " ") {
				return nil, fmt.Errorf("tokenizer.json: merge %d %q is not two tokens separated by one space", rank, s)
			}
		} else {
			var pair []string
			if err := json.Unmarshal(r, &pair); err != nil || len(pair) != 2 {
				return nil, fmt.Errorf("tokenizer.json: merge %d is neither \"a b\" nor [\"a\", \"b\"]: %s", rank, r)
			}
			left, right = pair[0], pair[1]
		}
		a, okA := b.vocab[left]
		c, okC := b.vocab[right]
		merged := left + right
		if len(b.prefix) > 0 && strings.HasPrefix(right, b.prefix) {
			merged = left + right[len(b.prefix):]
		}
		id, okID := b.vocab[merged]
		if !okA || !okC || !okID {
			return nil, fmt.Errorf("tokenizer.json: merge %d (%q, %q) uses a token missing from the vocab (corrupt file?)", rank, left, right)
		}
		k := pairKey(a, c)
		if _, dup := b.merges[k]; !dup {
			b.merges[k] = merge{rank: int32(rank), id: int32(id)}
		}
	}
	return b, nil
}

// tokenize appends the ids of one pre-tokenized word to ids.
func (b *bpe) tokenize(ids []int, word string) []int {
	if word == "" {
		return ids
	}
	if b.ignoreMerges {
		if id, ok := b.vocab[word]; ok {
			return append(ids, id)
		}
	}
	cacheable := len(word) <= cacheWordBytes
	if cacheable {
		b.mu.RLock()
		hit, ok := b.cache[word]
		b.mu.RUnlock()
		if ok {
			return append(ids, hit...)
		}
	}
	out := b.mergeWord(word)
	if cacheable {
		b.mu.Lock()
		if len(b.cache) >= cacheEntries {
			clear(b.cache)
		}
		b.cache[word] = out
		b.mu.Unlock()
	}
	return append(ids, out...)
}

type symbol struct {
	id         int
	prev, next int
	gone       bool
}

type mergeCand struct {
	rank, pos int
	id        int
}

// mergeHeap is a binary min-heap by (rank, pos), typed to avoid
// container/heap's boxing.
type mergeHeap []mergeCand

func (h mergeHeap) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h mergeHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h *mergeHeap) push(c mergeCand) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *mergeHeap) pop() mergeCand {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	*h = s[:last]
	h.down(0)
	return top
}

// mergeWord splits word into its initial symbols and applies merges lowest
// rank first (leftmost on ties), as the Rust implementation does: a heap of
// candidate pairs over a linked list of symbols, O(n log n).
func (b *bpe) mergeWord(word string) []int {
	syms := make([]symbol, 0, len(word))
	add := func(id int) {
		syms = append(syms, symbol{id: id, prev: len(syms) - 1, next: len(syms) + 1})
	}
	unkRun := false
	for i := 0; i < len(word); {
		_, size := utf8.DecodeRuneInString(word[i:])
		s := word[i : i+size]
		if b.prefix != "" && i > 0 {
			s = b.prefix + s
		}
		if b.suffix != "" && i+size == len(word) {
			s += b.suffix
		}
		i += size
		if id, ok := b.vocab[s]; ok {
			add(id)
			unkRun = false
			continue
		}
		if b.byteFallback {
			raw := word[i-size : i]
			ok := true
			for j := 0; j < len(raw); j++ {
				if b.byteIDs[raw[j]] < 0 {
					ok = false
				}
			}
			if ok {
				for j := 0; j < len(raw); j++ {
					add(b.byteIDs[raw[j]])
				}
				unkRun = false
				continue
			}
		}
		if b.unk >= 0 {
			if b.fuseUnk && unkRun {
				continue
			}
			add(b.unk)
			unkRun = true
		}
	}
	if len(syms) == 0 {
		return nil
	}
	syms[len(syms)-1].next = -1

	h := make(mergeHeap, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := b.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			h = append(h, mergeCand{rank: int(m.rank), pos: i, id: int(m.id)})
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	for len(h) > 0 {
		top := h.pop()
		cur := &syms[top.pos]
		if cur.gone || cur.next < 0 {
			continue
		}
		nextPos := cur.next
		right := syms[nextPos]
		if m, ok := b.merges[pairKey(cur.id, right.id)]; !ok || int(m.id) != top.id {
			continue
		}
		cur.id = top.id
		cur.next = right.next
		syms[nextPos].gone = true
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if m, ok := b.merges[pairKey(syms[cur.prev].id, cur.id)]; ok {
				h.push(mergeCand{rank: int(m.rank), pos: cur.prev, id: int(m.id)})
			}
		}
		if cur.next >= 0 {
			if m, ok := b.merges[pairKey(cur.id, syms[cur.next].id)]; ok {
				h.push(mergeCand{rank: int(m.rank), pos: top.pos, id: int(m.id)})
			}
		}
	}
	out := make([]int, 0, len(syms))
	for i := 0; i >= 0 && i < len(syms); i = syms[i].next {
		out = append(out, syms[i].id)
	}
	return out
}
