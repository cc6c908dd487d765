package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// IndexFile is the name of the index of a sharded checkpoint.
const IndexFile = "model.safetensors.index.json"

// Set is a model's tensors across one or more files: a single
// model.safetensors, or the shards listed by model.safetensors.index.json.
type Set struct {
	files  []*File
	byName map[string]*File
}

// OpenDir opens dir/model.safetensors.index.json if present (every shard it
// names must exist and hold the tensors it claims), else dir/model.safetensors,
// else the only *.safetensors file in dir.
func OpenDir(dir string) (*Set, error) {
	idxPath := filepath.Join(dir, IndexFile)
	if b, err := os.ReadFile(idxPath); err == nil {
		return openIndex(dir, idxPath, b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open model weights: %w", err)
	}
	path := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(path); err != nil {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
		if len(matches) != 1 {
			return nil, fmt.Errorf("open model weights in %s: no model.safetensors or %s (found %d *.safetensors files); is this a Hugging Face model directory with safetensors weights?", dir, IndexFile, len(matches))
		}
		path = matches[0]
	}
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	return newSet([]*File{f}, nil)
}

func openIndex(dir, idxPath string, b []byte) (*Set, error) {
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("read %s: %w", idxPath, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("read %s: weight_map is empty", idxPath)
	}
	shards := map[string]*File{}
	var files []*File
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	names := make([]string, 0, len(idx.WeightMap))
	for n := range idx.WeightMap {
		names = append(names, n)
	}
	sort.Strings(names)
	owner := map[string]*File{}
	for _, name := range names {
		shard := idx.WeightMap[name]
		f, ok := shards[shard]
		if !ok {
			var err error
			f, err = Open(filepath.Join(dir, filepath.Base(shard)))
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("open shard listed in %s: %w", IndexFile, err)
			}
			shards[shard] = f
			files = append(files, f)
		}
		if _, ok := f.Info(name); !ok {
			closeAll()
			return nil, fmt.Errorf("%s says tensor %q is in %s, but that shard does not hold it (mixed-up download? re-download the model)", IndexFile, name, shard)
		}
		owner[name] = f
	}
	return newSet(files, owner)
}

func newSet(files []*File, owner map[string]*File) (*Set, error) {
	s := &Set{files: files, byName: map[string]*File{}}
	for _, f := range files {
		for _, n := range f.Names() {
			if owner != nil && owner[n] != f {
				continue
			}
			if prev, dup := s.byName[n]; dup && prev != f {
				return nil, fmt.Errorf("tensor %q appears in both %s and %s", n, prev.Path(), f.Path())
			}
			s.byName[n] = f
		}
	}
	return s, nil
}

// Names lists every tensor name, sorted.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Info describes the named tensor.
func (s *Set) Info(name string) (TensorInfo, bool) {
	f, ok := s.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Info(name)
}

// Float32 returns the named tensor converted to float32, and its shape.
func (s *Set) Float32(name string) ([]float32, []int, error) {
	f, ok := s.byName[name]
	if !ok {
		return nil, nil, fmt.Errorf("model weights have no tensor %q", name)
	}
	return f.Float32(name)
}

// Raw returns the named tensor's bytes without copying.
func (s *Set) Raw(name string) (TensorInfo, []byte, error) {
	f, ok := s.byName[name]
	if !ok {
		return TensorInfo{}, nil, fmt.Errorf("model weights have no tensor %q", name)
	}
	return f.Raw(name)
}

// Close closes every file of the set.
func (s *Set) Close() error {
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
