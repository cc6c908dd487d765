// Package safetensors reads and writes the Hugging Face safetensors format:
// an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the raw little-endian tensor bytes.
//
// Files are memory-mapped where the platform allows it, so opening a
// multi-gigabyte checkpoint costs nothing until a tensor is read. Sharded
// checkpoints (model.safetensors.index.json) open as one Set.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

// DType is a safetensors dtype name as it appears in the header ("F32", "BF16", ...).
type DType string

// The dtypes Foundry reads and writes.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	F64  DType = "F64"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

// Size is the number of bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, Bool:
		return 1
	}
	return 0
}

// maxHeaderSize bounds the JSON header, as the reference implementation does (100 MB).
const maxHeaderSize = 100 << 20

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	// Begin and End are byte offsets into the data section (after the header).
	Begin, End int64
}

// NumElements is the product of Shape (1 for a scalar).
func (t TensorInfo) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is one opened .safetensors file. Its methods are safe for concurrent use;
// slices returned by Raw are valid until Close.
type File struct {
	path     string
	data     []byte // the whole file (mapped or read)
	unmap    func() error
	dataOff  int64
	tensors  map[string]TensorInfo
	names    []string
	Metadata map[string]string
}

type headerEntry struct {
	DType   DType   `json:"dtype"`
	Shape   []int   `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// Open maps path and validates its header: every tensor's byte range must lie
// inside the file and match its dtype and shape.
func Open(path string) (*File, error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("open safetensors %s: %w", path, err)
	}
	f, err := parse(path, data)
	if err != nil {
		_ = unmap()
		return nil, err
	}
	f.unmap = unmap
	return f, nil
}

// parse validates the header of a complete safetensors file held in data.
func parse(path string, data []byte) (*File, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("read safetensors %s: %s (is the file complete? re-download it)", path, fmt.Sprintf(format, args...))
	}
	if len(data) < 8 {
		return nil, bad("file is %d bytes, shorter than the 8-byte header length", len(data))
	}
	hlen := binary.LittleEndian.Uint64(data[:8])
	if hlen > maxHeaderSize || int64(hlen) > int64(len(data))-8 {
		return nil, bad("header length %d does not fit in a %d-byte file", hlen, len(data))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+hlen], &raw); err != nil {
		return nil, bad("header is not valid JSON: %v", err)
	}
	f := &File{path: path, data: data, dataOff: 8 + int64(hlen), tensors: map[string]TensorInfo{}}
	dataLen := int64(len(data)) - f.dataOff
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, bad("__metadata__ must map strings to strings: %v", err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, bad("tensor %q: %v", name, err)
		}
		size := e.DType.Size()
		if size == 0 {
			return nil, bad("tensor %q has unsupported dtype %q", name, e.DType)
		}
		if len(e.Offsets) != 2 {
			return nil, bad("tensor %q: data_offsets must have 2 entries, has %d", name, len(e.Offsets))
		}
		info := TensorInfo{Name: name, DType: e.DType, Shape: e.Shape, Begin: e.Offsets[0], End: e.Offsets[1]}
		for _, d := range e.Shape {
			if d < 0 {
				return nil, bad("tensor %q has negative dimension in shape %v", name, e.Shape)
			}
		}
		if info.Begin < 0 || info.End < info.Begin || info.End > dataLen {
			return nil, bad("tensor %q byte range [%d,%d) lies outside the %d-byte data section", name, info.Begin, info.End, dataLen)
		}
		if want := int64(info.NumElements()) * int64(size); info.End-info.Begin != want {
			return nil, bad("tensor %q: %s%v needs %d bytes, header gives %d", name, e.DType, e.Shape, want, info.End-info.Begin)
		}
		f.tensors[name] = info
		f.names = append(f.names, name)
	}
	sort.Strings(f.names)
	return f, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Names lists the tensor names, sorted.
func (f *File) Names() []string { return f.names }

// Info describes the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	t, ok := f.tensors[name]
	return t, ok
}

// Raw returns the tensor's little-endian bytes, without copying.
func (f *File) Raw(name string) (TensorInfo, []byte, error) {
	t, ok := f.tensors[name]
	if !ok {
		return t, nil, fmt.Errorf("safetensors %s has no tensor %q", f.path, name)
	}
	return t, f.data[f.dataOff+t.Begin : f.dataOff+t.End], nil
}

// Float32 returns the tensor converted to float32 (from F32, F16, BF16 or F64).
func (f *File) Float32(name string) ([]float32, []int, error) {
	t, b, err := f.Raw(name)
	if err != nil {
		return nil, nil, err
	}
	out, err := ToFloat32(t.DType, b)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors %s tensor %q: %w", f.path, name, err)
	}
	return out, t.Shape, nil
}

// Close unmaps the file; slices from Raw are invalid afterwards.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	err := f.unmap()
	f.unmap, f.data = nil, nil
	return err
}

// mapFile memory-maps path read-only, falling back to reading it whole.
func mapFile(path string) ([]byte, func() error, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() == 0 {
		return nil, func() error { return nil }, nil
	}
	if data, unmap, err := mmap(fh, st.Size()); err == nil {
		return data, unmap, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}
