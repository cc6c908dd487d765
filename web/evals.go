package web

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"time"

	"github.com/foundryhq/foundry/eval"
)

func (h *Handler) evalDir() string { return filepath.Join(h.opts.DataDir, "evals") }

type evalsPage struct {
	Dir   string
	Evals []evalRow
}

type evalRow struct {
	ID, Href, Data, Reference, Judge string
	Updated                          time.Time
	Examples                         int
	Candidates                       []evalCandidateCell
}

type evalCandidateCell struct {
	Name      string
	Headline  string // the metric that says most: field accuracy, else exact match
	Value     float64
	Reference bool
}

func headline(c *eval.CandidateSummary) (string, float64) {
	if c.FieldAccuracy != nil {
		return "field accuracy", c.FieldAccuracy.Mean
	}
	return "exact match", c.ExactMatch.Mean
}

func (h *Handler) handleEvals(w http.ResponseWriter, r *http.Request) {
	dir := h.evalDir()
	ids, err := eval.List(dir)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "List evals under "+dir+".", err)
		return
	}
	p := evalsPage{Dir: dir}
	for _, id := range ids {
		s, err := eval.Load(dir, id)
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, "Read eval "+id+".", err)
			return
		}
		row := evalRow{ID: s.ID, Href: "/ui/evals/" + url.PathEscape(id), Data: s.Data, Reference: s.Reference, Judge: s.Judge, Updated: s.Updated, Examples: s.Examples}
		for i := range s.Candidates {
			c := &s.Candidates[i]
			name, v := headline(c)
			row.Candidates = append(row.Candidates, evalCandidateCell{Name: c.Name, Headline: name, Value: v, Reference: c.Name == s.Reference})
		}
		p.Evals = append(p.Evals, row)
	}
	slices.SortStableFunc(p.Evals, func(a, b evalRow) int { return b.Updated.Compare(a.Updated) })
	h.render(w, r, http.StatusOK, "evals", "Evals", "Evals", p)
}

// evalPage is one eval: metric charts with intervals, win rates, latency,
// and answers side by side.
type evalPage struct {
	S        *eval.Summary
	Dir      string
	Chart    evalChart
	Samples  []evalSample
	Names    []string // candidates in summary order
	DataHref string   // the dataset version evaluated on, when it is stored here
}

// evalChart is what app.js draws: one small chart per metric, each a bar
// per candidate with its 95% interval as a whisker.
type evalChart struct {
	Candidates []string     `json:"candidates"`
	Metrics    []metricBars `json:"metrics"`
	// WinRate is over the candidates other than the reference.
	WinRate *metricBars `json:"win_rate,omitempty"`
	P50     []float64   `json:"p50"`
	P95     []float64   `json:"p95"`
}

type metricBars struct {
	Name  string      `json:"name"`
	Kind  string      `json:"kind"` // pct or usd
	Names []string    `json:"names"`
	Stats []*statJSON `json:"stats"` // null where the metric does not apply
}

type statJSON struct {
	Mean float64 `json:"mean"`
	Lo   float64 `json:"lo"`
	Hi   float64 `json:"hi"`
	N    int     `json:"n"`
}

func statOf(s *eval.Stat) *statJSON {
	if s == nil || s.N == 0 {
		return nil
	}
	return &statJSON{s.Mean, s.Lo, s.Hi, s.N}
}

type evalSample struct {
	Example, Prompt, Reference string
	Answers                    []evalAnswer
}

type evalAnswer struct {
	Candidate, Text string
	Exact           bool
	Failed          bool
}

func (h *Handler) handleEval(w http.ResponseWriter, r *http.Request) {
	id, dir := r.PathValue("id"), h.evalDir()
	ids, err := eval.List(dir)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "List evals under "+dir+".", err)
		return
	}
	// eval.Load also takes a path; only ids List found reach it.
	if !slices.Contains(ids, id) {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("No eval %q under %s; `foundry eval` writes one there.", id, dir), nil)
		return
	}
	s, err := eval.Load(dir, id)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "Read eval "+id+".", err)
		return
	}
	p := evalPage{S: s, Dir: filepath.Join(dir, id), Chart: viewEvalChart(s)}
	p.Names = p.Chart.Candidates
	p.DataHref, _ = datasetLink(h.opts.DataDir, s.Data)
	for _, smp := range s.Samples {
		es := evalSample{Example: smp.Example, Prompt: smp.Prompt, Reference: smp.Reference}
		for _, name := range p.Names {
			a, ok := smp.Answers[name]
			if !ok {
				continue
			}
			failed := len(a) >= 7 && a[:7] == "error: "
			es.Answers = append(es.Answers, evalAnswer{Candidate: name, Text: a, Failed: failed,
				Exact: !failed && eval.ExactMatch(a, smp.Reference) == 1})
		}
		p.Samples = append(p.Samples, es)
	}
	h.render(w, r, http.StatusOK, "eval", "Evals", "Eval "+s.ID, p)
}

func viewEvalChart(s *eval.Summary) evalChart {
	c := evalChart{Candidates: []string{}, Metrics: []metricBars{}, P50: []float64{}, P95: []float64{}}
	for _, cs := range s.Candidates {
		c.Candidates = append(c.Candidates, cs.Name)
		c.P50 = append(c.P50, cs.LatencyP50MS)
		c.P95 = append(c.P95, cs.LatencyP95MS)
	}
	metric := func(name, kind string, get func(*eval.CandidateSummary) *eval.Stat) {
		m := metricBars{Name: name, Kind: kind, Names: c.Candidates}
		some := false
		for i := range s.Candidates {
			st := statOf(get(&s.Candidates[i]))
			some = some || st != nil
			m.Stats = append(m.Stats, st)
		}
		if some {
			c.Metrics = append(c.Metrics, m)
		}
	}
	metric("Field accuracy", "pct", func(c *eval.CandidateSummary) *eval.Stat { return c.FieldAccuracy })
	metric("JSON valid", "pct", func(c *eval.CandidateSummary) *eval.Stat { return c.JSONValid })
	metric("Exact match", "pct", func(c *eval.CandidateSummary) *eval.Stat { return &c.ExactMatch })
	metric("ROUGE-L", "pct", func(c *eval.CandidateSummary) *eval.Stat { return &c.RougeL })
	metric("Cost per 1,000 requests", "usd", func(c *eval.CandidateSummary) *eval.Stat { return &c.CostPer1K })
	win := metricBars{Name: "Win rate vs " + s.Reference, Kind: "pct", Names: []string{}}
	for i := range s.Candidates {
		cs := &s.Candidates[i]
		if cs.Name == s.Reference || cs.WinRate == nil {
			continue
		}
		win.Names = append(win.Names, cs.Name)
		win.Stats = append(win.Stats, statOf(cs.WinRate))
	}
	if len(win.Names) > 0 {
		c.WinRate = &win
	}
	return c
}
