package web

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/route"
)

// chartJSON decodes a page's chart data into v.
func chartJSON(t *testing.T, body string, v any) {
	t.Helper()
	m := reChartData.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the page has no chart data:\n%.2000s", body)
	}
	if err := json.Unmarshal([]byte(m[1]), v); err != nil {
		t.Fatalf("chart data is not JSON: %v\n%.500s", err, m[1])
	}
}

// mustContain fails for every s the body lacks.
func mustContain(t *testing.T, what, body string, ss ...string) {
	t.Helper()
	for _, s := range ss {
		if !strings.Contains(body, s) {
			t.Errorf("%s lacks %q", what, s)
		}
	}
}

// escaped fails when the fixture's XSS text reaches the page as markup.
func escaped(t *testing.T, path, body string) {
	t.Helper()
	for _, bad := range []string{"<script>alert(1)", "<img src=x"} {
		if strings.Contains(body, bad) {
			t.Errorf("GET %s renders %q unescaped", path, bad)
		}
	}
	if strings.Count(body, "</script>") != strings.Count(body, "<script") {
		t.Errorf("GET %s: something broke out of a script element", path)
	}
}

func TestDatasetPages(t *testing.T) {
	d := newDash(t, dashOpts{pages: true})
	m := d.fx.dataset.Manifest
	href := "/ui/datasets/" + fxDataset + "/" + m.Short()

	list := d.page("/ui/datasets")
	mustContain(t, "datasets list", list, `href="`+href+`"`, m.Short(), "tickets.jsonl",
		fmt.Sprintf("%d / %d / %d", m.Rows["train"], m.Rows["val"], m.Rows["test"]))

	body := d.page(href)
	escaped(t, href, body)
	// The funnel: every stage with its counts, and the planted faults under their reasons.
	for _, s := range m.Funnel {
		mustContain(t, "funnel", body, "<strong>"+s.Stage+"</strong>", fmtInt(s.In)+" → "+fmtInt(s.Out))
	}
	mustContain(t, "funnel", body, "− exact duplicate", "− answer is not valid JSON", "− empty answer")
	if n := m.Funnel.Stage("validate").DroppedFor("answer is not valid JSON"); n != 1 {
		t.Errorf("the fixture's validate stage dropped %d rows as invalid JSON, want 1", n)
	}
	// Bars are as wide as their share of the source.
	src := m.Funnel[0]
	last := m.Funnel[len(m.Funnel)-1]
	wantOut := fmt.Sprintf(`style="width: %v%%"`, 100*float64(last.Out)/float64(src.In))
	if !strings.Contains(body, wantOut) {
		t.Errorf("the last stage's bar is not %s wide", wantOut)
	}
	// Sample rows as chat bubbles, user text escaped.
	mustContain(t, "samples", body, `class="bubble role-system"`, `class="bubble role-assistant"`, "Triage the ticket.",
		"&lt;script&gt;alert(1)&lt;/script&gt;", `data-chart="histogram"`)
	var h histogramChart
	chartJSON(t, body, &h)
	var total int64
	for _, c := range h.Counts {
		total += c
	}
	if total != m.Tokens.Count || len(h.Labels) != len(m.Tokens.Buckets) || len(h.Labels) == 0 {
		t.Errorf("histogram: %d rows in %d buckets, want %d in %d", total, len(h.Labels), m.Tokens.Count, len(m.Tokens.Buckets))
	}

	// A hash prefix finds the version; anything else is a 404, and paths stay inside the data dir.
	d.page("/ui/datasets/" + fxDataset + "/" + m.Short()[:6])
	for _, p := range []string{"/ui/datasets/nope/abc", "/ui/datasets/" + fxDataset + "/ffffffff", "/ui/datasets/..%2F..%2Fetc/x"} {
		if code, _, _ := d.get(p); code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, code)
		}
	}
}

func TestTrainingPages(t *testing.T) {
	d := newDash(t, dashOpts{pages: true})
	list := d.page("/ui/training")
	escaped(t, "/ui/training", list)
	if !strings.Contains(list, `hx-trigger="every 5s"`) {
		t.Error("the jobs list does not poll while a job runs")
	}
	mustContain(t, "jobs list", list, `href="/ui/training/`+fxJob+`"`, `href="/ui/training/`+fxJobLive+`"`,
		`<span class="status ok">succeeded</span>`, `<span class="status warn">running</span>`,
		"tiny-llama-&lt;script&gt;", "120 / 120", "42m0s", fmtUSD(fxTrainUSD))
	// Newest first: the running job started later.
	if strings.Index(list, fxJobLive) > strings.Index(list, fxJob+`"`) {
		t.Error("jobs are not listed newest first")
	}

	path := "/ui/training/" + fxJob
	body := d.page(path)
	escaped(t, path, body)
	mustContain(t, "job page", body, `on <a href="/ui/datasets/`+fxDataset+`/`+d.fx.dataset.Manifest.Short()+`">`, `data-chart="loss"`, "LoRA rank 8", "<dt>lora.Rank</dt><dd><code>8</code></dd>",
		"<dt>adapter</dt>", "job.json", "<dt>lr</dt>")
	if strings.Contains(body, `hx-trigger="every`) {
		t.Error("a finished job's page still polls")
	}
	var c lossChart
	chartJSON(t, body, &c)
	val := 0
	for i, v := range c.Val {
		if v != nil {
			val++
			if c.Steps[i]%20 != 0 {
				t.Errorf("a validation point sits at step %d, not at an evaluation", c.Steps[i])
			}
		}
	}
	if len(c.Steps) != 120 || c.Train[0] == nil || val != 6 {
		t.Errorf("loss chart: %d steps, %d validation points; want 120 and 6", len(c.Steps), val)
	}

	// A running job polls its live part, which carries the curves.
	live := d.page("/ui/training/" + fxJobLive)
	mustContain(t, "running job page", live, `hx-get="/ui/training/`+fxJobLive+`" hx-trigger="every 3s"`)
	part := d.page("/ui/training/"+fxJobLive, "HX-Request", "true")
	if strings.Contains(part, "<html") || !strings.Contains(part, `id="job-live"`) || !strings.Contains(part, "30 / 200") {
		t.Errorf("the live part is not just the job's numbers:\n%.1500s", part)
	}
	m := regexp.MustCompile(`data-loss="([^"]*)"`).FindStringSubmatch(part)
	var lc lossChart
	if m == nil || json.Unmarshal([]byte(html.UnescapeString(m[1])), &lc) != nil || len(lc.Steps) != 30 {
		t.Errorf("the live part's data-loss does not hold 30 steps: %v", m)
	}

	if code, _, _ := d.get("/ui/training/nope"); code != http.StatusNotFound {
		t.Errorf("unknown job: status %d, want 404", code)
	}

	// A damaged job.json is reported; the other jobs still show.
	bad := filepath.Join(d.fx.dataDir, "jobs", "broken", "job.json")
	if err := os.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"id": "broken", "status": `), 0o644); err != nil {
		t.Fatal(err)
	}
	list = d.page("/ui/training")
	mustContain(t, "jobs list with a damaged job", list, "is not a training job&#39;s record", `href="/ui/training/`+fxJob+`"`)
}

func TestEvalPages(t *testing.T) {
	d := newDash(t, dashOpts{pages: true})
	list := d.page("/ui/evals")
	mustContain(t, "evals list", list, `href="/ui/evals/`+fxEval+`"`, fxStudent+" 91.0%", "gpt-4o-judge")

	path := "/ui/evals/" + fxEval
	body := d.page(path)
	escaped(t, path, body)
	mustContain(t, "eval page", body, `<a href="/ui/datasets/`+fxDataset+`/`+d.fx.dataset.Manifest.Short()+`">`, `data-chart="metric"`, `data-chart="winrate"`, `data-chart="latency"`,
		"Win rate vs "+fxTeacher, "<td class=\"num\">22</td>", // the tally
		`class="answer match"`, `class="answer miss"`, `class="answer failed"`, // side by side, judged against the reference
		"&lt;script&gt;alert(1)&lt;/script&gt;")
	var c evalChart
	chartJSON(t, body, &c)
	names := []string{}
	for _, m := range c.Metrics {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, ","); got != "Field accuracy,JSON valid,Exact match,ROUGE-L,Cost per 1,000 requests" {
		t.Errorf("metrics charted: %s", got)
	}
	fa := c.Metrics[0].Stats[1]
	if fa == nil || fa.Mean != 0.91 || fa.Lo != 0.85 || fa.Hi != 0.96 {
		t.Errorf("the student's field accuracy %+v, want 0.91 in [0.85, 0.96]", fa)
	}
	if c.WinRate == nil || len(c.WinRate.Names) != 1 || c.WinRate.Names[0] != fxStudent || c.WinRate.Stats[0].Mean != 0.64 {
		t.Errorf("win rate chart %+v, want the student alone at 0.64", c.WinRate)
	}
	if len(c.P95) != 2 || c.P95[0] != 2900 || c.P50[1] != 180 {
		t.Errorf("latency: p50 %v p95 %v", c.P50, c.P95)
	}
	// eval.Load also reads paths: the page only opens evals the data dir lists.
	for _, p := range []string{"/ui/evals/nope", "/ui/evals/" + url.PathEscape("../evals/"+fxEval), "/ui/evals/%2Ftmp"} {
		if code, _, _ := d.get(p); code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, code)
		}
	}
}

func TestRoutePages(t *testing.T) {
	d := newDash(t, dashOpts{pages: true})
	perArm, esc := d.fx.routeCounts(d.now)

	list := d.page("/ui/routes")
	mustContain(t, "routes list", list, `href="/ui/routes/`+fxRoute+`"`, `href="/ui/routes/embeddings"`,
		"teacher 90%", "student 10%", "auto-rollback", "v3", `<td class="num">`+fmtInt(int64(len(d.fx.routed)))+`</td>`)

	path := "/ui/routes/" + fxRoute
	body := d.page(path)
	escaped(t, path, body)
	mustContain(t, "route page", body, `data-chart="split"`, `data-chart="escalations"`,
		`<strong id="route-requests">`+fmtInt(int64(perArm["teacher"]+perArm["student"]))+`</strong>`,
		"automatic rollback", "student feedback 0.41 below 0.6", "ramp up &lt;script&gt;", "by alice")
	// The timeline is newest first, the live version marked.
	if i, j := strings.Index(body, "<strong>v3</strong>"), strings.Index(body, "<strong>v1</strong>"); i < 0 || j < 0 || i > j {
		t.Error("the history is not newest first")
	}
	var c splitChart
	chartJSON(t, body, &c)
	got := map[string]int{}
	for i, arm := range c.Arms {
		for _, n := range c.Calls[i] {
			got[arm] += int(n)
		}
	}
	var gotEsc int
	for _, n := range c.Escalations {
		gotEsc += int(n)
	}
	if got["teacher"] != perArm["teacher"] || got["student"] != perArm["student"] || len(got) != 2 || gotEsc != esc || esc == 0 {
		t.Errorf("split chart %v with %d escalations, want %v and %d", got, gotEsc, perArm, esc)
	}
	if len(c.Versions) != 2 || c.Versions[1].Kind != "rollback" || c.Versions[0].Kind != "change" {
		t.Errorf("version markers %+v, want v2 (change) and v3 (rollback)", c.Versions)
	}
	// A shorter window counts only its calls.
	lastHour := 0
	for _, r := range d.fx.routed {
		if r.ParentID == "" && !r.CreatedAt.Before(d.now.Add(-time.Hour)) {
			lastHour++
		}
	}
	short := d.page(path + "?window=1h")
	if lastHour == 0 || lastHour == perArm["teacher"]+perArm["student"] || !strings.Contains(short, `<strong id="route-requests">`+fmtInt(int64(lastHour))+`</strong>`) {
		t.Errorf("?window=1h does not show the %d calls of the last hour", lastHour)
	}
	if code, _, body := d.get("/ui/routes/nope"); code != http.StatusNotFound || !strings.Contains(body, "foundry route set") {
		t.Errorf("unknown route: status %d, want 404 with how to create one", code)
	}
}

func TestRoutePageShowsLiveStats(t *testing.T) {
	pass := route.Quality{Value: 0.875, N: 40}
	d := newDash(t, dashOpts{pages: true, routeStats: func(name string) (route.Stats, bool) {
		if name != fxRoute {
			return route.Stats{}, false
		}
		return route.Stats{Route: fxRoute, Version: 3, Arms: []route.ArmStats{
			{Arm: "teacher", Model: fxTeacher, Requests: 90, Errors: 1},
			{Arm: "student", Model: fxStudent, Requests: 10, Escalations: 2, PassRate: &pass},
		}}, true
	}})
	body := d.page("/ui/routes/" + fxRoute)
	mustContain(t, "route page", body, "Live, since v3 went live", "<td>student</td><td class=\"num\">10</td>", "87.5% <span class=\"muted\">n=40</span>")
	if body := d.page("/ui/routes/embeddings"); strings.Contains(body, "Live, since") {
		t.Error("a route the router does not serve shows live numbers")
	}
}

func TestCostsBreakEven(t *testing.T) {
	d := newDash(t, dashOpts{pages: true, records: 50})
	body := d.page("/ui/costs")
	escaped(t, "/ui/costs", body)
	mustContain(t, "costs page", body, `data-chart="breakeven"`, `value="`+fxTeacher+`"`, `value="`+fxStudent+`"`,
		"the models of route "+fxRoute, "training job "+fxJob, `id="n-star"`)
	var c chartData
	chartJSON(t, body, &c)
	b := c.BreakEven
	if b == nil || b.NStar == nil || b.TrainingUSD != fxTrainUSD || b.Teacher <= b.Student || b.TeacherName != fxTeacher {
		t.Fatalf("break-even chart %+v", b)
	}
	// N* is where the lines cross: training + N×student = N×teacher.
	if n := fxTrainUSD / (b.Teacher - b.Student); !near(n, *b.NStar) {
		t.Errorf("N* %.3f, want %.3f", *b.NStar, n)
	}
	if !strings.Contains(body, `<strong id="n-star">`+fmtInt(int64(*b.NStar+0.999999))+`</strong>`) {
		t.Errorf("the card does not state N* = %.0f", *b.NStar)
	}

	// The form overrides the guess; a student without a price is explained.
	body = d.page("/ui/costs?teacher=" + fxTeacher + "&student=mystery-model&training_usd=3")
	mustContain(t, "costs page with an unpriced student", body, `no cost for the student &#34;mystery-model&#34;`)
	body = d.page("/ui/costs?teacher=" + fxTeacher + "&student=" + fxStudent + "&training_usd=lots")
	mustContain(t, "costs page with a bad training cost", body, "is not a number of US dollars")
	// A student dearer than its teacher never pays off: no N*, and the card says so.
	body = d.page("/ui/costs?teacher=" + fxStudent + "&student=" + fxTeacher + "&training_usd=1")
	mustContain(t, "costs page with a dearer student", body, "never pays off", `data-chart="breakeven"`)
	chartJSON(t, body, &c)
	if c.BreakEven == nil || c.BreakEven.NStar != nil {
		t.Errorf("a student that never pays off charted %+v, want no N*", c.BreakEven)
	}
	body = d.page("/ui/costs?teacher=" + fxTeacher + "&student=" + fxStudent + "&training_usd=30")
	chartJSON(t, body, &c)
	if c.BreakEven == nil || c.BreakEven.TrainingUSD != 30 {
		t.Errorf("training_usd=30 charted %+v", c.BreakEven)
	}
}

// A self-hosted student the price table does not know is priced by its
// serving cost: the training machine's $/hour and its measured rate.
func TestCostsBreakEvenSelfHostedStudent(t *testing.T) {
	d := newDash(t, dashOpts{pages: true, prices: pricing.New(nil)})
	body := d.page("/ui/costs")
	mustContain(t, "costs page", body, `name="gpu_hourly" value="2.5"`, "tokens/s its captured calls show", `id="n-star"`, "self-hosted: $2.5/hour")
	var c chartData
	chartJSON(t, body, &c)
	if c.BreakEven == nil || c.BreakEven.Student <= 0 || c.BreakEven.NStar == nil {
		t.Fatalf("break-even %+v, want a priced student and an N*", c.BreakEven)
	}
	// The form's serving cost wins; half a pair is explained.
	body = d.page("/ui/costs?teacher=" + fxTeacher + "&student=" + fxStudent + "&gpu_hourly=1&student_tps=100")
	mustContain(t, "costs page with a serving cost", body, "self-hosted: $1/hour at 100 tokens/s")
	body = d.page("/ui/costs?teacher=" + fxTeacher + "&student=" + fxStudent + "&gpu_hourly=1")
	mustContain(t, "costs page with half a serving cost", body, "needs both its GPU price")
}

func TestOverviewShowsTheFlywheel(t *testing.T) {
	d := newDash(t, dashOpts{pages: true, records: 20})
	body := d.page("/")
	mustContain(t, "overview", body, `class="flywheel"`,
		`href="/ui/datasets/`+fxDataset+`/`+d.fx.dataset.Manifest.Short()+`"`,
		`href="/ui/training/`+fxJobLive+`"`, `<span class="status warn">running</span>`, // the newest job
		`href="/ui/evals/`+fxEval+`"`, fxStudent+" 91.0%", "field accuracy · "+fxTeacher+" 78.0%",
		`href="/ui/routes/`+fxRoute+`"`, "teacher 90% / student 10%", "rolled back by auto-rollback")
	// Without a data dir or routes there is nothing to show, and no error.
	if body := newDash(t, dashOpts{records: 5}).page("/"); strings.Contains(body, `class="flywheel"`) {
		t.Error("the overview shows a flywheel with nothing in it")
	}
}

// TestPagesWithoutData: an empty data dir and store show how to get started, never an error.
func TestPagesWithoutData(t *testing.T) {
	d := newDash(t, dashOpts{})
	for path, want := range map[string]string{
		"/ui/datasets": "No datasets yet", "/ui/training": "No training jobs yet", "/ui/evals": "No evals yet",
		"/ui/routes": "No routes yet", "/ui/costs": "Name a teacher and a student",
	} {
		body := d.page(path)
		if !strings.Contains(body, want) {
			t.Errorf("GET %s on an empty data dir lacks %q", path, want)
		}
	}
}
