package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/foundryhq/foundry/internal/atomicfile"

	"github.com/foundryhq/foundry/judge"
)

// Summary is an eval's outcome, saved as summary.json.
type Summary struct {
	ID        string    `json:"id"`
	Updated   time.Time `json:"updated"`
	Data      string    `json:"data,omitempty"`
	Examples  int       `json:"examples"`
	Reference string    `json:"reference,omitempty"`
	Judge     string    `json:"judge,omitempty"`
	Rubric    string    `json:"rubric,omitempty"`
	Seed      int64     `json:"seed"`
	Resamples int       `json:"resamples"`
	// JudgeCostUSD is what this eval's judge calls cost (cached verdicts are free).
	JudgeCostUSD float64            `json:"judge_cost_usd"`
	Candidates   []CandidateSummary `json:"candidates"`
	Samples      []Sample           `json:"samples,omitempty"` // answers side by side, for the reports
}

// Candidate returns the summary of one candidate, or nil.
func (s *Summary) Candidate(name string) *CandidateSummary {
	for i := range s.Candidates {
		if s.Candidates[i].Name == name {
			return &s.Candidates[i]
		}
	}
	return nil
}

// CandidateSummary is one candidate's metrics. Means carry bootstrap 95%
// confidence intervals; failed calls count as wrong answers.
type CandidateSummary struct {
	Name     string `json:"name"`
	Requests int    `json:"requests"`
	Errors   int    `json:"errors"`

	ExactMatch Stat `json:"exact_match"`
	RougeL     Stat `json:"rouge_l"`
	// JSONValid is over the examples whose reference is a JSON object or
	// array; FieldAccuracy and Fields over those whose reference is an object.
	JSONValid     *Stat           `json:"json_valid,omitempty"`
	FieldAccuracy *Stat           `json:"field_accuracy,omitempty"`
	Fields        map[string]Stat `json:"fields,omitempty"`

	// WinRate is the judge's verdict against the reference candidate, ties
	// counting half; absent for the reference itself and without a judge.
	WinRate     *Stat     `json:"win_rate,omitempty"`
	Tally       *WinTally `json:"tally,omitempty"`
	JudgeErrors int       `json:"judge_errors,omitempty"`

	LatencyP50MS  float64 `json:"latency_p50_ms"` // over successful calls
	LatencyP95MS  float64 `json:"latency_p95_ms"`
	LatencyMeanMS float64 `json:"latency_mean_ms"`

	PromptTokens     int     `json:"prompt_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	CostUSD          float64 `json:"cost_usd"`
	// CostPer1K is the cost of 1,000 requests: the mean cost per priced
	// call × 1000, with its interval.
	CostPer1K Stat `json:"cost_per_1k"`
	Unpriced  int  `json:"unpriced,omitempty"` // calls whose model has no price
}

// WinTally is judge.Tally as stored.
type WinTally struct {
	Wins         int `json:"wins"`
	Losses       int `json:"losses"`
	Ties         int `json:"ties"`
	Inconsistent int `json:"inconsistent"` // ties where the two orders disagreed (position bias)
}

// Sample is one example's answers side by side.
type Sample struct {
	Example   string            `json:"example"`
	Prompt    string            `json:"prompt"` // the last prompt message's text
	Reference string            `json:"reference"`
	Answers   map[string]string `json:"answers"` // by candidate; failed calls as "error: ..."
}

func summarize(o Options, examples []Example, results map[key]Result, judgements map[key]Judgement) *Summary {
	s := &Summary{ID: o.ID, Updated: time.Now().UTC(), Data: o.Data, Examples: len(examples), Reference: o.Reference,
		Judge: o.judgeModel(), Rubric: o.Rubric, Seed: o.Seed, Resamples: o.Resamples}
	for _, j := range judgements {
		s.JudgeCostUSD += j.CostUSD
	}
	for _, c := range o.Candidates {
		cs := CandidateSummary{Name: c}
		var exact, rouge, valid, facc, cost, lat []float64
		fields := map[string][]float64{}
		for _, ex := range examples {
			r, ok := results[key{c, ex.ID}]
			if !ok {
				continue // not asked yet (a cancelled run)
			}
			cs.Requests++
			if r.Error != "" {
				cs.Errors++
				// Score was computed on an empty answer: zero, as a wrong answer.
			} else {
				lat = append(lat, r.LatencyMS)
			}
			exact = append(exact, r.Scores.Exact)
			rouge = append(rouge, r.Scores.RougeL)
			if v := r.Scores.JSONValid; v != nil {
				valid = append(valid, b2f(*v))
			}
			if a := r.Scores.FieldAccuracy; a != nil {
				facc = append(facc, *a)
				for f, ok := range r.Scores.Fields {
					fields[f] = append(fields[f], b2f(ok))
				}
			}
			cs.PromptTokens += r.PromptTokens
			cs.CompletionTokens += r.CompletionTokens
			cs.CostUSD += r.CostUSD
			if r.Error == "" {
				if r.Priced {
					cost = append(cost, r.CostUSD*1000)
				} else {
					cs.Unpriced++
				}
			}
		}
		boot := func(metric string, xs []float64) Stat { return Bootstrap(xs, o.Resamples, seedFor(o.Seed, c, metric)) }
		cs.ExactMatch, cs.RougeL, cs.CostPer1K = boot("exact", exact), boot("rouge_l", rouge), boot("cost", cost)
		if len(valid) > 0 {
			st := boot("json_valid", valid)
			cs.JSONValid = &st
		}
		if len(facc) > 0 {
			st := boot("field_accuracy", facc)
			cs.FieldAccuracy = &st
			cs.Fields = map[string]Stat{}
			for f, xs := range fields {
				cs.Fields[f] = boot("field:"+f, xs)
			}
		}
		if len(lat) > 0 {
			cs.LatencyP50MS, cs.LatencyP95MS, cs.LatencyMeanMS = Percentile(lat, 0.5), Percentile(lat, 0.95), mean(lat)
		}
		if o.Judge != nil && c != o.Reference {
			var t judge.Tally
			var points []float64
			for _, ex := range examples {
				j, ok := judgements[key{c, ex.ID}]
				if !ok {
					continue
				}
				if j.Error != "" {
					cs.JudgeErrors++
					continue
				}
				p := j.preference()
				t.Add(p)
				points = append(points, p.Points())
			}
			st := boot("win_rate", points)
			st.Mean = t.WinRate()
			cs.WinRate = &st
			cs.Tally = &WinTally{Wins: t.Wins, Losses: t.Losses, Ties: t.Ties, Inconsistent: t.Inconsistent}
		}
		s.Candidates = append(s.Candidates, cs)
	}
	s.Samples = pickSamples(o, examples, results)
	return s
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// pickSamples shows first the examples where some candidate missed the
// reference exactly, then the rest, in file order.
func pickSamples(o Options, examples []Example, results map[key]Result) []Sample {
	var missed, matched []Sample
	for _, ex := range examples {
		sm := Sample{Example: ex.ID, Reference: Text(ex.Reference), Answers: map[string]string{}}
		if n := len(ex.Prompt); n > 0 {
			sm.Prompt = Text(ex.Prompt[n-1])
		}
		miss := false
		for _, c := range o.Candidates {
			r, ok := results[key{c, ex.ID}]
			if !ok {
				continue
			}
			if r.Error != "" {
				sm.Answers[c] = "error: " + r.Error
			} else {
				sm.Answers[c] = r.Answer
			}
			miss = miss || r.Scores.Exact == 0
		}
		if miss {
			missed = append(missed, sm)
		} else {
			matched = append(matched, sm)
		}
		if len(missed) >= o.Samples {
			break
		}
	}
	out := append(missed, matched...)
	return out[:min(len(out), o.Samples)]
}

// WriteDir saves a summary and its Markdown and HTML reports into dir.
func WriteDir(dir string, s *Summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	var md, html strings.Builder
	if err := WriteMarkdown(&md, s); err != nil {
		return err
	}
	if err := WriteHTML(&html, s); err != nil {
		return err
	}
	for name, data := range map[string][]byte{SummaryFile: append(b, '\n'), MarkdownFile: []byte(md.String()), HTMLFile: []byte(html.String())} {
		if err := atomicfile.Write(filepath.Join(dir, name), data); err != nil {
			return fmt.Errorf("eval %s: write %s: %w", s.ID, name, err)
		}
	}
	return nil
}

// Load reads the summary of eval id under dir ("" is DefaultDir). id may
// also be the path of an eval's directory.
func Load(dir, id string) (*Summary, error) {
	if dir == "" {
		dir = DefaultDir
	}
	path := filepath.Join(dir, id, SummaryFile)
	if st, err := os.Stat(filepath.Join(id, SummaryFile)); err == nil && !st.IsDir() {
		path = filepath.Join(id, SummaryFile)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		ids, _ := List(dir)
		return nil, fmt.Errorf("no eval %q under %s (evals there: %s)", id, dir, strings.Join(ids, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("read eval %s: %w", id, err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("eval %s: %s is damaged: %w (re-run the eval to rewrite it)", id, path, err)
	}
	return &s, nil
}

// List returns the ids of the evals under dir ("" is DefaultDir) that have a summary.
func List(dir string) ([]string, error) {
	if dir == "" {
		dir = DefaultDir
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), SummaryFile)); e.IsDir() && err == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// metricNames orders the metrics as reports show them.
var metricNames = []string{"exact_match", "json_valid", "field_accuracy", "rouge_l", "win_rate"}

var metricTitles = map[string]string{"exact_match": "exact match", "json_valid": "JSON valid",
	"field_accuracy": "field accuracy", "rouge_l": "ROUGE-L", "win_rate": "win rate"}

// metric returns one of metricNames' stats, or nil when it does not apply.
func (c *CandidateSummary) metric(name string) *Stat {
	switch name {
	case "exact_match":
		return &c.ExactMatch
	case "rouge_l":
		return &c.RougeL
	case "json_valid":
		return c.JSONValid
	case "field_accuracy":
		return c.FieldAccuracy
	case "win_rate":
		return c.WinRate
	}
	return nil
}

// presentMetrics are the metrics some candidate of s has.
func (s *Summary) presentMetrics() []string {
	var out []string
	for _, m := range metricNames {
		for i := range s.Candidates {
			if s.Candidates[i].metric(m) != nil {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

func (s *Summary) fieldNames() []string {
	set := map[string]bool{}
	for _, c := range s.Candidates {
		for f := range c.Fields {
			set[f] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}
