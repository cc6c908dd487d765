package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/foundryhq/foundry/store"
)

// Spec describes a dataset build. It is read from YAML (see ParseSpec) or
// assembled from `foundry dataset build` flags, and stored in the version's
// manifest.
//
//	name: support-v1
//	sources:
//	  - store: {routes: [support-bot], tags: [prod], min_score: 0.7, since: 2026-01-01T00:00:00Z}
//	  - file: scavenged/alpaca.jsonl   # format detected, or format: alpaca
//	    weight: 0.5
//	  - file: hf://datasets/org/chats@v1/data/train.parquet   # a file of a hub dataset repo
//	validate: {json: true, max_tokens: 2000, must_not_match: ["(?i)as an ai"]}
//	dedupe: {threshold: 0.85}
//	scrub: {types: [EMAIL, PHONE, CARD, IBAN, IP, SECRET]}
//	split: {train: 0.9, val: 0.05, test: 0.05, stratify: route}
//	tokenizer: Qwen/Qwen3-0.6B   # count real tokens (histogram, token bounds) instead of chars/4
type Spec struct {
	Name     string       `yaml:"name" json:"name"`
	Sources  []SourceSpec `yaml:"sources" json:"sources"`
	Validate ValidateSpec `yaml:"validate" json:"validate"`
	// Judge and BestOfN configure plug-in stages (see BuildOptions.Plugins);
	// their contents are passed to the plug-in as decoded YAML.
	Judge   any        `yaml:"judge" json:"judge,omitempty"`
	BestOfN any        `yaml:"best_of_n" json:"best_of_n,omitempty"`
	Dedupe  DedupeSpec `yaml:"dedupe" json:"dedupe"`
	Scrub   ScrubSpec  `yaml:"scrub" json:"scrub"`
	Split   SplitSpec  `yaml:"split" json:"split"`
	// Skip names stages not to run: validate, dedupe, scrub.
	Skip []string `yaml:"skip" json:"skip,omitempty"`
	// Sample is how many rows per split the manifest keeps (default 3).
	Sample int `yaml:"sample" json:"sample,omitempty"`
	// Tokenizer, a directory holding tokenizer.json or a Hugging Face model
	// id, counts real tokens for the length histogram and validate's token
	// bounds (see TokenizerCounter); "" estimates them as characters / 4.
	Tokenizer string `yaml:"tokenizer" json:"tokenizer,omitempty"`
}

// SourceSpec is one source: the store (with a selection) or a file. A file
// named hf://datasets/ORG/NAME[@rev]/PATH is a file of a Hugging Face
// dataset repo, fetched into the hub cache (see HubSource).
type SourceSpec struct {
	Store  *Selection `yaml:"store" json:"store,omitempty"`
	File   string     `yaml:"file" json:"file,omitempty"`
	Format string     `yaml:"format" json:"format,omitempty"`
	// Weight: below 1 keeps that fraction of the source's rows; above 1
	// repeats its rows in train (see Mix). Default 1.
	Weight float64 `yaml:"weight" json:"weight,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParseSpec decodes a YAML spec strictly: unknown fields and type errors are
// reported with their line and column. path names the file in errors.
func ParseSpec(path string, data []byte) (*Spec, error) {
	var s Spec
	if err := yaml.UnmarshalWithOptions(data, &s, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("dataset spec %s:\n%s", path, yaml.FormatError(err, false, true))
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("dataset spec %s: %w", path, err)
	}
	return &s, nil
}

// ReadSpec reads and parses a YAML spec file.
func ReadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dataset spec: %w", err)
	}
	return ParseSpec(path, data)
}

// Check reports what is wrong with a spec, naming the field.
func (s *Spec) Check() error {
	var errs []error
	if !nameRE.MatchString(s.Name) {
		errs = append(errs, fmt.Errorf("name %q: use 1-64 letters, digits, '.', '_' or '-'", s.Name))
	}
	if len(s.Sources) == 0 {
		errs = append(errs, errors.New("sources: name at least one source (store: {...} or file: PATH)"))
	}
	for i, src := range s.Sources {
		switch {
		case src.Store != nil && src.File != "":
			errs = append(errs, fmt.Errorf("sources[%d]: give store or file, not both", i))
		case src.Store == nil && src.File == "":
			errs = append(errs, fmt.Errorf("sources[%d]: give store: {...} or file: PATH", i))
		}
		if IsHubFile(src.File) {
			if _, err := ParseHubFile(src.File); err != nil {
				errs = append(errs, fmt.Errorf("sources[%d].file %w", i, err))
			}
		}
		if src.Weight < 0 {
			errs = append(errs, fmt.Errorf("sources[%d].weight %v must not be negative", i, src.Weight))
		}
		if src.Format != "" && !strings.Contains(strings.Join(Formats, ","), src.Format) {
			errs = append(errs, fmt.Errorf("sources[%d].format %q: want one of %s", i, src.Format, strings.Join(Formats, ", ")))
		}
	}
	for _, k := range s.Skip {
		if k != "validate" && k != "dedupe" && k != "scrub" {
			errs = append(errs, fmt.Errorf("skip: %q is not a stage that can be skipped (validate, dedupe, scrub)", k))
		}
	}
	if s.Sample < 0 {
		errs = append(errs, errors.New("sample must not be negative"))
	}
	return errors.Join(errs...)
}

func (s *Spec) skips(stage string) bool {
	for _, k := range s.Skip {
		if k == stage {
			return true
		}
	}
	return false
}

// Plugin builds a plug-in stage (a judge, best-of-n) from its spec section.
type Plugin func(ctx context.Context, config any) (Stage, error)

// Stages builds the pipeline stages for the spec in order: validate,
// judge, best_of_n, dedupe, scrub, split. tmpDir holds dedupe's spool.
// The spec's tokenizer, if any, is loaded for validate's token bounds.
func (s *Spec) Stages(ctx context.Context, plugins map[string]Plugin, tmpDir string) ([]Stage, error) {
	c, err := s.tokenCounter(ctx, nil)
	if err != nil {
		return nil, err
	}
	return s.stages(ctx, plugins, tmpDir, c)
}

// tokenCounter is the spec's tokenizer, or Approx when it names none.
func (s *Spec) tokenCounter(ctx context.Context, progress io.Writer) (TokenCounter, error) {
	if s.Tokenizer == "" {
		return Approx, nil
	}
	return LoadTokenCounter(ctx, s.Tokenizer, progress)
}

func (s *Spec) stages(ctx context.Context, plugins map[string]Plugin, tmpDir string, counter TokenCounter) ([]Stage, error) {
	var stages []Stage
	if !s.skips("validate") {
		v, err := Validate(s.Validate)
		if counter != Approx && (s.Validate.MinTokens > 0 || s.Validate.MaxTokens > 0 || s.Validate.MaxTotalTokens > 0) {
			v, err = tokenBounds(s.Validate, counter)
		}
		if err != nil {
			return nil, err
		}
		stages = append(stages, v)
	}
	for _, pl := range []struct {
		name string
		cfg  any
	}{{"judge", s.Judge}, {"best_of_n", s.BestOfN}} {
		if pl.cfg == nil {
			continue
		}
		f := plugins[pl.name]
		if f == nil {
			return nil, fmt.Errorf("%s: this build of Foundry has no %s stage", pl.name, pl.name)
		}
		st, err := f(ctx, pl.cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pl.name, err)
		}
		stages = append(stages, st)
	}
	if !s.skips("dedupe") {
		d, err := Dedupe(s.Dedupe, tmpDir)
		if err != nil {
			return nil, err
		}
		stages = append(stages, d)
	}
	if !s.skips("scrub") {
		sc, err := Scrub(s.Scrub)
		if err != nil {
			return nil, err
		}
		stages = append(stages, sc)
	}
	sp, err := Split(s.Split)
	if err != nil {
		return nil, err
	}
	return append(stages, sp), nil
}

// Source builds the spec's source: one source, or a Mix of several. Hub
// files (hf://...) are fetched with a hub client from the environment.
func (s *Spec) Source(st store.Store) (Source, error) { return s.source(st, HubOptions{}) }

func (s *Spec) source(st store.Store, ho HubOptions) (Source, error) {
	var parts []MixPart
	for i, src := range s.Sources {
		if src.Store != nil {
			if st == nil {
				return nil, fmt.Errorf("sources[%d]: selecting from the store needs a store (is the database configured?)", i)
			}
			parts = append(parts, MixPart{Source: &StoreSource{Store: st, Select: *src.Store}, Weight: src.Weight, Label: "store"})
			continue
		}
		if IsHubFile(src.File) {
			f, err := ParseHubFile(src.File)
			if err != nil {
				return nil, fmt.Errorf("sources[%d].file %w", i, err)
			}
			parts = append(parts, MixPart{Source: &HubSource{File: f, Format: src.Format, Hub: ho}, Weight: src.Weight, Label: src.File})
			continue
		}
		parts = append(parts, MixPart{Source: &FileSource{Path: src.File, Format: src.Format}, Weight: src.Weight, Label: src.File})
	}
	return &Mix{Parts: parts}, nil
}
