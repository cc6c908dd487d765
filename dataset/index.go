package dataset

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/cespare/xxhash/v2"
)

// exactIndex maps a 64-bit hash to a row, by open addressing: 12 bytes a
// slot, at most 75% full.
type exactIndex struct {
	keys []uint64 // 0 = empty
	vals []uint32
	n    int
}

func newExactIndex() *exactIndex {
	return &exactIndex{keys: make([]uint64, 1024), vals: make([]uint32, 1024)}
}

func (x *exactIndex) get(k uint64) (uint32, bool) {
	mask := uint64(len(x.keys) - 1)
	for i := mix64(k) & mask; ; i = (i + 1) & mask {
		switch x.keys[i] {
		case k:
			return x.vals[i], true
		case 0:
			return 0, false
		}
	}
}

// put sets k's row unless k is present.
func (x *exactIndex) put(k uint64, v uint32) {
	if 4*(x.n+1) > 3*len(x.keys) {
		old, oldv := x.keys, x.vals
		x.keys, x.vals, x.n = make([]uint64, 2*len(old)), make([]uint32, 2*len(old)), 0
		for i, ok := range old {
			if ok != 0 {
				x.put(ok, oldv[i])
			}
		}
	}
	mask := uint64(len(x.keys) - 1)
	for i := mix64(k) & mask; ; i = (i + 1) & mask {
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
// slot (32 bits of key, 32 bits of row+1), at most 75% full. Two band keys
// that agree in the 32 stored bits only make an extra candidate, which the
// exact Jaccard check then rejects.
type bandIndex struct {
	slots []uint64
	n     int
}

func newBandIndex() *bandIndex { return &bandIndex{slots: make([]uint64, 4096)} }

func (x *bandIndex) get(k uint64) (uint32, bool) {
	mask := uint64(len(x.slots) - 1)
	tag := k >> 32
	for i := mix64(tag) & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return 0, false
		}
		if s>>32 == tag {
			return uint32(s) - 1, true
		}
	}
}

func (x *bandIndex) putIfAbsent(k uint64, row uint32) {
	if 4*(x.n+1) > 3*len(x.slots) {
		old := x.slots
		x.slots, x.n = make([]uint64, 2*len(old)), 0
		for _, s := range old {
			if s != 0 {
				// Re-derive the slot from the stored tag: rehash on tag only.
				x.insert(s)
			}
		}
	}
	x.insert(k>>32<<32 | uint64(row+1))
}

// insert places slot value s (tag<<32 | row+1) by its tag.
func (x *bandIndex) insert(s uint64) {
	mask := uint64(len(x.slots) - 1)
	for i := mix64(s>>32) & mask; ; i = (i + 1) & mask {
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

// spool appends shingle sets to a file and reads them back by offset,
// serving reads of the not yet flushed tail from memory.
type spool struct {
	f       *os.File
	buf     []byte
	flushed uint64 // bytes on disk
}

func (s *spool) write(sh []uint64) (uint64, error) {
	off := s.flushed + uint64(len(s.buf))
	for _, x := range sh {
		s.buf = binary.LittleEndian.AppendUint64(s.buf, x)
	}
	if len(s.buf) >= 1<<20 {
		if _, err := s.f.Write(s.buf); err != nil {
			return 0, err
		}
		s.flushed += uint64(len(s.buf))
		s.buf = s.buf[:0]
	}
	return off, nil
}

// read returns the shingles stored at at (offset<<24 | count) into dst.
func (s *spool) read(at uint64, dst []uint64) ([]uint64, error) {
	off, n := at>>24, int(at&(1<<24-1))
	raw := make([]byte, 8*n)
	if off >= s.flushed {
		copy(raw, s.buf[off-s.flushed:])
	} else if _, err := s.f.ReadAt(raw, int64(off)); err != nil && err != io.EOF {
		return dst, fmt.Errorf("read shingles at %d: %w", off, err)
	}
	dst = dst[:0]
	for i := 0; i < n; i++ {
		dst = append(dst, binary.LittleEndian.Uint64(raw[8*i:]))
	}
	return dst, nil
}
