package web

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/foundryhq/foundry/store"
)

// usage is traffic, tokens and spend over a window, in time buckets and in
// totals per model: what the Overview and Costs pages chart.
type usage struct {
	Since, Until time.Time
	Bucket       time.Duration
	Times        []int64 // bucket starts, Unix seconds

	Models []string    // by spend, then requests, descending
	Cost   [][]float64 // [model][bucket] USD
	Calls  [][]int64   // [model][bucket] requests

	Requests, Errors               []int64 // per bucket
	PromptTokens, CompletionTokens []int64
	P95MS                          []float64 // per bucket, 0 when empty

	Total    usageTotals
	PerModel []usageTotals // in Models order
}

type usageTotals struct {
	Model                          string
	Requests, Errors               int64
	PromptTokens, CompletionTokens int64
	CostUSD                        float64
	P50MS, P95MS                   float64
}

// ErrorRate is Errors/Requests, 0 without requests.
func (t usageTotals) ErrorRate() float64 {
	if t.Requests == 0 {
		return 0
	}
	return float64(t.Errors) / float64(t.Requests)
}

// CostPerCall is the mean spend per request.
func (t usageTotals) CostPerCall() float64 {
	if t.Requests == 0 {
		return 0
	}
	return t.CostUSD / float64(t.Requests)
}

// usageSeries buckets the records q selects (q.Since and q.Until set the
// window) by streaming them from the store. It stands in for a store-side
// rollup: the pages depend only on its result, so swapping the scan for
// store.Store.Rollup changes this function alone.
func usageSeries(ctx context.Context, st store.Store, q store.Query, bucket time.Duration) (usage, error) {
	start := q.Since.Truncate(bucket)
	n := max(1, int(math.Ceil(float64(q.Until.Sub(start))/float64(bucket))))
	u := usage{Since: q.Since, Until: q.Until, Bucket: bucket, Times: make([]int64, n),
		Requests: make([]int64, n), Errors: make([]int64, n), PromptTokens: make([]int64, n), CompletionTokens: make([]int64, n), P95MS: make([]float64, n)}
	for i := range u.Times {
		u.Times[i] = start.Add(time.Duration(i) * bucket).Unix()
	}
	type acc struct {
		totals    usageTotals
		cost      []float64
		calls     []int64
		latencies []float64
	}
	byModel := map[string]*acc{}
	var all []float64
	perBucket := make([][]float64, n)
	err := st.ScanRecords(ctx, q, func(r store.RecordWithFeedback) error {
		i := int(r.CreatedAt.Sub(start) / bucket)
		if i < 0 || i >= n {
			return nil
		}
		name := modelName(r.Record)
		a := byModel[name]
		if a == nil {
			a = &acc{totals: usageTotals{Model: name}, cost: make([]float64, n), calls: make([]int64, n)}
			byModel[name] = a
		}
		failed := r.Status >= 400 // as the store's status=error filter counts it
		lat := float64(r.Latency) / 1e6
		for _, t := range []*usageTotals{&a.totals, &u.Total} {
			t.Requests++
			t.PromptTokens += int64(r.PromptTokens)
			t.CompletionTokens += int64(r.CompletionTokens)
			t.CostUSD += r.CostUSD
			if failed {
				t.Errors++
			}
		}
		a.cost[i] += r.CostUSD
		a.calls[i]++
		u.Requests[i]++
		if failed {
			u.Errors[i]++
		}
		u.PromptTokens[i] += int64(r.PromptTokens)
		u.CompletionTokens[i] += int64(r.CompletionTokens)
		if lat > 0 {
			a.latencies = append(a.latencies, lat)
			all = append(all, lat)
			perBucket[i] = append(perBucket[i], lat)
		}
		return nil
	})
	if err != nil {
		return u, err
	}
	accs := make([]*acc, 0, len(byModel))
	for _, a := range byModel {
		a.totals.P50MS, a.totals.P95MS = percentile(a.latencies, 0.50), percentile(a.latencies, 0.95)
		accs = append(accs, a)
	}
	slices.SortFunc(accs, func(a, b *acc) int {
		return cmp.Or(cmp.Compare(b.totals.CostUSD, a.totals.CostUSD), cmp.Compare(b.totals.Requests, a.totals.Requests), cmp.Compare(a.totals.Model, b.totals.Model))
	})
	for _, a := range accs {
		u.Models = append(u.Models, a.totals.Model)
		u.Cost = append(u.Cost, a.cost)
		u.Calls = append(u.Calls, a.calls)
		u.PerModel = append(u.PerModel, a.totals)
	}
	u.Total.P50MS, u.Total.P95MS = percentile(all, 0.50), percentile(all, 0.95)
	for i, l := range perBucket {
		u.P95MS[i] = percentile(l, 0.95)
	}
	return u, nil
}

// modelName is what a call is accounted under: the upstream model, else the
// route the app asked for.
func modelName(r store.Record) string {
	switch {
	case r.Model != "":
		return r.Model
	case r.Route != "":
		return r.Route
	default:
		return "(unknown)"
	}
}

// percentile is the nearest-rank percentile of xs (sorted in place); 0 when empty.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(math.Ceil(p*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// window is a choice of time range with the bucket its charts use.
type window struct {
	Value, Label string
	Span, Bucket time.Duration
	BucketLabel  string
}

var windows = []window{
	{"1h", "Last hour", time.Hour, time.Minute, "1-minute"},
	{"6h", "Last 6 hours", 6 * time.Hour, 5 * time.Minute, "5-minute"},
	{"24h", "Last 24 hours", 24 * time.Hour, 30 * time.Minute, "30-minute"},
	{"7d", "Last 7 days", 7 * 24 * time.Hour, 3 * time.Hour, "3-hour"},
	{"30d", "Last 30 days", 30 * 24 * time.Hour, 12 * time.Hour, "12-hour"},
}

func pickWindow(v string) window {
	for _, w := range windows {
		if w.Value == v {
			return w
		}
	}
	return windows[2]
}

// chartData is usage as the charts in app.js read it (JSON in the page).
type chartData struct {
	T          []int64     `json:"t"`
	Bucket     int64       `json:"bucket"` // seconds
	Models     []string    `json:"models"`
	Cost       [][]float64 `json:"cost"`
	Requests   []int64     `json:"requests"`
	Errors     []int64     `json:"errors"`
	Prompt     []int64     `json:"prompt"`
	Completion []int64     `json:"completion"`
	ErrorRate  []*float64  `json:"error_rate"` // null where there were no calls
	P95MS      []float64   `json:"p95_ms"`
	// BreakEven is the Costs page's break-even chart; nil elsewhere.
	BreakEven *breakEvenChart `json:"breakeven,omitempty"`
}

// maxChartModels bounds the stacked series; the rest are summed as "other".
const maxChartModels = 8

func (u usage) chart() chartData {
	c := chartData{T: u.Times, Bucket: int64(u.Bucket / time.Second), Requests: u.Requests, Errors: u.Errors,
		Prompt: u.PromptTokens, Completion: u.CompletionTokens, P95MS: u.P95MS, Models: []string{}, Cost: [][]float64{}}
	for i, m := range u.Models {
		if i < maxChartModels {
			c.Models = append(c.Models, m)
			c.Cost = append(c.Cost, u.Cost[i])
			continue
		}
		if i == maxChartModels {
			c.Models = append(c.Models, "other")
			c.Cost = append(c.Cost, make([]float64, len(u.Times)))
		}
		for j, v := range u.Cost[i] {
			c.Cost[maxChartModels][j] += v
		}
	}
	for i, n := range u.Requests {
		if n == 0 {
			c.ErrorRate = append(c.ErrorRate, nil)
			continue
		}
		r := float64(u.Errors[i]) / float64(n)
		c.ErrorRate = append(c.ErrorRate, &r)
	}
	return c
}
