package dataset

import (
	"encoding/binary"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// Dedupe's indexes are open-addressing tables with linear probing, kept off
// the Go heap in files (see offHeap), indexed by multiply-shift so they can grow by
// 1.5x (not 2x) and stay between 57% and 85% full: about 1.4 slots per entry.
const (
	maxLoadNum, maxLoadDen = 85, 100
	growNum, growDen       = 3, 2
)

func slotOf(h uint64, n int) int {
	hi, _ := bits.Mul64(h, uint64(n))
	return int(hi)
}

// exactIndex maps a 64-bit hash to a row: 12 bytes a slot.
type exactIndex struct {
	keys        []uint64 // 0 = empty
	vals        []uint32
	n           int
	gen         int // tables allocated so far: a slotRef of an older one is stale
	freeK, free func()
	dir         string
}

// slotRef is where a key that find did not find would be placed, so that
// fill can place it without probing the (large, randomly accessed) table
// again. It stays valid until the table grows.
type slotRef struct{ i, gen int }

func newExactIndex(dir string) *exactIndex {
	x := &exactIndex{dir: dir}
	x.alloc(1024)
	return x
}

func (x *exactIndex) alloc(n int) {
	x.keys, x.freeK = offHeap[uint64](x.dir, n)
	x.vals, x.free = offHeap[uint32](x.dir, n)
	x.gen++
}

func (x *exactIndex) release() {
	x.freeK()
	x.free()
	x.keys, x.vals = nil, nil
}

func (x *exactIndex) get(k uint64) (uint32, bool) {
	v, ok, _ := x.find(k)
	return v, ok
}

// find returns k's row, or where k would be placed.
func (x *exactIndex) find(k uint64) (uint32, bool, slotRef) {
	n := len(x.keys)
	for i := slotOf(mix64(k), n); ; i++ {
		if i == n {
			i = 0
		}
		switch x.keys[i] {
		case k:
			return x.vals[i], true, slotRef{}
		case 0:
			return 0, false, slotRef{i, x.gen}
		}
	}
}

// fill is put(k, v) for a k that find did not find at at, with no other
// key put since.
func (x *exactIndex) fill(at slotRef, k uint64, v uint32) {
	if at.gen != x.gen || (x.n+1)*maxLoadDen > len(x.keys)*maxLoadNum {
		x.put(k, v)
		return
	}
	x.keys[at.i], x.vals[at.i] = k, v
	x.n++
}

// put sets k's row unless k is present.
func (x *exactIndex) put(k uint64, v uint32) {
	if (x.n+1)*maxLoadDen > len(x.keys)*maxLoadNum {
		oldK, oldV, freeK, freeV := x.keys, x.vals, x.freeK, x.free
		x.alloc(len(oldK) * growNum / growDen)
		x.n = 0
		for i, ok := range oldK {
			if ok != 0 {
				x.put(ok, oldV[i])
			}
		}
		freeK()
		freeV()
	}
	n := len(x.keys)
	for i := slotOf(mix64(k), n); ; i++ {
		if i == n {
			i = 0
		}
		switch x.keys[i] {
		case k:
			return
		case 0:
			x.keys[i], x.vals[i] = k, v
			x.n++
			return
		}
	}
}

// bandIndex maps LSH band keys to the first row that had them: one uint64 a
// slot (32 bits of key, 32 bits of row+1). Two band keys that agree in the
// 32 stored bits only make an extra candidate, which the exact Jaccard check
// then rejects.
type bandIndex struct {
	slots []uint64
	n     int
	gen   int // tables allocated so far
	free  func()
	dir   string
}

func newBandIndex(dir string) *bandIndex {
	x := &bandIndex{dir: dir}
	x.slots, x.free = offHeap[uint64](dir, 4096)
	return x
}

func (x *bandIndex) release() {
	x.free()
	x.slots = nil
}

func (x *bandIndex) get(k uint64) (uint32, bool) {
	row, ok, _ := x.find(k)
	return row, ok
}

// find returns the row stored under k's tag, or where k would be placed.
func (x *bandIndex) find(k uint64) (uint32, bool, slotRef) {
	n := len(x.slots)
	tag := k >> 32
	for i := slotOf(mix64(tag), n); ; i++ {
		if i == n {
			i = 0
		}
		s := x.slots[i]
		if s == 0 {
			return 0, false, slotRef{i, x.gen}
		}
		if s>>32 == tag {
			return uint32(s) - 1, true, slotRef{}
		}
	}
}

// fill is putIfAbsent(k, row) for a k that find did not find at at. Other
// keys may have been put since: where one took the slot, or the table grew,
// it probes again (a key put since with k's tag is then found there).
func (x *bandIndex) fill(at slotRef, k uint64, row uint32) {
	if at.gen != x.gen || x.slots[at.i] != 0 || (x.n+1)*maxLoadDen > len(x.slots)*maxLoadNum {
		x.putIfAbsent(k, row)
		return
	}
	x.slots[at.i] = k>>32<<32 | uint64(row+1)
	x.n++
}

func (x *bandIndex) putIfAbsent(k uint64, row uint32) {
	if (x.n+1)*maxLoadDen > len(x.slots)*maxLoadNum {
		old, free := x.slots, x.free
		x.slots, x.free = offHeap[uint64](x.dir, len(old)*growNum/growDen)
		x.n = 0
		x.gen++
		for _, s := range old {
			if s != 0 {
				x.insert(s)
			}
		}
		free()
	}
	x.insert(k>>32<<32 | uint64(row+1))
}

// insert places slot value s (tag<<32 | row+1) by its tag.
func (x *bandIndex) insert(s uint64) {
	n := len(x.slots)
	for i := slotOf(mix64(s>>32), n); ; i++ {
		if i == n {
			i = 0
		}
		switch {
		case x.slots[i] == 0:
			x.slots[i] = s
			x.n++
			return
		case x.slots[i]>>32 == s>>32:
			return
		}
	}
}

// rowInfo is what dedupe keeps per row: 32 bytes.
type rowInfo struct {
	at     int64   // where the row is in the row spool
	when   uint32  // created_at, Unix seconds
	leader uint32  // the row that started its cluster (itself for a leader)
	score  float32 // feedback score, NaN when none
	judge  float32 // judge score, NaN when none
	best   uint32  // for a leader with duplicates, its cluster's best row + 1; else 0
	kind   uint8
}

// rowTable is a growable array of rowInfo in off-heap chunks (no copying
// when it grows).
type rowTable struct {
	chunks [][]rowInfo
	frees  []func()
	n      int
	dir    string
}

const rowChunk = 1 << 16

func (t *rowTable) add() *rowInfo {
	if t.n%rowChunk == 0 {
		c, free := offHeap[rowInfo](t.dir, rowChunk)
		t.chunks, t.frees = append(t.chunks, c), append(t.frees, free)
	}
	t.n++
	return t.at(uint32(t.n - 1))
}

func (t *rowTable) at(i uint32) *rowInfo { return &t.chunks[i/rowChunk][i%rowChunk] }

func (t *rowTable) release() {
	for _, f := range t.frees {
		f()
	}
	t.chunks, t.frees = nil, nil
}

// bandKey hashes band b's rows of a signature into a 64-bit key.
func bandKey(b int, rows []uint32) uint64 {
	var buf [4 * 32]byte
	p := buf[:0]
	p = binary.LittleEndian.AppendUint32(p, uint32(b))
	for _, r := range rows {
		p = binary.LittleEndian.AppendUint32(p, r)
	}
	return xxhash.Sum64(p)
}
