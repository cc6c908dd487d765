package dataset

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/store"
)

// DefaultDataDir is where versions are stored when no data dir is given.
const DefaultDataDir = "./foundry-data"

// Manifest describes one stored version of a dataset. It is written as
// manifest.json beside train.jsonl, val.jsonl and test.jsonl (OpenAI
// fine-tuning JSONL, the canonical rows).
type Manifest struct {
	Name      string    `json:"name"`
	Hash      string    `json:"hash"` // sha256 of the canonical rows, hex
	CreatedAt time.Time `json:"created_at"`
	Spec      Spec      `json:"spec"`
	// Queries are the store queries the sources ran, one per store source.
	Queries []store.Query    `json:"queries,omitempty"`
	Funnel  Funnel           `json:"funnel"`
	Rows    map[string]int64 `json:"rows"` // per split, copies from mix weights included
	Tokens  Histogram        `json:"tokens"`
	Sample  []SampleRow      `json:"sample"`
}

// Short is the 12-hex-digit prefix of the hash that names the version's directory.
func (m *Manifest) Short() string { return m.Hash[:12] }

// Ref is NAME@SHORT.
func (m *Manifest) Ref() string { return m.Name + "@" + m.Short() }

// Histogram counts examples by token length in power-of-two buckets.
// Method names the counter (see TokenCounter): ApproxMethod, the
// characters/4 estimate, unless the spec named a tokenizer; Label shows it.
type Histogram struct {
	Method string `json:"method"`
	// TemplateFallbacks counts rows the tokenizer's chat template could not
	// render, counted from their messages' text instead.
	TemplateFallbacks int64    `json:"template_fallbacks,omitempty"`
	Count             int64    `json:"count"`
	Total             int64    `json:"total"`
	Min               int      `json:"min"`
	Max               int      `json:"max"`
	Buckets           []Bucket `json:"buckets"`
}

// Bucket counts examples with Lo <= tokens < Hi.
type Bucket struct {
	Lo    int   `json:"lo"`
	Hi    int   `json:"hi"`
	Count int64 `json:"count"`
}

func (h *Histogram) add(tokens int) {
	if h.Count == 0 || tokens < h.Min {
		h.Min = tokens
	}
	h.Max = max(h.Max, tokens)
	h.Count++
	h.Total += int64(tokens)
	lo, hi := 0, 64
	for tokens >= hi {
		lo, hi = hi, hi*2
	}
	for i := range h.Buckets {
		if h.Buckets[i].Lo == lo {
			h.Buckets[i].Count++
			return
		}
	}
	h.Buckets = append(h.Buckets, Bucket{Lo: lo, Hi: hi, Count: 1})
	sort.Slice(h.Buckets, func(a, b int) bool { return h.Buckets[a].Lo < h.Buckets[b].Lo })
}

// SampleRow is one row kept in the manifest, with its provenance.
type SampleRow struct {
	Split    string        `json:"split"`
	ID       string        `json:"id,omitempty"`
	Source   string        `json:"source,omitempty"`
	Route    string        `json:"route,omitempty"`
	Model    string        `json:"model,omitempty"`
	Score    *float64      `json:"score,omitempty"`
	Judge    *float64      `json:"judge_score,omitempty"`
	Messages []api.Message `json:"messages"`
}

// BuildOptions are what a build needs besides its spec.
type BuildOptions struct {
	Store   store.Store // for store sources; may be nil when every source is a file
	DataDir string      // default DefaultDataDir
	// Plugins build the judge and best_of_n stages when the spec has them.
	Plugins map[string]Plugin
	// Hub fetches hf:// file sources (default: a client from the environment);
	// its Progress also shows the download of a spec's tokenizer.
	Hub HubOptions
	// Progress is called every 1024 source rows; Total (if the caller wants a
	// bar) comes from CountSource.
	Progress func(rows int64)
	Logger   *slog.Logger
	Now      func() time.Time
}

// Built is the result of a build.
type Built struct {
	Manifest *Manifest
	Dir      string
	Existed  bool // the same rows were already stored as this version
}

// Build runs the spec's pipeline and stores the result as a version named
// by the sha256 of its rows: DataDir/datasets/NAME/HASH12/. Building the
// same rows again finds the existing version.
func Build(ctx context.Context, spec *Spec, o BuildOptions) (*Built, error) {
	if err := spec.Check(); err != nil {
		return nil, fmt.Errorf("dataset spec: %w", err)
	}
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	root := filepath.Join(o.DataDir, "datasets", spec.Name)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("dataset %s: %w", spec.Name, err)
	}
	tmp, err := os.MkdirTemp(root, ".build-")
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", spec.Name, err)
	}
	defer os.RemoveAll(tmp)

	src, err := spec.source(o.Store, o.Hub)
	if err != nil {
		return nil, err
	}
	counter, err := spec.tokenCounter(ctx, o.Hub.Progress)
	if err != nil {
		return nil, err
	}
	stages, err := spec.stages(ctx, o.Plugins, tmp, counter)
	if err != nil {
		return nil, err
	}
	w, err := newVersionWriter(tmp, max(spec.Sample, 0), counter)
	if err != nil {
		return nil, err
	}
	if spec.Sample == 0 {
		w.sample = 3
	}
	p := &Pipeline{Source: src, Stages: stages, Progress: o.Progress}
	start := time.Now()
	funnel, err := p.Run(ctx, w.write)
	if cerr := w.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("build dataset %s: %w", spec.Name, err)
	}
	if tc, ok := counter.(*TokenizerCounter); ok {
		w.hist.TemplateFallbacks = tc.Fallbacks()
	}
	m := &Manifest{Name: spec.Name, Hash: hex.EncodeToString(w.sum.Sum(nil)), CreatedAt: o.Now().UTC(), Spec: *spec,
		Funnel: funnel, Rows: w.rows, Tokens: w.hist, Sample: w.samples}
	for _, s := range spec.Sources {
		if s.Store != nil {
			m.Queries = append(m.Queries, s.Store.Query())
		}
	}
	o.Logger.Info("dataset built", "name", spec.Name, "hash", m.Short(), "rows", m.Rows, "elapsed", time.Since(start))
	if err := writeJSON(filepath.Join(tmp, "manifest.json"), m); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, m.Short())
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err == nil {
		old, err := readManifest(dir)
		if err != nil {
			return nil, err
		}
		return &Built{Manifest: old, Dir: dir, Existed: true}, nil
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old, rerr := readManifest(dir); rerr == nil { // a concurrent build of the same rows won
			return &Built{Manifest: old, Dir: dir, Existed: true}, nil
		}
		return nil, fmt.Errorf("store dataset %s: %w", m.Ref(), err)
	}
	return &Built{Manifest: m, Dir: dir}, nil
}

// CountSource returns how many rows the spec's store sources will scan, for
// a progress bar (files are not counted: -1 when any source is a file).
func CountSource(ctx context.Context, spec *Spec, st store.Store) (int64, error) {
	var n int64
	for _, s := range spec.Sources {
		if s.Store == nil {
			return -1, nil
		}
		q, _ := s.Store.scanQuery()
		c, err := st.CountRecords(ctx, q)
		if err != nil {
			return -1, err
		}
		n += c
	}
	return n, nil
}

// versionWriter writes the canonical split files and hashes them. The hash
// covers, per split in the order train, val, test, the split name and its
// file's bytes, so it changes with any row, its order, or its split.
type versionWriter struct {
	dir     string
	files   map[string]*os.File
	bufs    map[string]*bufio.Writer
	hashes  map[string]hash.Hash
	sum     hash.Hash
	rows    map[string]int64
	hist    Histogram
	counter TokenCounter
	sample  int
	samples []SampleRow
	perSp   map[string]int
}

func newVersionWriter(dir string, sample int, counter TokenCounter) (*versionWriter, error) {
	w := &versionWriter{dir: dir, files: map[string]*os.File{}, bufs: map[string]*bufio.Writer{}, hashes: map[string]hash.Hash{},
		rows: map[string]int64{}, sample: sample, perSp: map[string]int{}, hist: Histogram{Method: counter.Method()}, counter: counter}
	for _, sp := range Splits {
		f, err := os.Create(filepath.Join(dir, sp+".jsonl"))
		if err != nil {
			return nil, fmt.Errorf("write dataset: %w", err)
		}
		w.files[sp], w.hashes[sp] = f, sha256.New()
		w.bufs[sp] = bufio.NewWriterSize(io.MultiWriter(f, w.hashes[sp]), 1<<16)
		w.rows[sp] = 0
	}
	return w, nil
}

func (w *versionWriter) write(ex *Example) error {
	sp := ex.Split
	if sp == "" {
		sp = "train"
	}
	b, err := EncodeLine(ex, FormatOpenAI)
	if err != nil {
		return fmt.Errorf("row %s: %w", ex.Meta.ID, err)
	}
	n := 1
	if sp == "train" {
		n = copies(ex.Meta.Weight, ex.Meta.ID)
	}
	bw := w.bufs[sp]
	tokens := w.counter.Tokens(ex)
	for range n {
		bw.Write(b)
		if err := bw.WriteByte('\n'); err != nil {
			return fmt.Errorf("write dataset: %w", err)
		}
		w.rows[sp]++
		w.hist.add(tokens)
	}
	if w.perSp[sp] < w.sample {
		w.perSp[sp]++
		w.samples = append(w.samples, SampleRow{Split: sp, ID: ex.Meta.ID, Source: ex.Meta.Source, Route: ex.Meta.Route,
			Model: ex.Meta.Model, Score: ex.Meta.Score, Judge: ex.Meta.JudgeScore, Messages: ex.Messages})
	}
	return nil
}

func (w *versionWriter) close() error {
	var first error
	w.sum = sha256.New()
	for _, sp := range Splits {
		if err := w.bufs[sp].Flush(); err != nil && first == nil {
			first = err
		}
		if err := w.files[sp].Close(); err != nil && first == nil {
			first = err
		}
		fmt.Fprintf(w.sum, "%s\n%x\n", sp, w.hashes[sp].Sum(nil))
	}
	sort.SliceStable(w.samples, func(a, b int) bool { return splitIndex(w.samples[a].Split) < splitIndex(w.samples[b].Split) })
	if first != nil {
		return fmt.Errorf("write dataset: %w", first)
	}
	return nil
}

func splitIndex(s string) int {
	for i, x := range Splits {
		if x == s {
			return i
		}
	}
	return len(Splits)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("read dataset version: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read dataset version %s: manifest.json: %w", dir, err)
	}
	return &m, nil
}

// Version is a stored dataset version.
type Version struct {
	Manifest *Manifest
	Dir      string
}

// List returns every stored version, by name then newest first.
func List(dataDir string) ([]Version, error) {
	if dataDir == "" {
		dataDir = DefaultDataDir
	}
	root := filepath.Join(dataDir, "datasets")
	names, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list datasets: %w", err)
	}
	var out []Version
	for _, n := range names {
		if !n.IsDir() {
			continue
		}
		vs, err := os.ReadDir(filepath.Join(root, n.Name()))
		if err != nil {
			return nil, fmt.Errorf("list datasets: %w", err)
		}
		for _, v := range vs {
			if !v.IsDir() || strings.HasPrefix(v.Name(), ".") {
				continue
			}
			dir := filepath.Join(root, n.Name(), v.Name())
			m, err := readManifest(dir)
			if err != nil {
				return nil, err
			}
			out = append(out, Version{Manifest: m, Dir: dir})
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].Manifest.Name != out[b].Manifest.Name {
			return out[a].Manifest.Name < out[b].Manifest.Name
		}
		return out[a].Manifest.CreatedAt.After(out[b].Manifest.CreatedAt)
	})
	return out, nil
}

// Open finds a version by NAME (the newest) or NAME@HASH (any unique prefix
// of the hash).
func Open(dataDir, ref string) (*Version, error) {
	name, h, _ := strings.Cut(ref, "@")
	all, err := List(dataDir)
	if err != nil {
		return nil, err
	}
	var match []Version
	var names []string
	for _, v := range all {
		if v.Manifest.Name != name {
			continue
		}
		names = append(names, v.Manifest.Short())
		if strings.HasPrefix(v.Manifest.Hash, h) {
			match = append(match, v)
		}
	}
	switch {
	case len(names) == 0:
		return nil, fmt.Errorf("no dataset named %q under %s (see foundry dataset list)", name, dataDir)
	case len(match) == 0:
		return nil, fmt.Errorf("dataset %s has no version %q (versions: %s)", name, h, strings.Join(names, ", "))
	case h != "" && len(match) > 1:
		return nil, fmt.Errorf("dataset %s: version %q is ambiguous (matches %d versions); give more of the hash", name, h, len(match))
	}
	return &match[0], nil
}

// Examples streams the rows of one split ("" for all, in train, val, test
// order) with Split set.
func (v *Version) Examples(ctx context.Context, split string, fn func(*Example) error) error {
	splits := Splits
	if split != "" {
		if splitIndex(split) == len(Splits) {
			return fmt.Errorf("unknown split %q (want train, val or test)", split)
		}
		splits = []string{split}
	}
	for _, sp := range splits {
		err := ReadFile(ctx, filepath.Join(v.Dir, sp+".jsonl"), FormatOpenAI, func(ex *Example, err error) error {
			if err != nil {
				return fmt.Errorf("dataset %s is damaged: %w", v.Manifest.Ref(), err)
			}
			ex.Split = sp
			return fn(ex)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Export writes a version's split ("" for all) in format to w. Rows the
// format cannot hold (tools in Alpaca, say) are skipped and counted.
func (v *Version) Export(ctx context.Context, split, format string, w io.Writer) (written, skipped int64, err error) {
	ww, err := NewWriter(w, format)
	if err != nil {
		return 0, 0, err
	}
	var unrep *UnrepresentableError
	err = v.Examples(ctx, split, func(ex *Example) error {
		if err := ww.Write(ex); errors.As(err, &unrep) {
			skipped++
			return nil
		} else if err != nil {
			return err
		}
		written++
		return nil
	})
	if cerr := ww.Close(); err == nil {
		err = cerr
	}
	return written, skipped, err
}

// DiffResult counts rows present in one version and not the other
// (multisets of canonical lines, whatever their split), and rows that
// changed split.
type DiffResult struct {
	Added, Removed, Moved int64
	AddedSample           []string // the first added rows (truncated)
	RemovedSample         []string
}

// Diff compares two versions row by row. It keeps a 16-byte entry per row of
// a in memory.
func Diff(ctx context.Context, a, b *Version) (*DiffResult, error) {
	type entry struct {
		n     int32
		split uint8
	}
	rows := map[uint64]*entry{}
	if err := a.Examples(ctx, "", func(ex *Example) error {
		line, _ := EncodeLine(ex, FormatOpenAI)
		h := xxhash.Sum64(line)
		e := rows[h]
		if e == nil {
			e = &entry{split: uint8(splitIndex(ex.Split))}
			rows[h] = e
		}
		e.n++
		return nil
	}); err != nil {
		return nil, err
	}
	d := &DiffResult{}
	if err := b.Examples(ctx, "", func(ex *Example) error {
		line, _ := EncodeLine(ex, FormatOpenAI)
		h := xxhash.Sum64(line)
		if e := rows[h]; e != nil && e.n > 0 {
			e.n--
			if int(e.split) != splitIndex(ex.Split) {
				d.Moved++
			}
			return nil
		}
		d.Added++
		if len(d.AddedSample) < 5 {
			d.AddedSample = append(d.AddedSample, truncate(string(line), 160))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, e := range rows {
		d.Removed += int64(e.n)
	}
	if d.Removed > 0 {
		_ = a.Examples(ctx, "", func(ex *Example) error {
			if len(d.RemovedSample) >= 5 {
				return nil
			}
			line, _ := EncodeLine(ex, FormatOpenAI)
			if e := rows[xxhash.Sum64(line)]; e != nil && e.n > 0 {
				d.RemovedSample = append(d.RemovedSample, truncate(string(line), 160))
			}
			return nil
		})
	}
	return d, nil
}
