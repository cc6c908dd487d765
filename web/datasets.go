package web

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/foundryhq/foundry/dataset"
)

// datasetsPage lists the stored dataset versions, newest first within a name.
type datasetsPage struct {
	Dir      string
	Versions []datasetRow
}

type datasetRow struct {
	Name, Short, Href string
	CreatedAt         time.Time
	Train, Val, Test  int64
	Source            int64 // rows the sources produced
	Sources           string
	MeanTokens        int64
	TokensEstimated   bool   // MeanTokens is the characters/4 estimate
	TokensMethod      string // the counter, e.g. "tokenizer Qwen/Qwen3-0.6B"
}

func datasetHref(m *dataset.Manifest) string {
	return "/ui/datasets/" + url.PathEscape(m.Name) + "/" + url.PathEscape(m.Short())
}

func (h *Handler) handleDatasets(w http.ResponseWriter, r *http.Request) {
	vs, err := dataset.List(h.opts.DataDir)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "List datasets under "+h.opts.DataDir+": a version could not be read; check the directory or rebuild it.", err)
		return
	}
	p := datasetsPage{Dir: h.opts.DataDir}
	for _, v := range vs {
		m := v.Manifest
		row := datasetRow{Name: m.Name, Short: m.Short(), Href: datasetHref(m), CreatedAt: m.CreatedAt,
			Train: m.Rows["train"], Val: m.Rows["val"], Test: m.Rows["test"], Sources: sourceSummary(m.Spec)}
		if len(m.Funnel) > 0 {
			row.Source = m.Funnel[0].Out
		}
		if m.Tokens.Count > 0 {
			row.MeanTokens = m.Tokens.Total / m.Tokens.Count
		}
		row.TokensEstimated, row.TokensMethod = m.Tokens.Estimated(), m.Tokens.Label()
		p.Versions = append(p.Versions, row)
	}
	h.render(w, r, http.StatusOK, "datasets", "Datasets", "Datasets", p)
}

// datasetLink returns the page of the stored version a reference names:
// NAME@HASH (an eval's data) or a path inside a version's directory (a
// training job's data file), and the version's NAME@SHORT; "" when it
// names none.
func datasetLink(dataDir, ref string) (href, name string) {
	if ref == "" {
		return "", ""
	}
	vs, err := dataset.List(dataDir)
	if err != nil {
		return "", ""
	}
	dsName, hash, isRef := strings.Cut(ref, "@")
	for _, v := range vs {
		m := v.Manifest
		if (isRef && m.Name == dsName && hash != "" && strings.HasPrefix(m.Hash, hash)) ||
			(!isRef && strings.HasPrefix(filepath.Clean(ref), filepath.Clean(v.Dir)+string(filepath.Separator))) {
			return datasetHref(m), m.Ref()
		}
	}
	return "", ""
}

// sourceSummary names a spec's sources: "store (support-bot)", a file's base name.
func sourceSummary(s dataset.Spec) string {
	var parts []string
	for _, src := range s.Sources {
		switch {
		case src.Store != nil && len(src.Store.Routes) > 0:
			parts = append(parts, "store ("+strings.Join(src.Store.Routes, ", ")+")")
		case src.Store != nil:
			parts = append(parts, "store")
		default:
			f := src.File
			if i := strings.LastIndexAny(f, `/\`); i >= 0 {
				f = f[i+1:]
			}
			parts = append(parts, f)
		}
	}
	return strings.Join(parts, " + ")
}

// datasetPage is one version: its funnel, length histogram and sample rows.
type datasetPage struct {
	M        *dataset.Manifest
	Dir      string
	Short    string
	Funnel   []funnelStage
	Samples  []sampleView
	Versions []datasetRow // other versions of the same name
	Chart    histogramChart
}

// funnelStage is one bar of the funnel: widths are percentages of the
// largest stage's input, so bars shrink as rows leave.
type funnelStage struct {
	Stage         string
	In, Out       int64
	InPct, OutPct float64
	Dropped       []funnelReason
	Counters      []keyValue
}

type funnelReason struct {
	Reason  string
	Count   int64
	Pct     float64
	Details []string
}

type sampleView struct {
	Split, ID, Href, Source, Model string
	Score                          *float64
	Bubbles                        []bubble
}

// histogramChart is the token-length histogram as app.js draws it.
type histogramChart struct {
	Labels []string `json:"labels"`
	Counts []int64  `json:"counts"`
}

func (h *Handler) handleDataset(w http.ResponseWriter, r *http.Request) {
	name, hash := r.PathValue("name"), r.PathValue("hash")
	vs, err := dataset.List(h.opts.DataDir)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "List datasets under "+h.opts.DataDir+": a version could not be read; check the directory or rebuild it.", err)
		return
	}
	// Only versions List found are opened: the path never reaches the
	// file system as given.
	var v *dataset.Version
	p := datasetPage{Dir: h.opts.DataDir}
	for i := range vs {
		m := vs[i].Manifest
		if m.Name != name {
			continue
		}
		if m.Short() == hash || (v == nil && hash != "" && strings.HasPrefix(m.Hash, hash)) {
			v = &vs[i]
		}
		p.Versions = append(p.Versions, datasetRow{Name: m.Name, Short: m.Short(), Href: datasetHref(m), CreatedAt: m.CreatedAt,
			Train: m.Rows["train"], Val: m.Rows["val"], Test: m.Rows["test"]})
	}
	if v == nil {
		h.fail(w, r, http.StatusNotFound, "No dataset version "+name+"@"+hash+" under "+h.opts.DataDir+"; `foundry dataset list` shows the stored ones.", nil)
		return
	}
	m := v.Manifest
	p.M, p.Dir, p.Short = m, v.Dir, m.Short()
	p.Funnel = viewFunnel(m.Funnel)
	for _, b := range m.Tokens.Buckets {
		p.Chart.Labels = append(p.Chart.Labels, fmtInt(int64(b.Lo))+"–"+fmtInt(int64(b.Hi)))
		p.Chart.Counts = append(p.Chart.Counts, b.Count)
	}
	for _, s := range m.Sample {
		sv := sampleView{Split: s.Split, ID: s.ID, Source: s.Source, Model: s.Model, Score: s.Score}
		if s.Source == "store" && s.ID != "" {
			sv.Href = "/ui/requests/" + url.PathEscape(s.ID)
		}
		for _, msg := range s.Messages {
			sv.Bubbles = append(sv.Bubbles, messageBubble(msg))
		}
		p.Samples = append(p.Samples, sv)
	}
	h.render(w, r, http.StatusOK, "dataset", "Datasets", m.Ref(), p)
}

// maxReasonDetails bounds the dropped-row examples shown per reason.
const maxReasonDetails = 3

func viewFunnel(f dataset.Funnel) []funnelStage {
	var top int64
	for _, s := range f {
		top = max(top, s.In, s.Out)
	}
	pct := func(n int64) float64 {
		if top == 0 {
			return 0
		}
		return 100 * float64(n) / float64(top)
	}
	var out []funnelStage
	for _, s := range f {
		fs := funnelStage{Stage: s.Stage, In: s.In, Out: s.Out, InPct: pct(s.In), OutPct: pct(s.Out)}
		for _, d := range s.Dropped {
			fr := funnelReason{Reason: d.Reason, Count: d.Count, Pct: pct(d.Count)}
			for _, smp := range d.Samples {
				if len(fr.Details) == maxReasonDetails {
					break
				}
				what := smp.ID
				if what == "" && smp.Source != "" {
					what = smp.Source + ":" + fmtInt(int64(smp.Line))
				}
				if smp.Detail != "" {
					what = strings.TrimPrefix(what+": ", ": ") + smp.Detail
				}
				if what != "" {
					fr.Details = append(fr.Details, what)
				}
			}
			fs.Dropped = append(fs.Dropped, fr)
		}
		for k, n := range s.Counters {
			fs.Counters = append(fs.Counters, keyValue{k, fmtInt(n)})
		}
		sortKeyValues(fs.Counters)
		out = append(out, fs)
	}
	return out
}
