package econ_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foundryhq/foundry/econ"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.10g, want %.10g", what, got, want)
	}
}

// The worked example all tests share:
//
//   - teacher gpt-4o-mini at the price table's $0.15 in / $0.60 out per 1M
//     tokens, requests of 1,000 prompt + 500 completion tokens:
//     1000·0.15/1e6 + 500·0.60/1e6 = $0.00045 = 9/20000 a request;
//   - student self-hosted on a $2.50/hour GPU generating 1,500 tokens/s:
//     2.50 / (1500·3600) · 1e6 = $0.462963 per 1M tokens, so 500 generated
//     tokens cost 500·2.5/5,400,000 = $0.000231481 = 1/4320 a request;
//   - saving 9/20000 − 1/4320 = 243/540000 − 125/540000 = 59/270000
//     = $0.000218519 a request;
//   - training: 7,200 device-seconds at $2.50/hour = $5.00;
//   - N* = 5 / (59/270000) = 1,350,000/59 = 22,881.36 requests.
const (
	teacherPerRequest = 9.0 / 20000
	studentPerRequest = 1.0 / 4320
	saving            = 59.0 / 270000
	nStar             = 1350000.0 / 59
)

func TestServingAndTrainingCost(t *testing.T) {
	s := econ.Serving{GPUHourlyUSD: 2.5, TokensPerSecond: 1500}
	near(t, "$ per 1M tokens", s.PerMillionTokens(), 2.5/5400*1000, 1e-12) // 0.462963
	if p := s.Price(); p.Input != 0 || p.Output != s.PerMillionTokens() {
		t.Errorf("price %+v", p)
	}
	near(t, "training cost", econ.TrainingCost(7200, 2.5), 5, 1e-12)
	for _, bad := range []econ.Serving{{0, 1500}, {2.5, 0}, {-1, 10}, {2.5, math.Inf(1)}} {
		if bad.Check() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestBreakEvenWorkedExample(t *testing.T) {
	teacher, _ := pricing.New(nil).Cost("gpt-4o-mini", 1000, 0, 500)
	near(t, "teacher per request", teacher, teacherPerRequest, 1e-15)
	student := 500 * econ.Serving{GPUHourlyUSD: 2.5, TokensPerSecond: 1500}.PerMillionTokens() / 1e6
	near(t, "student per request", student, studentPerRequest, 1e-15)

	// At 10,000 requests a day: 22,881.36 / 10,000 = 2.288 days, and
	// 10,000·30·59/270000 = $65.56 a month saved.
	b := econ.NewBreakEven(5, teacher, student, 10000)
	if b.Never {
		t.Fatal("never breaks even")
	}
	near(t, "saving", b.SavingPerRequestUSD, saving, 1e-15)
	near(t, "N*", b.Requests, nStar, 1e-6)
	near(t, "days", b.Days, nStar/10000, 1e-9)
	near(t, "monthly savings", b.MonthlySavingsUSD, 300000*saving, 1e-9)
	// After N* requests the two paths cost the same; one more and the student is cheaper.
	n := math.Ceil(b.Requests)
	if !(5+n*student < n*teacher) || 5+(n-1)*student < (n-1)*teacher {
		t.Errorf("N* = %v is not where training + student first drops below teacher", n)
	}

	// Without traffic the days are unknown, not zero.
	if b := econ.NewBreakEven(5, teacher, student, 0); !math.IsInf(b.Days, 1) || b.Never {
		t.Errorf("no volume: %+v", b)
	}
	// Free training breaks even at once.
	if b := econ.NewBreakEven(0, teacher, student, 100); b.Requests != 0 || b.Days != 0 {
		t.Errorf("free training: %+v", b)
	}
}

func TestNeverBreaksEven(t *testing.T) {
	// A slow student: $2.50/hour at 100 tokens/s is $6.944 per 1M tokens,
	// 500 tokens $0.003472 > the teacher's $0.00045.
	student := 500 * econ.Serving{GPUHourlyUSD: 2.5, TokensPerSecond: 100}.PerMillionTokens() / 1e6
	near(t, "slow student per request", student, 500*2.5/360000, 1e-15)
	b := econ.NewBreakEven(5, teacherPerRequest, student, 100)
	if !b.Never || !math.IsInf(b.Requests, 1) || !math.IsInf(b.Days, 1) {
		t.Fatalf("want never: %+v", b)
	}
	// Monthly "savings" are the extra cost: 100·30·(0.00045 − 0.0034722) = −$9.0667.
	near(t, "monthly savings", b.MonthlySavingsUSD, 3000*(teacherPerRequest-student), 1e-9)
	// Equal costs never break even either.
	if b := econ.NewBreakEven(5, 0.001, 0.001, 100); !b.Never {
		t.Errorf("equal costs: %+v", b)
	}
	// JSON: infinite values are null and read back as infinite.
	js, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"requests":null`) || !strings.Contains(string(js), `"days":null`) || !strings.Contains(string(js), `"never":true`) {
		t.Errorf("JSON %s", js)
	}
	var back econ.BreakEven
	if err := json.Unmarshal(js, &back); err != nil || !math.IsInf(back.Requests, 1) || !back.Never {
		t.Errorf("round trip: %v %+v", err, back)
	}
}

func TestReadJob(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "job.json"), []byte(`{"id":"job-1","status":"succeeded","device":"cuda","device_seconds":7200,"cost_usd":4,"train_loss":[]}`), 0o644)
	j, err := econ.ReadJob(dir)
	if err != nil {
		t.Fatal(err)
	}
	if j.DeviceSeconds != 7200 || j.ID != "job-1" {
		t.Errorf("job %+v", j)
	}
	if c, _ := j.Cost(2.5); c != 5 {
		t.Errorf("cost at $2.50/h = %v, want 5 (7200 s = 2 h)", c)
	}
	if c, _ := j.Cost(0); c != 4 {
		t.Errorf("recorded cost %v, want 4", c)
	}
	if _, err := econ.ReadJob(t.TempDir()); err == nil || !strings.Contains(err.Error(), "job.json") {
		t.Errorf("missing job: %v", err)
	}
	j.CostUSD = 0
	if _, err := j.Cost(0); err == nil {
		t.Error("a job without cost or GPU price was priced")
	}
}

// fill stores the worked example's traffic: over 30 days up to now,
// 3,000 teacher calls (100 a day: 2,000 from project acme, 1,000 from
// globex; route support-bot; 1,000 + 500 tokens, $0.00045 each, 200 ms)
// and 300 student calls on the engine (route support-bot-canary, no
// project, free, 100 ms, 30 of them errors), plus 5 calls before the window.
func fill(t *testing.T, st store.Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, p := range []string{"acme", "globex"} {
		if err := st.CreateKey(ctx, store.Key{ID: "key-" + p, Name: p, Project: p, Prefix: "fk-" + p, Hash: "hash-" + p, CreatedAt: now.Add(-40 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	since := now.Add(-30 * 24 * time.Hour)
	var recs []store.Record
	for i := range 3000 {
		p := "acme"
		if i%3 == 2 {
			p = "globex"
		}
		recs = append(recs, store.Record{ID: fmt.Sprintf("t%d", i), CreatedAt: since.Add(time.Duration(i) * 864 * time.Second), Project: p, KeyID: "key-" + p,
			Endpoint: "chat.completions", Route: "support-bot", Provider: "openai", Model: "gpt-4o-mini", Status: 200,
			Latency: 200 * time.Millisecond, PromptTokens: 1000, CompletionTokens: 500, CostUSD: teacherPerRequest})
	}
	for i := range 300 {
		status := 200
		if i%10 == 0 {
			status = 500
		}
		recs = append(recs, store.Record{ID: fmt.Sprintf("s%d", i), CreatedAt: since.Add(time.Duration(i)*8640*time.Second + time.Second),
			Endpoint: "chat.completions", Route: "support-bot-canary", Provider: "engine", Model: "student", Status: status,
			Latency: 100 * time.Millisecond, PromptTokens: 1000, CompletionTokens: 500})
	}
	for i := range 5 {
		recs = append(recs, store.Record{ID: fmt.Sprintf("old%d", i), CreatedAt: since.Add(-time.Hour), Endpoint: "chat.completions",
			Route: "support-bot", Provider: "openai", Model: "gpt-4o-mini", Status: 200, PromptTokens: 1000, CompletionTokens: 500, CostUSD: 1})
	}
	if err := st.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "foundry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestReportFromStore(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)
	fill(t, st, now)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "job.json"), []byte(`{"id":"job-1","device_seconds":7200}`), 0o644)
	job, err := econ.ReadJob(dir)
	if err != nil {
		t.Fatal(err)
	}
	training, err := job.Cost(2.5)
	if err != nil {
		t.Fatal(err)
	}
	base := econ.Options{Until: now, Student: "student", Teacher: "gpt-4o-mini", TrainingUSD: training,
		Serving: &econ.Serving{GPUHourlyUSD: 2.5, TokensPerSecond: 1500}, Revenue: econ.Revenue{PerRequestUSD: 0.002}}

	type want struct {
		key              string
		requests, errors int64
		cost             float64
	}
	for _, c := range []struct {
		by   string
		rows []want
	}{
		{econ.ByModel, []want{{"gpt-4o-mini", 3000, 0, 1.35}, {"student", 300, 30, 0}}},
		{econ.ByProject, []want{{"acme", 2000, 0, 0.9}, {"globex", 1000, 0, 0.45}, {econ.NoProject, 300, 30, 0}}},
		{econ.ByRoute, []want{{"support-bot", 3000, 0, 1.35}, {"support-bot-canary", 300, 30, 0}}},
	} {
		t.Run(c.by, func(t *testing.T) {
			o := base
			o.By = c.by
			r, err := econ.Build(ctx, st, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Rows) != len(c.rows) {
				t.Fatalf("rows %+v, want %d", r.Rows, len(c.rows))
			}
			for i, w := range c.rows {
				g := r.Rows[i]
				if g.Key != w.key || g.Requests != w.requests || g.Errors != w.errors || math.Abs(g.CostUSD-w.cost) > 1e-9 {
					t.Errorf("row %d = %s %d req %d err $%v, want %+v", i, g.Key, g.Requests, g.Errors, g.CostUSD, w)
				}
			}
			if r.Total.Requests != 3300 || math.Abs(r.Total.CostUSD-1.35) > 1e-9 {
				t.Errorf("total %+v, want 3300 requests, $1.35 (the 5 older calls are outside the window)", r.Total)
			}
		})
	}

	o := base
	o.By = econ.ByDay
	r, err := econ.Build(ctx, st, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 30 || r.Rows[0].Key != "2026-03-01" || r.Rows[29].Key != "2026-03-30" {
		t.Fatalf("%d day rows from %s to %s, want 30 from 2026-03-01 to 2026-03-30", len(r.Rows), r.Rows[0].Key, r.Rows[len(r.Rows)-1].Key)
	}
	for _, d := range r.Rows {
		if d.Requests != 110 || math.Abs(d.CostUSD-0.045) > 1e-9 { // 100 teacher + 10 student calls a day
			t.Errorf("day %s: %d requests $%v, want 110 and $0.045", d.Key, d.Requests, d.CostUSD)
		}
	}
	near(t, "mean latency", r.Total.MeanLatencyMS, (3000*200+300*100)/3300.0, 1e-3)

	// Revenue: 3,300 requests × $0.002 = $6.60; margin 6.60 − 1.35 = $5.25, 79.5%.
	near(t, "revenue", r.RevenueUSD, 6.6, 1e-9)
	near(t, "margin", r.MarginUSD, 5.25, 1e-9)
	near(t, "margin %", r.Margin, 5.25/6.6, 1e-12)

	// Break-even from the store: the teacher's 3,000 calls in 30 days are
	// 100 a day at the captured $0.00045; N* = 22,881.36 requests, 228.8
	// days; 100·30·59/270000 = $0.6556 saved a month.
	be := r.BreakEven
	near(t, "teacher per request", be.TeacherPerRequestUSD, teacherPerRequest, 1e-15)
	near(t, "student per request", be.StudentPerRequestUSD, studentPerRequest, 1e-15)
	near(t, "requests per day", be.RequestsPerDay, 100, 1e-9)
	near(t, "N*", be.Requests, nStar, 1e-6)
	near(t, "days", be.Days, nStar/100, 1e-6)
	near(t, "monthly savings", be.MonthlySavingsUSD, 3000*saving, 1e-9)

	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("ECON_SHOW") != "" {
		t.Log("\n" + text.String())
	}
	for _, w := range []string{"Costs 2026-03-01 00:00 → 2026-03-31 00:00 UTC (30.0 days), by day", "2026-03-15", "3,300",
		"Revenue $6.6000, cost $1.3500, margin $5.2500 (79.5%)", `Break-even: student "student" instead of teacher "gpt-4o-mini"`,
		"22,882 requests", "100.0 requests/day → 228.8 days", "$0.6556", "$0.4630 per 1M generated tokens",
		`note: the student's 300 captured calls cost $0 above`, `prices: {"student": {input: 0, output: 0.463}}`} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text report lacks %q:\n%s", w, text.String())
		}
	}

	// The slow student never breaks even, and says so.
	o.Serving = &econ.Serving{GPUHourlyUSD: 2.5, TokensPerSecond: 100}
	r, err = econ.Build(ctx, st, o)
	if err != nil {
		t.Fatal(err)
	}
	text.Reset()
	r.WriteText(&text)
	if !r.BreakEven.Never || !strings.Contains(text.String(), "never") {
		t.Errorf("slow student: %+v\n%s", r.BreakEven, text.String())
	}

	// Bad options are refused with what to do.
	for _, bad := range []econ.Options{
		{Until: now, By: "week"},
		{Until: now, Since: now},
		{Until: now, Student: "student"},
		{Until: now, Student: "unknown-student", Teacher: "gpt-4o-mini"},
		{Until: now, Student: "student", Teacher: "unknown-teacher-with-no-traffic", Serving: base.Serving, Filter: store.Query{Routes: []string{"nothing"}}},
	} {
		var oe *econ.OptionError
		if _, err := econ.Build(ctx, st, bad); err == nil || !errorsAs(err, &oe) {
			t.Errorf("%+v: err %v, want an OptionError", bad, err)
		}
	}
}

func TestHandler(t *testing.T) {
	st := openStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	fill(t, st, now)
	hs := httptest.NewServer(econ.NewHandler(st, nil, nil))
	t.Cleanup(hs.Close)
	get := func(params url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(hs.URL + "/api/v1/costs?" + params.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	v := url.Values{"since": {now.Add(-30 * 24 * time.Hour).Format(time.RFC3339)}, "until": {now.Format(time.RFC3339)}, "by": {"project"},
		"student": {"student"}, "teacher": {"gpt-4o-mini"}, "training_cost": {"5"}, "gpu_hourly": {"2.5"}, "student_throughput": {"1500"}}
	code, body := get(v)
	if code != 200 {
		t.Fatalf("status %d: %v", code, body)
	}
	be := body["break_even"].(map[string]any)
	near(t, "N* over HTTP", be["requests"].(float64), nStar, 1e-6)
	near(t, "days over HTTP", be["days"].(float64), nStar/100, 1e-6)
	if rows := body["rows"].([]any); len(rows) != 3 || rows[0].(map[string]any)["key"] != "acme" {
		t.Errorf("rows %v", rows)
	}

	v.Set("student_throughput", "100")
	if code, body = get(v); code != 200 || body["break_even"].(map[string]any)["requests"] != nil {
		t.Errorf("never: status %d, %v", code, body["break_even"])
	}
	for _, bad := range []url.Values{{"by": {"week"}}, {"since": {"yesterday-ish"}}, {"training_cost": {"-1"}},
		{"student": {"student"}}, {"gpu_hourly": {"2.5"}}} {
		if code, body := get(bad); code != 400 {
			t.Errorf("%v: status %d %v, want 400", bad, code, body)
		}
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
