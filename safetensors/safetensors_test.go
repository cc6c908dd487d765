package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTensors(t *testing.T, path string) {
	t.Helper()
	a, _ := Float32Tensor("b.weight", F32, []int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	b, _ := Float32Tensor("a.weight", BF16, []int{2}, []float32{1.5, -2})
	c, _ := Float32Tensor("c", F16, []int{}, []float32{0.25})
	if err := Write(path, []Tensor{a, b, c}, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "x.safetensors"), filepath.Join(dir, "y.safetensors")
	writeTensors(t, p1)
	writeTensors(t, p2)
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Fatal("Write is not deterministic")
	}
	if hl := binary.LittleEndian.Uint64(b1); hl%8 != 0 {
		t.Errorf("header length %d not 8-aligned", hl)
	}
	f, err := Open(p1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := strings.Join(f.Names(), ","); got != "a.weight,b.weight,c" {
		t.Errorf("names = %s", got)
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata = %v", f.Metadata)
	}
	for _, tc := range []struct {
		name  string
		want  []float32
		shape []int
	}{
		{"b.weight", []float32{1, 2, 3, 4, 5, 6}, []int{2, 3}},
		{"a.weight", []float32{1.5, -2}, []int{2}},
		{"c", []float32{0.25}, []int{}},
	} {
		got, shape, err := f.Float32(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if len(shape) != len(tc.shape) || len(got) != len(tc.want) {
			t.Fatalf("%s: shape %v values %v", tc.name, shape, got)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s[%d] = %v, want %v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
	if _, _, err := f.Float32("missing"); err == nil {
		t.Error("missing tensor: no error")
	}
}

func TestCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	writeTensors(t, good)
	data, _ := os.ReadFile(good)
	hdr := func(json string) []byte {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(len(json)))
		return append(b[:], json...)
	}
	for _, tc := range []struct {
		name, wantErr string
		data          []byte
	}{
		{"empty", "shorter than the 8-byte header", nil},
		{"truncated", "outside the", data[:len(data)-3]},
		{"huge header length", "does not fit", append([]byte{0xff, 0xff, 0, 0, 0, 0, 0, 0}, data[8:]...)},
		{"bad json", "not valid JSON", hdr("{nope")},
		{"bad dtype", "unsupported dtype", hdr(`{"x":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`)},
		{"size mismatch", "needs 8 bytes", append(hdr(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`), 0, 0, 0, 0)},
		{"offsets", "data_offsets must have 2", hdr(`{"x":{"dtype":"F32","shape":[0],"data_offsets":[0]}}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".safetensors")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(p)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestShardedSet(t *testing.T) {
	dir := t.TempDir()
	a, _ := Float32Tensor("layer.0", F32, []int{1}, []float32{7})
	b, _ := Float32Tensor("layer.1", F32, []int{1}, []float32{8})
	if err := Write(filepath.Join(dir, "model-00001-of-00002.safetensors"), []Tensor{a}, nil); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "model-00002-of-00002.safetensors"), []Tensor{b}, nil); err != nil {
		t.Fatal(err)
	}
	idx := `{"metadata":{},"weight_map":{"layer.0":"model-00001-of-00002.safetensors","layer.1":"model-00002-of-00002.safetensors"}}`
	os.WriteFile(filepath.Join(dir, IndexFile), []byte(idx), 0o644)
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, _, err := s.Float32("layer.1")
	if err != nil || v[0] != 8 {
		t.Fatalf("layer.1 = %v, %v", v, err)
	}
	if len(s.Names()) != 2 {
		t.Errorf("names = %v", s.Names())
	}
	bad := `{"weight_map":{"layer.1":"model-00001-of-00002.safetensors"}}`
	os.WriteFile(filepath.Join(dir, IndexFile), []byte(bad), 0o644)
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), "does not hold it") {
		t.Fatalf("wrong shard: err = %v", err)
	}
	if _, err := OpenDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no model.safetensors") {
		t.Fatalf("empty dir: err = %v", err)
	}
}

func TestConversions(t *testing.T) {
	for _, tc := range []struct {
		f    float32
		bf16 uint16
		f16  uint16
	}{
		{1, 0x3f80, 0x3c00},
		{-2, 0xc000, 0xc000},
		{0.1, 0x3dcd, 0x2e66},
		{65504, 0x4780, 0x7bff},
		{1e6, 0x4974, 0x7c00},
		{5.960464e-08, 0x3380, 0x0001}, // smallest f16 subnormal
		{float32(math.Inf(-1)), 0xff80, 0xfc00},
	} {
		if got := F32ToBF16(tc.f); got != tc.bf16 {
			t.Errorf("F32ToBF16(%v) = %#x, want %#x", tc.f, got, tc.bf16)
		}
		if got := F32ToF16(tc.f); got != tc.f16 {
			t.Errorf("F32ToF16(%v) = %#x, want %#x", tc.f, got, tc.f16)
		}
	}
	// Every f16 value round-trips through f32 exactly.
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if f != f { // NaN
			continue
		}
		if back := F32ToF16(f); back != uint16(h) {
			t.Fatalf("f16 %#x -> %v -> %#x", h, f, back)
		}
	}
	for h := 0; h < 1<<16; h++ {
		f := BF16ToF32(uint16(h))
		if f != f {
			continue
		}
		if back := F32ToBF16(f); back != uint16(h) {
			t.Fatalf("bf16 %#x -> %v -> %#x", h, f, back)
		}
	}
}
