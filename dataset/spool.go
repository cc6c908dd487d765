package dataset

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"

	"github.com/foundryhq/foundry/api"
)

// rowSpool writes examples to a temporary file in a compact binary form:
// rowReader reads them back in order, and at reads one back by the offset
// put returned. JSON through api's types costs ~25µs a row each way, most of
// dedupe's time; this costs ~1µs. The form is private to one build (written
// and read by the same binary), so it has no version: each row is a 4-byte
// little-endian length and the row.
type rowSpool struct {
	w       io.Writer   // where full buffers go
	r       io.ReaderAt // what at reads written rows back from (w's file)
	buf     []byte      // rows not yet written to w
	flushed int64       // bytes written to w
	row     []byte      // at's buffer
}

// spoolBuffer is how much rowSpool gathers before writing.
const spoolBuffer = 1 << 20

// put appends ex and returns its offset, for at.
func (s *rowSpool) put(ex *Example) (int64, error) {
	off := s.flushed + int64(len(s.buf))
	start := len(s.buf)
	b := append(s.buf, 0, 0, 0, 0) // the length, filled in below
	b = binary.AppendVarint(b, ex.Seq)
	b = appendStr(b, ex.Split)
	m := &ex.Meta
	for _, x := range []string{m.Source, m.ID, m.Route, m.Provider, m.Model, m.FinishReason, m.Refusal, m.Error} {
		b = appendStr(b, x)
	}
	b = binary.AppendVarint(b, int64(m.Line))
	b = binary.AppendUvarint(b, uint64(len(m.Tags)))
	for _, t := range m.Tags {
		b = appendStr(b, t)
	}
	keys := make([]string, 0, len(m.Metadata))
	for k := range m.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendStr(appendStr(b, k), m.Metadata[k])
	}
	for _, p := range []*float64{m.Score, m.JudgeScore} {
		if p != nil {
			b = append(b, 1)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(*p))
		} else {
			b = append(b, 0)
		}
	}
	var ns int64
	if !m.CreatedAt.IsZero() {
		ns = m.CreatedAt.UnixNano()
	}
	b = binary.AppendVarint(b, ns)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(m.Weight))

	b = binary.AppendUvarint(b, uint64(len(ex.Messages)))
	for i := range ex.Messages {
		msg := &ex.Messages[i]
		b = appendStr(b, msg.Role)
		switch {
		case msg.Content.Parts != nil:
			pj, err := json.Marshal(msg.Content.Parts)
			if err != nil {
				return 0, err
			}
			b = append(b, 2)
			b = appendBytes(b, pj)
		case msg.Content.IsNull():
			b = append(b, 0)
		default:
			b = append(b, 1)
			b = appendStr(b, msg.Content.Text)
		}
		b = appendStr(appendStr(b, msg.Name), msg.ToolCallID)
		b = binary.AppendUvarint(b, uint64(len(msg.ToolCalls)))
		for _, c := range msg.ToolCalls {
			b = appendStr(appendStr(appendStr(appendStr(b, c.ID), c.Type), c.Function.Name), c.Function.Arguments)
		}
	}
	if len(ex.Tools) > 0 {
		tj, err := json.Marshal(ex.Tools)
		if err != nil {
			return 0, err
		}
		b = appendBytes(b, tj)
	} else {
		b = appendBytes(b, nil)
	}
	switch {
	case ex.ParallelToolCalls == nil:
		b = append(b, 0)
	case *ex.ParallelToolCalls:
		b = append(b, 2)
	default:
		b = append(b, 1)
	}
	n := len(b) - start - 4
	if n > math.MaxUint32 {
		return 0, fmt.Errorf("row %s: %d bytes is too large to spool", ex.Meta.ID, n)
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(n))
	s.buf = b
	if len(s.buf) >= spoolBuffer {
		return off, s.flush()
	}
	return off, nil
}

// flush writes the gathered rows to w.
func (s *rowSpool) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	s.flushed += int64(len(s.buf))
	s.buf = s.buf[:0]
	return nil
}

// at reads back the row put stored at off, from memory while it has not
// been written yet.
func (s *rowSpool) at(off int64) (*Example, error) {
	if off >= s.flushed {
		b := s.buf[off-s.flushed:]
		if len(b) < 4 || uint64(len(b)-4) < uint64(binary.LittleEndian.Uint32(b)) {
			return nil, errSpool
		}
		return decodeRow(b[4 : 4+binary.LittleEndian.Uint32(b)])
	}
	if cap(s.row) < 4096 {
		s.row = make([]byte, 4096)
	}
	b := s.row[:cap(s.row)]
	k, err := s.r.ReadAt(b, off)
	if k < 4 {
		return nil, fmt.Errorf("read spooled row at %d: %w", off, cmp.Or(err, errSpool))
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n+4 > k {
		if cap(s.row) < n+4 {
			s.row = make([]byte, n+4)
		}
		b = s.row[:n+4]
		if _, err := s.r.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("read spooled row at %d: %w", off, err)
		}
	}
	return decodeRow(b[4 : 4+n])
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// rowReader reads what rowSpool wrote.
type rowReader struct {
	r   *bufio.Reader
	buf []byte
}

var errSpool = errors.New("spool row is damaged")

func (s *rowReader) next() (*Example, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(s.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if uint32(cap(s.buf)) < n {
		s.buf = make([]byte, n)
	}
	s.buf = s.buf[:n]
	if _, err := io.ReadFull(s.r, s.buf); err != nil {
		return nil, err
	}
	return decodeRow(s.buf)
}

// decodeRow decodes one row that rowSpool wrote.
func decodeRow(b []byte) (*Example, error) {
	// One string for the whole row: its strings are substrings of it, one
	// allocation instead of one per field.
	d := decoder{b: b, s: string(b)}
	ex := &Example{}
	ex.Seq = d.varint()
	ex.Split = d.str()
	m := &ex.Meta
	for _, p := range []*string{&m.Source, &m.ID, &m.Route, &m.Provider, &m.Model, &m.FinishReason, &m.Refusal, &m.Error} {
		*p = d.str()
	}
	m.Line = int(d.varint())
	if k := d.uvarint(); k > 0 {
		m.Tags = make([]string, k)
		for i := range m.Tags {
			m.Tags[i] = d.str()
		}
	}
	if k := d.uvarint(); k > 0 {
		m.Metadata = make(map[string]string, k)
		for range k {
			key := d.str()
			m.Metadata[key] = d.str()
		}
	}
	for _, p := range []**float64{&m.Score, &m.JudgeScore} {
		if d.byte() == 1 {
			v := math.Float64frombits(d.u64())
			*p = &v
		}
	}
	if ns := d.varint(); ns != 0 {
		m.CreatedAt = time.Unix(0, ns).UTC()
	}
	m.Weight = math.Float64frombits(d.u64())
	ex.Messages = make([]api.Message, d.uvarint())
	for i := range ex.Messages {
		msg := &ex.Messages[i]
		msg.Role = d.str()
		switch d.byte() {
		case 1:
			msg.Content = api.TextContent(d.str())
		case 2:
			var parts []api.ContentPart
			if err := json.Unmarshal(d.bytes(), &parts); err != nil {
				return nil, fmt.Errorf("%w: %v", errSpool, err)
			}
			msg.Content = api.PartsContent(parts...)
		}
		msg.Name, msg.ToolCallID = d.str(), d.str()
		if k := d.uvarint(); k > 0 {
			msg.ToolCalls = make([]api.ToolCall, k)
			for j := range msg.ToolCalls {
				c := &msg.ToolCalls[j]
				c.ID, c.Type, c.Function.Name, c.Function.Arguments = d.str(), d.str(), d.str(), d.str()
			}
		}
	}
	if tj := d.bytes(); len(tj) > 0 {
		if err := json.Unmarshal(tj, &ex.Tools); err != nil {
			return nil, fmt.Errorf("%w: %v", errSpool, err)
		}
	}
	switch d.byte() {
	case 1:
		ex.ParallelToolCalls = api.Ptr(false)
	case 2:
		ex.ParallelToolCalls = api.Ptr(true)
	}
	if d.bad {
		return nil, errSpool
	}
	return ex, nil
}

// decoder reads the binary form; a short buffer sets bad instead of panicking.
type decoder struct {
	b   []byte
	s   string // when set, the whole of what b started as, which str slices
	bad bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if uint64(len(d.b)) < n {
		d.bad, d.b = true, nil
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string {
	if d.s == "" {
		return string(d.bytes())
	}
	p := d.bytes()
	if len(p) == 0 {
		return ""
	}
	start := len(d.s) - len(d.b) - len(p) // d.b is what follows p
	return d.s[start : start+len(p)]
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.bad, d.b = true, nil
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// readOnce reads f from its current offset and discards what it has read
// every 32 MiB, so that a spool replayed once gives its disk space and page
// cache back as it goes (what the replay writes then reuses those pages).
type readOnce struct {
	f          *os.File
	every      int64 // 0: 32 MiB
	pos, freed int64
}

func (r *readOnce) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.pos += int64(n)
	if r.pos-r.freed >= cmp.Or(r.every, 32<<20) {
		discard(r.f, r.freed, r.pos-r.freed)
		r.freed = r.pos
	}
	return n, err
}
