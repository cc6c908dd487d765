package econ

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/store"
)

// Groupings of a Report's rows.
const (
	ByModel   = "model"
	ByRoute   = "route"
	ByProject = "project"
	ByDay     = "day"
)

// NoProject labels the traffic of the admin key or of a gateway without auth.
const NoProject = "(none)"

// Options configure Build.
type Options struct {
	// Filter selects the traffic (project, routes, models...); its Since
	// and Until are replaced by the window below.
	Filter store.Query
	Since  time.Time // zero: 30 days before Until
	Until  time.Time // zero: now
	By     string    // ByModel (default), ByRoute, ByProject or ByDay

	Prices *pricing.Table // prices teacher and student when captured costs are missing; nil is pricing.New(nil)

	// Break-even, when Student and Teacher are set: the teacher's traffic
	// in the window is what the student would take over.
	Student, Teacher string
	TrainingUSD      float64
	TrainingNote     string   // where TrainingUSD came from (a job), for the report
	Serving          *Serving // the student is self-hosted at this cost; nil: priced from Prices

	Revenue Revenue
	Now     func() time.Time // nil: time.Now
}

// Row is the traffic and spend of one group.
type Row struct {
	Key              string  `json:"key"`
	Requests         int64   `json:"requests"`
	Errors           int64   `json:"errors"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	CostUSD          float64 `json:"cost_usd"`
	CostPer1KUSD     float64 `json:"cost_per_1k_usd"`
	MeanLatencyMS    float64 `json:"mean_latency_ms"`
	RevenueUSD       float64 `json:"revenue_usd,omitempty"` // per-request revenue only
	latency          time.Duration
}

func (r *Row) add(requests, errs, prompt, completion int64, cost float64, latency time.Duration) {
	r.Requests += requests
	r.Errors += errs
	r.PromptTokens += prompt
	r.CompletionTokens += completion
	r.CostUSD += cost
	r.latency += latency
}

func (r *Row) finish(rev Revenue) {
	if r.Requests > 0 {
		r.CostPer1KUSD = r.CostUSD / float64(r.Requests) * 1000
		r.MeanLatencyMS = float64(r.latency/time.Duration(r.Requests)) / 1e6
	}
	r.RevenueUSD = float64(r.Requests) * rev.PerRequestUSD
}

// Report is the economics of a window of traffic.
type Report struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	Days  float64   `json:"days"`
	By    string    `json:"by"`
	Rows  []Row     `json:"rows"` // by cost, highest first; days oldest first
	Total Row       `json:"total"`

	RevenueUSD float64  `json:"revenue_usd,omitempty"`
	MarginUSD  float64  `json:"margin_usd,omitempty"` // revenue − cost
	Margin     float64  `json:"margin,omitempty"`     // margin ÷ revenue
	Revenue    *Revenue `json:"revenue_terms,omitempty"`

	BreakEven *BreakEven `json:"break_even,omitempty"`
	Notes     []string   `json:"notes,omitempty"` // assumptions the numbers rest on
}

// Build reports the traffic of o's window from st.
//
// Model and day rows come from st.Usage (the database's own roll-up).
// Project rows call Usage once per project, the projects listed from the
// API keys (every record's project is its key's), the rest being NoProject.
// Route rows scan the records: the Store has no roll-up by route and no
// way to list routes other than reading the records, so one streaming
// pass sums them in memory per route (it reads the request and response
// bodies too; a store-side GROUP BY route would avoid that).
func Build(ctx context.Context, st store.Store, o Options) (*Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Prices == nil {
		o.Prices = pricing.New(nil)
	}
	if o.Until.IsZero() {
		o.Until = o.Now()
	}
	if o.Since.IsZero() {
		o.Since = o.Until.Add(-30 * 24 * time.Hour)
	}
	if !o.Since.Before(o.Until) {
		return nil, optionErrorf("costs: the window %s to %s is empty: since must be before until", o.Since.Format(time.RFC3339), o.Until.Format(time.RFC3339))
	}
	if o.By == "" {
		o.By = ByModel
	}
	q := o.Filter
	q.Since, q.Until, q.Cursor, q.Limit = o.Since, o.Until, "", 0
	r := &Report{Since: o.Since.UTC(), Until: o.Until.UTC(), Days: o.Until.Sub(o.Since).Hours() / 24, By: o.By}

	rows := map[string]*Row{}
	row := func(k string) *Row {
		if rows[k] == nil {
			rows[k] = &Row{Key: k}
		}
		return rows[k]
	}
	switch o.By {
	case ByModel, ByDay:
		// Buckets are aligned to the Unix epoch, so a window-wide bucket may
		// split the window in two; rows sum over buckets.
		bucket := r.Until.Sub(r.Since) + time.Second
		if o.By == ByDay {
			bucket = 24 * time.Hour
		}
		us, err := st.Usage(ctx, q, bucket)
		if err != nil {
			return nil, fmt.Errorf("costs: usage: %w", err)
		}
		for _, u := range us {
			k := u.Model
			if o.By == ByDay {
				k = u.Start.UTC().Format("2006-01-02")
			}
			row(k).add(u.Requests, u.Errors, u.PromptTokens, u.CompletionTokens, u.CostUSD, u.Latency)
		}
	case ByProject:
		keys, err := st.ListKeys(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("costs: list projects: %w", err)
		}
		projects := map[string]bool{}
		for _, k := range keys {
			if k.Project != "" {
				projects[k.Project] = true
			}
		}
		if q.Project != "" {
			projects = map[string]bool{q.Project: true}
		}
		total, err := usageTotal(ctx, st, q)
		if err != nil {
			return nil, err
		}
		rest := total
		for p := range projects {
			pq := q
			pq.Project = p
			t, err := usageTotal(ctx, st, pq)
			if err != nil {
				return nil, err
			}
			if t.Requests == 0 {
				continue
			}
			t.Key = p
			rows[p] = &t
			rest.Requests -= t.Requests
			rest.Errors -= t.Errors
			rest.PromptTokens -= t.PromptTokens
			rest.CompletionTokens -= t.CompletionTokens
			rest.CostUSD -= t.CostUSD
			rest.latency -= t.latency
		}
		if rest.Requests > 0 {
			rest.Key = NoProject
			rows[NoProject] = &rest
		}
	case ByRoute:
		err := st.ScanRecords(ctx, q, func(rec store.RecordWithFeedback) error {
			e := int64(0)
			if rec.Status >= 400 {
				e = 1
			}
			row(rec.Route).add(1, e, int64(rec.PromptTokens), int64(rec.CompletionTokens), rec.CostUSD, rec.Latency)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("costs: scan records by route: %w", err)
		}
	default:
		return nil, optionErrorf("costs: cannot group by %q: use model, route, project or day", o.By)
	}
	for _, rw := range rows {
		rw.finish(o.Revenue)
		r.Rows = append(r.Rows, *rw)
		r.Total.add(rw.Requests, rw.Errors, rw.PromptTokens, rw.CompletionTokens, rw.CostUSD, rw.latency)
	}
	sort.Slice(r.Rows, func(i, j int) bool {
		a, b := r.Rows[i], r.Rows[j]
		if o.By == ByDay {
			return a.Key < b.Key
		}
		if a.CostUSD != b.CostUSD {
			return a.CostUSD > b.CostUSD
		}
		if a.Requests != b.Requests {
			return a.Requests > b.Requests
		}
		return a.Key < b.Key
	})
	r.Total.Key = "total"
	r.Total.finish(o.Revenue)

	if !o.Revenue.Zero() {
		rev := o.Revenue
		r.Revenue = &rev
		r.RevenueUSD = rev.Earned(r.Total.Requests, r.Days)
		r.MarginUSD = r.RevenueUSD - r.Total.CostUSD
		if r.RevenueUSD > 0 {
			r.Margin = r.MarginUSD / r.RevenueUSD
		}
	}
	if o.Student != "" || o.Teacher != "" {
		be, notes, err := breakEven(ctx, st, q, r.Days, o)
		if err != nil {
			return nil, err
		}
		r.BreakEven, r.Notes = &be, append(r.Notes, notes...)
	}
	return r, nil
}

// usageTotal sums st.Usage over q in one bucket.
func usageTotal(ctx context.Context, st store.Store, q store.Query) (Row, error) {
	us, err := st.Usage(ctx, q, q.Until.Sub(q.Since)+time.Second)
	if err != nil {
		return Row{}, fmt.Errorf("costs: usage: %w", err)
	}
	var t Row
	for _, u := range us {
		t.add(u.Requests, u.Errors, u.PromptTokens, u.CompletionTokens, u.CostUSD, u.Latency)
	}
	return t, nil
}

// breakEven prices a request of the teacher's current traffic on the
// teacher and on the student.
func breakEven(ctx context.Context, st store.Store, q store.Query, days float64, o Options) (BreakEven, []string, error) {
	if o.Student == "" || o.Teacher == "" {
		return BreakEven{}, nil, optionErrorf("costs: the break-even needs both a student and a teacher model")
	}
	if o.TrainingUSD < 0 || math.IsNaN(o.TrainingUSD) || math.IsInf(o.TrainingUSD, 0) {
		return BreakEven{}, nil, optionErrorf("costs: training cost %v: give a non-negative number of USD", o.TrainingUSD)
	}
	var notes []string
	tq := q
	tq.Models = []string{o.Teacher}
	teacher, err := usageTotal(ctx, st, tq)
	if err != nil {
		return BreakEven{}, nil, err
	}
	traffic := teacher
	if teacher.Requests == 0 {
		all, err := usageTotal(ctx, st, q)
		if err != nil {
			return BreakEven{}, nil, err
		}
		traffic = all
		notes = append(notes, fmt.Sprintf("no traffic to the teacher %q in the window: volume and request size are those of all traffic", o.Teacher))
	}
	if traffic.Requests == 0 {
		return BreakEven{}, nil, optionErrorf("costs: no traffic in the window to size a request by: widen --since, or send traffic through the gateway first")
	}
	prompt := float64(traffic.PromptTokens) / float64(traffic.Requests)
	completion := float64(traffic.CompletionTokens) / float64(traffic.Requests)
	perDay := float64(traffic.Requests) / days

	var teacherCost float64
	var teacherBasis string
	if teacher.Requests > 0 && teacher.CostUSD > 0 {
		teacherCost = teacher.CostUSD / float64(teacher.Requests)
		teacherBasis = fmt.Sprintf("captured: $%.4f over %d requests", teacher.CostUSD, teacher.Requests)
	} else {
		p, ok := o.Prices.Lookup(o.Teacher)
		if !ok {
			return BreakEven{}, nil, optionErrorf("costs: no price for the teacher %q and no captured cost: add it to the config's prices section", o.Teacher)
		}
		teacherCost = tokenCost(p, prompt, completion)
		teacherBasis = fmt.Sprintf("price table: $%g in / $%g out per 1M tokens", p.Input, p.Output)
	}
	teacherBasis += fmt.Sprintf("; %.0f prompt + %.0f completion tokens a request", prompt, completion)

	var studentCost float64
	var studentBasis string
	switch {
	case o.Serving != nil:
		if err := o.Serving.Check(); err != nil {
			return BreakEven{}, nil, optionErrorf("costs: student serving: %v", err)
		}
		studentCost = tokenCost(o.Serving.Price(), prompt, completion)
		studentBasis = fmt.Sprintf("self-hosted: $%g/hour at %g tokens/s = $%.4f per 1M generated tokens", o.Serving.GPUHourlyUSD, o.Serving.TokensPerSecond, o.Serving.PerMillionTokens())
	default:
		p, ok := o.Prices.Lookup(o.Student)
		if !ok {
			return BreakEven{}, nil, optionErrorf("costs: no cost for the student %q: give its GPU price and throughput (--gpu-hourly, --student-throughput) or a price in the config", o.Student)
		}
		studentCost = tokenCost(p, prompt, completion)
		studentBasis = fmt.Sprintf("price table: $%g in / $%g out per 1M tokens", p.Input, p.Output)
	}
	if o.Serving != nil {
		sq := q
		sq.Models = []string{o.Student}
		stu, err := usageTotal(ctx, st, sq)
		if err != nil {
			return BreakEven{}, nil, err
		}
		if stu.Requests > 0 && stu.CostUSD == 0 {
			notes = append(notes, fmt.Sprintf("the student's %d captured calls cost $0 above: they were captured without a price. "+
				"To count self-hosted serving as calls are captured, add to the config: prices: {%q: {input: 0, output: %.4g}}",
				stu.Requests, o.Student, o.Serving.PerMillionTokens()))
		}
	}
	be := NewBreakEven(o.TrainingUSD, teacherCost, studentCost, perDay)
	be.Student, be.Teacher, be.TeacherBasis, be.StudentBasis, be.TrainingNote = o.Student, o.Teacher, teacherBasis, studentBasis, o.TrainingNote
	return be, notes, nil
}

// OptionError is an error in Build's options or one they cannot be
// answered with (an unknown grouping, no price for a model): the caller's
// to fix, a 400 over HTTP.
type OptionError struct{ msg string }

func (e *OptionError) Error() string { return e.msg }

func optionErrorf(format string, args ...any) error {
	return &OptionError{fmt.Sprintf(format, args...)}
}

func tokenCost(p pricing.Price, prompt, completion float64) float64 {
	return (prompt*p.Input + completion*p.Output) / 1e6
}

// WriteText renders the report as plain-text tables.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Costs %s → %s (%.1f days), by %s\n\n", r.Since.Format("2006-01-02 15:04"), r.Until.Format("2006-01-02 15:04 UTC"), r.Days, r.By)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	rev := r.Revenue != nil && r.Revenue.PerRequestUSD > 0
	fmt.Fprintf(tw, "%s\tREQUESTS\tERRORS\tPROMPT TOKENS\tCOMPLETION TOKENS\tCOST\t$ / 1K REQUESTS\tMEAN LATENCY\t", strings.ToUpper(r.By))
	if rev {
		fmt.Fprint(tw, "REVENUE\t")
	}
	fmt.Fprintln(tw)
	line := func(x Row) {
		key := x.Key
		if key == "" {
			key = "(empty)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f ms\t", key, FormatCount(x.Requests), FormatCount(x.Errors), FormatCount(x.PromptTokens),
			FormatCount(x.CompletionTokens), usd(x.CostUSD), usd(x.CostPer1KUSD), x.MeanLatencyMS)
		if rev {
			fmt.Fprintf(tw, "%s\t", usd(x.RevenueUSD))
		}
		fmt.Fprintln(tw)
	}
	for _, x := range r.Rows {
		line(x)
	}
	line(r.Total)
	tw.Flush()
	if r.Revenue != nil {
		fmt.Fprintf(&b, "\nRevenue %s, cost %s, margin %s (%.1f%%)\n", usd(r.RevenueUSD), usd(r.Total.CostUSD), usd(r.MarginUSD), r.Margin*100)
	}
	if be := r.BreakEven; be != nil {
		fmt.Fprintf(&b, "\nBreak-even: student %q instead of teacher %q\n", be.Student, be.Teacher)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		training := usd(be.TrainingUSD)
		if be.TrainingNote != "" {
			training += " (" + be.TrainingNote + ")"
		}
		fmt.Fprintf(tw, "  training cost\t%s\n", training)
		fmt.Fprintf(tw, "  teacher cost / request\t%s (%s)\n", usd(be.TeacherPerRequestUSD), be.TeacherBasis)
		fmt.Fprintf(tw, "  student cost / request\t%s (%s)\n", usd(be.StudentPerRequestUSD), be.StudentBasis)
		fmt.Fprintf(tw, "  saving / request\t%s\n", usd(be.SavingPerRequestUSD))
		if be.Never {
			fmt.Fprintf(tw, "  break-even\tnever: the student costs as much or more per request than the teacher\n")
		} else {
			fmt.Fprintf(tw, "  break-even after\t%s requests\n", FormatCount(int64(math.Ceil(be.Requests))))
			if math.IsInf(be.Days, 0) {
				fmt.Fprintf(tw, "  at current volume\tno traffic: never at this volume\n")
			} else {
				fmt.Fprintf(tw, "  at current volume\t%.1f requests/day → %.1f days\n", be.RequestsPerDay, be.Days)
			}
		}
		fmt.Fprintf(tw, "  monthly savings\t%s (30 days at current volume, once training is paid for)\n", usd(be.MonthlySavingsUSD))
		tw.Flush()
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nnote: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// usd formats dollars with enough digits for per-request costs.
func usd(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "$0"
	case a >= 100:
		return fmt.Sprintf("$%.2f", v)
	case a >= 0.01:
		return fmt.Sprintf("$%.4f", v)
	default:
		return fmt.Sprintf("$%.3g", v)
	}
}

// FormatCount writes an integer with thousands separators (1,234,567), as
// the reports and the dashboard show counts.
func FormatCount(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
