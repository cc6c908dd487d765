package dataset

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/foundryhq/foundry/store"
)

// Selection chooses captured calls from the store. Only successful chat
// completions are ever selected; zero fields do not filter.
type Selection struct {
	Routes      []string          `yaml:"routes" json:"routes,omitempty"`
	Models      []string          `yaml:"models" json:"models,omitempty"`
	Providers   []string          `yaml:"providers" json:"providers,omitempty"`
	Project     string            `yaml:"project" json:"project,omitempty"`
	Since       time.Time         `yaml:"since" json:"since,omitzero"`
	Until       time.Time         `yaml:"until" json:"until,omitzero"`
	Tags        []string          `yaml:"tags" json:"tags,omitempty"` // all of them
	Metadata    map[string]string `yaml:"metadata" json:"metadata,omitempty"`
	HasFeedback *bool             `yaml:"has_feedback" json:"has_feedback,omitempty"`
	MinScore    *float64          `yaml:"min_score" json:"min_score,omitempty"`
}

// CurationTags mark Foundry's own judge and teacher calls (their
// X-Foundry-Tags). A store selection skips calls carrying one unless its
// tags name it: a verdict is not a training answer, and the teacher samples
// worth keeping are already in the dataset that asked for them.
var CurationTags = []string{"judge", "teacher"}

// Query is the store query for the selection: status ok, oldest first.
func (s Selection) Query() store.Query {
	return store.Query{Since: s.Since, Until: s.Until, Project: s.Project, Routes: s.Routes, Models: s.Models,
		Providers: s.Providers, Tags: s.Tags, Metadata: s.Metadata, Status: "ok", HasFeedback: s.HasFeedback, MinScore: s.MinScore}
}

// scanQuery splits Query into what the store filters and what the select
// stage checks itself: the status, and route/model/provider lists of more
// than one value. The SQLite store sorts every page of a scan afresh when
// its index cannot give created_at order (a range on status, an IN list),
// which makes a long scan quadratic; a single value, tags and times keep it
// linear. Rows the residual check rejects are counted in the funnel.
func (s Selection) scanQuery() (store.Query, func(r *store.RecordWithFeedback) string) {
	q := s.Query()
	q.Status = ""
	q.Lean = true // FromRecord and the residual filter read no other field
	var routes, models, providers []string
	if len(q.Routes) > 1 {
		routes, q.Routes = q.Routes, nil
	}
	if len(q.Models) > 1 {
		models, q.Models = q.Models, nil
	}
	if len(q.Providers) > 1 {
		providers, q.Providers = q.Providers, nil
	}
	var own []string // curation tags the selection does not ask for
	for _, t := range CurationTags {
		if !slices.Contains(s.Tags, t) {
			own = append(own, t)
		}
	}
	return q, func(r *store.RecordWithFeedback) string {
		switch {
		case r.Status < 200 || r.Status > 299:
			return "status not ok"
		case slices.ContainsFunc(r.Tags, func(t string) bool { return slices.Contains(own, t) }):
			return "a judge or teacher call"
		case routes != nil && !slices.Contains(routes, r.Route):
			return "other route"
		case models != nil && !slices.Contains(models, r.Model):
			return "other model"
		case providers != nil && !slices.Contains(providers, r.Provider):
			return "other provider"
		}
		return ""
	}
}

// StoreSource selects examples from captured calls.
type StoreSource struct {
	Store  store.Store
	Select Selection
	Weight float64 // see Mix; 0 means 1
}

// Name is "select".
func (s *StoreSource) Name() string { return "select" }

// Examples streams the selected calls, oldest first, through store.ScanRecords.
func (s *StoreSource) Examples(ctx context.Context, out *Out) error {
	return s.scan(ctx, out, func(ex *Example) error { return out.Keep(ctx, ex) })
}

// parseWorkers is how many goroutines decode records while the store scans:
// decoding JSON costs about as much as reading the rows.
const parseWorkers = 2

func (s *StoreSource) scan(ctx context.Context, out *Out, keep func(*Example) error) error {
	type parsed struct {
		id, endpoint, skip string
		ex                 *Example
		err                error
	}
	var seq int64
	q, residual := s.Select.scanQuery()
	err := orderedMap(ctx, parseWorkers, 0, func(send func(store.RecordWithFeedback) error) error {
		return s.Store.ScanRecords(ctx, q, send)
	}, func(r store.RecordWithFeedback) parsed {
		if why := residual(&r); why != "" {
			return parsed{id: r.ID, skip: why}
		}
		ex, err := FromRecord(r)
		return parsed{id: r.ID, endpoint: r.Endpoint, ex: ex, err: err}
	}, func(p parsed) error {
		if p.skip != "" {
			out.drop(&Example{Meta: Meta{Source: "store", ID: p.id}}, "not selected: "+p.skip, "", false)
			return nil
		}
		if p.err == errNotChat {
			out.Drop(&Example{Meta: Meta{Source: "store", ID: p.id}}, "not a chat completion", p.endpoint)
			return nil
		}
		if p.err != nil {
			out.Drop(&Example{Meta: Meta{Source: "store", ID: p.id}}, "unreadable record", p.err.Error())
			return nil
		}
		p.ex.Meta.Weight = s.Weight
		p.ex.Seq = seq
		seq++
		return keep(p.ex)
	})
	if err != nil {
		return fmt.Errorf("select from the store: %w", err)
	}
	return nil
}

// Count returns how many records the scan reads (for progress).
func (s *StoreSource) Count(ctx context.Context) (int64, error) {
	q, _ := s.Select.scanQuery()
	return s.Store.CountRecords(ctx, q)
}

// Mix concatenates sources in order, applying each one's weight: a weight w
// below 1 keeps a deterministic fraction w of the source's rows (by a hash of
// the row's id), and a weight above 1 repeats the row in the train split
// (floor(w) copies, plus one more for a deterministic fraction frac(w)) when
// the version is written — after dedupe, so copies are not deduplicated away.
type Mix struct {
	Parts []MixPart
}

// MixPart is one weighted source of a Mix.
type MixPart struct {
	Source Source
	Weight float64 // 0 means 1
	Label  string  // names the part in counters, e.g. "store" or a file name
}

// Name is "select".
func (m *Mix) Name() string { return "select" }

// Examples streams each part in turn, renumbering Seq across parts.
func (m *Mix) Examples(ctx context.Context, out *Out) error {
	var seq int64
	for _, p := range m.Parts {
		w := p.Weight
		if w == 0 {
			w = 1
		}
		var kept int64
		// The part reports into the same funnel line; the filter applies its weight.
		sub := &Out{ch: out.ch, sink: out.sink, rep: out.rep, progress: out.progress, filter: func(ex *Example) string {
			ex.Meta.Weight = w
			if w < 1 && fraction(ex.Meta.ID) >= w {
				return "sampled out by mix weight"
			}
			ex.Seq = seq
			seq++
			kept++
			return ""
		}}
		if err := p.Source.Examples(ctx, sub); err != nil {
			return err
		}
		out.Count("from "+p.Label, kept)
	}
	return nil
}

// fraction maps s to [0, 1) deterministically.
func fraction(s string) float64 {
	return float64(xxhash.Sum64String(s)>>11) / (1 << 53)
}

// copies is how many times an example of weight w is written to train.
func copies(w float64, id string) int {
	if w <= 1 {
		return 1
	}
	n := int(w)
	if fraction("copy:"+id) < w-float64(n) {
		n++
	}
	return n
}
