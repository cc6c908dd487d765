package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Tensor is one tensor to write.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte // little-endian, len = elements × DType.Size()
}

// Float32Tensor encodes v as dtype d (F32, F16 or BF16).
func Float32Tensor(name string, d DType, shape []int, v []float32) (Tensor, error) {
	b, err := FromFloat32(d, v)
	if err != nil {
		return Tensor{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	return Tensor{Name: name, DType: d, Shape: shape, Data: b}, nil
}

// Write writes tensors to path deterministically (tensors sorted by name, keys
// in a fixed order, header padded to 8 bytes) through a temporary file renamed
// into place, so readers never see a partial file.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	ts := append([]Tensor(nil), tensors...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	comma := func() {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
	}
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata) // encoding/json sorts map keys
		if err != nil {
			return fmt.Errorf("write safetensors %s: metadata: %w", path, err)
		}
		comma()
		hdr.WriteString(`"__metadata__":`)
		hdr.Write(m)
	}
	var off int64
	for i, t := range ts {
		if i > 0 && ts[i-1].Name == t.Name {
			return fmt.Errorf("write safetensors %s: tensor %q appears twice", path, t.Name)
		}
		n := int64(1)
		for _, d := range t.Shape {
			n *= int64(d)
		}
		if t.DType.Size() == 0 {
			return fmt.Errorf("write safetensors %s: tensor %q has unsupported dtype %q", path, t.Name, t.DType)
		}
		if want := n * int64(t.DType.Size()); int64(len(t.Data)) != want {
			return fmt.Errorf("write safetensors %s: tensor %q %s%v needs %d bytes, got %d", path, t.Name, t.DType, t.Shape, want, len(t.Data))
		}
		name, _ := json.Marshal(t.Name)
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		sh, _ := json.Marshal(shape)
		comma()
		fmt.Fprintf(&hdr, `%s:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, name, t.DType, sh, off, off+int64(len(t.Data)))
		off += int64(len(t.Data))
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write safetensors %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(hdr.Len()))
	werr := func() error {
		if _, err := tmp.Write(lenBuf[:]); err != nil {
			return err
		}
		if _, err := tmp.Write(hdr.Bytes()); err != nil {
			return err
		}
		for _, t := range ts {
			if _, err := tmp.Write(t.Data); err != nil {
				return err
			}
		}
		return tmp.Sync()
	}()
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		return fmt.Errorf("write safetensors %s: %w", path, werr)
	}
	return nil
}
