package web

import (
	"cmp"
	"errors"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/foundryhq/foundry/econ"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/route"
	"github.com/foundryhq/foundry/store"
)

// usagePage is the data of the Overview and Costs pages.
type usagePage struct {
	Window    window
	Windows   []window
	Usage     usage
	Chart     chartData
	Recent    []rowView      // Overview: the latest failed calls
	Flywheel  flywheel       // Overview
	BreakEven *breakEvenView // Costs
}

func (h *Handler) loadUsage(r *http.Request) (usagePage, error) {
	w := pickWindow(r.URL.Query().Get("window"))
	now := h.opts.Now()
	u, err := usageSeries(r.Context(), h.st, store.Query{Since: now.Add(-w.Span), Until: now}, w.Bucket)
	return usagePage{Window: w, Windows: windows, Usage: u, Chart: u.chart()}, err
}

func (h *Handler) handleOverview(w http.ResponseWriter, r *http.Request) {
	p, err := h.loadUsage(r)
	if err != nil {
		h.storeFailed(w, r, "sum up traffic", err)
		return
	}
	page, err := h.st.ListRecords(r.Context(), store.Query{Since: p.Usage.Since, Status: "error", Limit: 5})
	if err != nil {
		h.storeFailed(w, r, "list failed calls", err)
		return
	}
	for _, rec := range page.Records {
		p.Recent = append(p.Recent, rowView{RecordJSON: gateway.ViewRecord(rec, false), Href: "/ui/requests/" + rec.ID})
	}
	p.Flywheel = h.loadFlywheel(r.Context())
	h.render(w, r, http.StatusOK, "overview", "Overview", "Overview", p)
}

func (h *Handler) handleCosts(w http.ResponseWriter, r *http.Request) {
	p, err := h.loadUsage(r)
	if err != nil {
		h.storeFailed(w, r, "sum up spend", err)
		return
	}
	be, err := h.breakEven(r, p.Window)
	if err != nil {
		h.storeFailed(w, r, "work out the break-even", err)
		return
	}
	p.BreakEven = be
	if be.Report != nil {
		p.Chart.BreakEven = be.chart()
	}
	h.render(w, r, http.StatusOK, "costs", "Costs", "Costs", p)
}

// breakEvenView is the Costs page's break-even card: the form (prefilled
// with a guess) and econ's answer, or why there is none.
type breakEvenView struct {
	Teacher, Student, Training string // the form's values
	GPUHourly, Throughput      string // a self-hosted student's serving cost
	Guess                      string // where the defaults came from
	Report                     *econ.BreakEven
	Notes                      []string
	Problem                    string
}

// Requests is N* rounded up, for the card.
func (b *breakEvenView) Requests() int64 { return int64(math.Ceil(b.Report.Requests)) }

// Days is N* at the current volume; 0 when unknown.
func (b *breakEvenView) Days() float64 {
	if math.IsInf(b.Report.Days, 0) || math.IsNaN(b.Report.Days) {
		return 0
	}
	return b.Report.Days
}

// breakEvenChart is what app.js draws: cumulative cost of N requests on the
// teacher alone against training plus N on the student.
type breakEvenChart struct {
	TrainingUSD float64  `json:"training_usd"`
	Teacher     float64  `json:"teacher_per_request"`
	Student     float64  `json:"student_per_request"`
	NStar       *float64 `json:"n_star"` // null: the student never pays off
	PerDay      float64  `json:"requests_per_day"`
	TeacherName string   `json:"teacher"`
	StudentName string   `json:"student"`
}

func (b *breakEvenView) chart() *breakEvenChart {
	c := &breakEvenChart{TrainingUSD: b.Report.TrainingUSD, Teacher: b.Report.TeacherPerRequestUSD, Student: b.Report.StudentPerRequestUSD,
		PerDay: b.Report.RequestsPerDay, TeacherName: b.Report.Teacher, StudentName: b.Report.Student}
	if !b.Report.Never && !math.IsInf(b.Report.Requests, 0) {
		n := b.Report.Requests
		c.NStar = &n
	}
	return c
}

// breakEven answers the form, or a guess when it is empty: the teacher and
// student of the first route that has both (a cascade arm and the model it
// escalates to, else a canary's first and last arms), the newest finished
// training job's cost, and for a student without a price its serving cost.
func (h *Handler) breakEven(r *http.Request, win window) (*breakEvenView, error) {
	q := r.URL.Query()
	b := &breakEvenView{Teacher: strings.TrimSpace(q.Get("teacher")), Student: strings.TrimSpace(q.Get("student")), Training: strings.TrimSpace(q.Get("training_usd"))}
	var guessed []string
	if b.Teacher == "" || b.Student == "" {
		rvs, err := h.st.ListRoutes(r.Context())
		if err != nil {
			return nil, err
		}
		for _, rv := range rvs {
			t, s := teacherStudent(rv.Policy)
			if t != "" && s != "" {
				b.Teacher, b.Student = cmp.Or(b.Teacher, t), cmp.Or(b.Student, s)
				guessed = append(guessed, "the models of route "+rv.Name)
				break
			}
		}
	}
	training, trainingNote := 0.0, ""
	fromForm := b.Training != ""
	// The student's training job: the finished job whose directory is named
	// for it (NAME or NAME-adapter), else the newest finished one.
	var newest *trainJob
	if jobs, _, err := listJobs(h.opts.DataDir); err == nil {
		for _, j := range jobs {
			if j.Status != "succeeded" && j.Status != "stopped_early" {
				continue
			}
			if newest == nil {
				newest = j
			}
			if b.Student != "" && strings.TrimSuffix(filepath.Base(j.Dir), "-adapter") == b.Student {
				newest = j
				break
			}
		}
	}
	if !fromForm && newest != nil {
		training, b.Training = newest.Cost, strconv.FormatFloat(newest.Cost, 'g', 4, 64)
		trainingNote = "training job " + newest.ID
		guessed = append(guessed, "the cost of training job "+newest.ID)
	}
	if b.Teacher == "" || b.Student == "" {
		b.Guess = strings.Join(guessed, " and ")
		b.Problem = "Name a teacher and a student model to see when the student pays for its training. (A route with a canary or cascade of both fills them in.)"
		return b, nil
	}
	if fromForm {
		v, err := strconv.ParseFloat(b.Training, 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			b.Problem = "Training cost " + strconv.Quote(b.Training) + " is not a number of US dollars: give e.g. 12.50."
			return b, nil
		}
		training = v
	}
	now := h.opts.Now()
	since := now.Add(-win.Span)

	// A student the price table does not know is priced by its serving
	// cost: the form's, else the training machine's $/hour and the
	// generation rate its captured calls show.
	b.GPUHourly, b.Throughput = strings.TrimSpace(q.Get("gpu_hourly")), strings.TrimSpace(q.Get("student_tps"))
	var serving *econ.Serving
	if b.GPUHourly == "" && b.Throughput == "" {
		if _, priced := h.opts.Prices.Lookup(b.Student); !priced && newest != nil && newest.PricePerHour > 0 {
			tps, err := h.generationRate(r, b.Student, since, now)
			if err != nil {
				return nil, err
			}
			if tps > 0 {
				b.GPUHourly, b.Throughput = strconv.FormatFloat(newest.PricePerHour, 'g', 4, 64), strconv.FormatFloat(math.Round(tps), 'f', 0, 64)
				guessed = append(guessed, "serving at the training machine's $"+b.GPUHourly+"/hour and the "+b.Throughput+" tokens/s its captured calls show, one at a time")
			}
		}
	}
	if b.GPUHourly != "" || b.Throughput != "" {
		gpu, err1 := strconv.ParseFloat(b.GPUHourly, 64)
		tps, err2 := strconv.ParseFloat(b.Throughput, 64)
		if err1 != nil || err2 != nil {
			b.Guess = strings.Join(guessed, "; ")
			b.Problem = "A self-hosted student needs both its GPU price in $/hour and its generation rate in tokens/s, as numbers."
			return b, nil
		}
		serving = &econ.Serving{GPUHourlyUSD: gpu, TokensPerSecond: tps}
	}
	b.Guess = strings.Join(guessed, "; ")
	rep, err := econ.Build(r.Context(), h.st, econ.Options{Since: since, Until: now, Student: b.Student, Teacher: b.Teacher,
		TrainingUSD: training, TrainingNote: trainingNote, Serving: serving, Prices: h.opts.Prices, Now: h.opts.Now})
	var optErr *econ.OptionError
	if errors.As(err, &optErr) {
		// econ's messages name the CLI's flags; here they are the form's fields.
		b.Problem = strings.NewReplacer("costs: ", "", "(--gpu-hourly, --student-throughput)", "(the GPU $/hour and tokens/s fields)").Replace(optErr.Error())
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	b.Report, b.Notes = rep.BreakEven, rep.Notes
	return b, nil
}

// generationRate is the completion tokens per second of model's captured
// calls in the window, one call at a time (0 without calls): a floor on what
// the model serves under load.
func (h *Handler) generationRate(r *http.Request, model string, since, until time.Time) (float64, error) {
	bs, err := h.st.Usage(r.Context(), store.Query{Models: []string{model}, Since: since, Until: until, Status: "ok"}, until.Sub(since))
	if err != nil {
		return 0, err
	}
	var tokens int64
	var busy time.Duration
	for _, b := range bs {
		tokens += b.CompletionTokens
		busy += b.Latency
	}
	if busy <= 0 {
		return 0, nil
	}
	return float64(tokens) / busy.Seconds(), nil
}

// teacherStudent reads a route policy's teacher and student.
func teacherStudent(raw []byte) (teacher, student string) {
	p, err := route.ParsePolicy(raw)
	if err != nil {
		return "", ""
	}
	for _, a := range p.Arms {
		if a.EscalateTo != "" {
			return a.EscalateTo, a.Model
		}
	}
	if len(p.Arms) >= 2 {
		return p.Arms[0].Model, p.Arms[len(p.Arms)-1].Model
	}
	return "", ""
}
