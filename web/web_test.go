package web

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foundryhq/foundry/capture"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/provider"
	popenai "github.com/foundryhq/foundry/provider/openai"
	"github.com/foundryhq/foundry/route"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/upstreamtest"
)

// dash is a real gateway with the dashboard mounted, over a real SQLite
// store, served on 127.0.0.1.
type dash struct {
	t    *testing.T
	URL  string
	st   store.Store
	now  time.Time
	recs []store.Record
	fx   *pagesFixture // with dashOpts.pages
}

type dashOpts struct {
	adminKey string
	records  int // fixture calls to seed (0: none)
	now      time.Time
	registry *provider.Registry
	plugins  []provider.Plugin
	flusher  interface{ Flush(context.Context) error }
	st       store.Store
	pages    bool           // seed the Datasets, Training, Evals and Routes fixture
	prices   *pricing.Table // default fxPrices
	// routeStats stands in for the router's live numbers.
	routeStats func(string) (route.Stats, bool)
}

func newDash(t *testing.T, o dashOpts) *dash {
	t.Helper()
	if o.now.IsZero() {
		o.now = time.Now().UTC().Truncate(time.Second)
	}
	if o.st == nil {
		o.st = openStore(t)
	}
	if o.prices == nil {
		o.prices = fxPrices
	}
	if o.registry == nil {
		o.registry = provider.NewRegistry()
	}
	d := &dash{t: t, st: o.st, now: o.now}
	if o.records > 0 {
		d.recs = seed(t, o.st, o.now, o.records)
	}
	dataDir := filepath.Join(t.TempDir(), "foundry-data")
	if o.pages {
		d.fx = seedPages(t, o.st, dataDir, o.now)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := gateway.New(context.Background(), gateway.Options{Registry: o.registry, Store: o.st, AdminKey: o.adminKey,
		Plugins: o.plugins, Flusher: o.flusher, Logger: log})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	now := o.now
	New(Options{Store: o.st, AdminKey: o.adminKey, Flusher: o.flusher, Logger: log, Now: func() time.Time { return now },
		DataDir: dataDir, Prices: o.prices, RouteStats: o.routeStats}).Mount(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	d.URL = hs.URL
	return d
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get fetches path and returns the status and body.
func (d *dash) get(path string, hdr ...string) (int, http.Header, string) {
	d.t.Helper()
	req, err := http.NewRequest(http.MethodGet, d.URL+path, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return d.do(req)
}

func (d *dash) post(path string, form url.Values, hdr ...string) (int, http.Header, string) {
	d.t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return d.do(req)
}

func (d *dash) do(req *http.Request) (int, http.Header, string) {
	d.t.Helper()
	resp, err := noRedirect.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// page fetches path and fails the test unless it answers 200.
func (d *dash) page(path string, hdr ...string) string {
	d.t.Helper()
	code, _, body := d.get(path, hdr...)
	if code != http.StatusOK {
		d.t.Fatalf("GET %s: status %d, want 200; body:\n%.2000s", path, code, body)
	}
	return body
}

// count returns how many seeded records match keep.
func (d *dash) count(keep func(store.Record) bool) int {
	n := 0
	for _, r := range d.recs {
		if keep(r) {
			n++
		}
	}
	return n
}

var (
	reMatchCount = regexp.MustCompile(`<strong>([0-9,]+)</strong> matching call`)
	reRow        = regexp.MustCompile(`<tr class="rec" data-href="/ui/requests/([^"]+)"`)
	reMore       = regexp.MustCompile(`hx-get="/ui/traffic/rows\?([^"]+)"`)
	reChartData  = regexp.MustCompile(`(?s)<script type="application/json" id="chart-data">(.*?)</script>`)
)

func matchCount(t *testing.T, body string) int {
	t.Helper()
	m := reMatchCount.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no match count in page:\n%.3000s", body)
	}
	n, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
	return n
}

func rowIDs(body string) []string {
	var ids []string
	for _, m := range reRow.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestOverviewShowsTheWindow(t *testing.T) {
	d := newDash(t, dashOpts{records: 300})
	body := d.page("/")
	in24h := func(r store.Record) bool { return !r.CreatedAt.Before(d.now.Add(-24 * time.Hour)) }
	want := d.count(in24h)
	var spend float64
	for _, r := range d.recs {
		if in24h(r) {
			spend += r.CostUSD
		}
	}
	for _, s := range []string{
		`<strong id="stat-requests">` + fmtInt(int64(want)) + `</strong>`,
		fmtUSD(spend),
		"gpt-4o-mini", "claude-3-5-haiku-latest", "support-v3", // per-model table
		idFailed, // latest failed calls
		`href="/ui/traffic?since=24h&amp;status=error"`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("overview lacks %q", s)
		}
	}
	// Every page of the sidebar is built: none shows as coming soon.
	for _, n := range nav {
		if n.Path == "" || !strings.Contains(body, `<a href="`+n.Path+`"`) {
			t.Errorf("the %s nav item is not a link to its page", n.Name)
		}
	}

	m := reChartData.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("overview has no chart data")
	}
	var c chartData
	if err := json.Unmarshal([]byte(m[1]), &c); err != nil {
		t.Fatalf("chart data is not JSON: %v\n%.500s", err, m[1])
	}
	var sum int64
	for _, n := range c.Requests {
		sum += n
	}
	// 30-minute buckets aligned to the clock: 48, or 49 when now is not on a boundary.
	if sum != int64(want) || len(c.T) < 48 || len(c.T) > 49 || len(c.Models) != 4 {
		t.Errorf("chart data: %d requests in %d buckets over %d models, want %d in 48 or 49 over 4", sum, len(c.T), len(c.Models), want)
	}

	// A shorter window counts fewer calls.
	body = d.page("/?window=1h")
	want1h := d.count(func(r store.Record) bool { return !r.CreatedAt.Before(d.now.Add(-time.Hour)) })
	if want1h >= want || !strings.Contains(body, `<strong id="stat-requests">`+fmtInt(int64(want1h))+`</strong>`) {
		t.Errorf("overview ?window=1h does not show %d requests", want1h)
	}
}

func TestCostsPage(t *testing.T) {
	d := newDash(t, dashOpts{records: 200})
	body := d.page("/ui/costs")
	for _, s := range []string{`data-chart="spend"`, `data-chart="requests"`, `data-chart="tokens"`, `data-chart="errorrate"`, "Totals per model", "gpt-4o-2024-08-06"} {
		if !strings.Contains(body, s) {
			t.Errorf("costs page lacks %q", s)
		}
	}
	m := reChartData.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("costs page has no chart data")
	}
	var c chartData
	if err := json.Unmarshal([]byte(m[1]), &c); err != nil {
		t.Fatal(err)
	}
	// The biggest spender comes first, and the spend series add up to the total.
	if c.Models[0] != "gpt-4o-2024-08-06" {
		t.Errorf("models by spend: %v, want gpt-4o-2024-08-06 first", c.Models)
	}
	var charted, want float64
	for _, row := range c.Cost {
		for _, v := range row {
			charted += v
		}
	}
	for _, r := range d.recs {
		want += r.CostUSD
	}
	if diff := charted - want; diff > 1e-9 || diff < -1e-9 {
		t.Errorf("charted spend %.6f, want %.6f", charted, want)
	}
}

func TestTrafficFilters(t *testing.T) {
	d := newDash(t, dashOpts{records: 300})
	hasTag := func(tag string) func(store.Record) bool {
		return func(r store.Record) bool { return slices.Contains(r.Tags, tag) }
	}
	tests := []struct {
		query string
		keep  func(store.Record) bool
	}{
		{"", func(store.Record) bool { return true }},
		{"model=gpt-4o-mini", func(r store.Record) bool { return r.Model == "gpt-4o-mini" }},
		{"provider=anthropic", func(r store.Record) bool { return r.Provider == "anthropic" }},
		{"route=support-triage", func(r store.Record) bool { return r.Route == "support-triage" }},
		{"tag=support", hasTag("support")},
		{"status=error", func(r store.Record) bool { return r.Status >= 400 }},
		{"status=ok", func(r store.Record) bool { return r.Status < 400 }},
		{"since=1h", func(r store.Record) bool { return !r.CreatedAt.Before(d.now.Add(-time.Hour)) }},
		{"provider=openai&status=error&since=24h", func(r store.Record) bool { return r.Provider == "openai" && r.Status >= 400 }},
	}
	feedback := map[string]bool{}
	for _, r := range d.recs {
		if rec, err := d.st.GetRecord(context.Background(), r.ID); err == nil && rec.Feedback != nil {
			feedback[r.ID] = true
		}
	}
	tests = append(tests, struct {
		query string
		keep  func(store.Record) bool
	}{"feedback=true", func(r store.Record) bool { return feedback[r.ID] }})

	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			want := d.count(tt.keep)
			if want == 0 {
				t.Fatalf("the fixture has no call matching %q; the test proves nothing", tt.query)
			}
			for _, path := range []string{"/ui/traffic?" + tt.query, "/ui/traffic/rows?" + tt.query} {
				body := d.page(path, "HX-Request", "true")
				if got := matchCount(t, body); got != want {
					t.Errorf("GET %s: %d matching calls, want %d", path, got, want)
				}
				if got := len(rowIDs(body)); got != min(want, pageSize) {
					t.Errorf("GET %s: %d rows, want %d", path, got, min(want, pageSize))
				}
			}
		})
	}
	// The form shows the filter it applied.
	body := d.page("/ui/traffic?status=error&since=1h&model=gpt-4o")
	for _, s := range []string{`<option value="error" selected>`, `<option value="1h" selected>`, `name="model" value="gpt-4o"`} {
		if !strings.Contains(body, s) {
			t.Errorf("filter form does not show %q", s)
		}
	}
	// A bad filter is explained, not a 500.
	code, _, body := d.get("/ui/traffic?since=yesterday-ish")
	if code != http.StatusOK || !strings.Contains(body, "is not a time") {
		t.Errorf("bad since: status %d, body lacks the explanation:\n%.1500s", code, body)
	}
}

func TestTrafficPagesOlderCalls(t *testing.T) {
	d := newDash(t, dashOpts{records: 130})
	body := d.page("/ui/traffic")
	ids := rowIDs(body)
	if ids[0] != idXSS {
		t.Errorf("first row %s, want the newest call %s", ids[0], idXSS)
	}
	for pages := 1; ; pages++ {
		m := reMore.FindStringSubmatch(body)
		if m == nil {
			break
		}
		if pages > 10 {
			t.Fatal("more than 10 pages of 50 for 133 calls")
		}
		body = d.page("/ui/traffic/rows?"+html.UnescapeString(m[1]), "HX-Request", "true")
		if strings.Contains(body, "matching call") {
			t.Fatal("an older page repeats the table header; it must be rows only (they are appended)")
		}
		ids = append(ids, rowIDs(body)...)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("call %s listed twice", id)
		}
		seen[id] = true
	}
	if len(ids) != len(d.recs) {
		t.Errorf("paged through %d calls, want %d", len(ids), len(d.recs))
	}
	byID := map[string]time.Time{}
	for _, r := range d.recs {
		byID[r.ID] = r.CreatedAt
	}
	for i := 1; i < len(ids); i++ {
		if byID[ids[i]].After(byID[ids[i-1]]) {
			t.Fatalf("row %d (%s) is newer than row %d: not newest first", i, ids[i], i-1)
		}
	}
}

func TestRequestDetailShowsTheConversation(t *testing.T) {
	d := newDash(t, dashOpts{records: 10})
	body := d.page("/ui/requests/" + idToolCall)
	for _, s := range []string{
		`class="bubble role-system"`, "You are a support agent for Acme.",
		`class="bubble role-user"`, "Where is order 8812?",
		`class="bubble role-assistant"`, `<code>lookup_order</code>`, "call_1",
		"&#34;order_id&#34;: &#34;8812&#34;", // tool arguments pretty-printed
		`class="bubble role-tool"`, "&#34;carrier&#34;:&#34;UPS&#34;",
		"Order 8812 has shipped with UPS", "finish: stop", // the response
		"Tools offered", "Find an order by id",
		`<details class="raw" id="raw-request">`, "&#34;temperature&#34;: 0.2",
		"<dt>team</dt><dd>care</dd>", "user-42", "<dt>temperature</dt>",
		`id="feedback"`, `hx-post="/ui/requests/` + idToolCall + `/feedback"`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("detail page lacks %q", s)
		}
	}
	body = d.page("/ui/requests/" + idFailed)
	if !strings.Contains(body, "upstream error: internal server error") || !strings.Contains(body, "No response: the call failed.") {
		t.Errorf("failed call's page does not show the error")
	}
	code, _, body := d.get("/ui/requests/req_nope")
	if code != http.StatusNotFound || !strings.Contains(body, "No captured call") {
		t.Errorf("unknown id: status %d, want 404 with an explanation", code)
	}
}

func TestContentIsEscaped(t *testing.T) {
	d := newDash(t, dashOpts{records: 5})
	for _, path := range []string{"/ui/requests/" + idXSS, "/ui/traffic", "/ui/traffic?tag=" + url.QueryEscape(`"><b>tag</b>`)} {
		body := d.page(path)
		for _, bad := range []string{"<script>alert(1)", "<img src=x", "<b>tag</b>"} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s renders %q unescaped", path, bad)
			}
		}
	}
	body := d.page("/ui/requests/" + idXSS)
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the XSS text is missing from the conversation instead of being shown escaped")
	}

	// Model names travel into the charts' JSON; they must not end the script element.
	evil := chatRecord("req_evil_model", d.now.Add(-time.Minute), fixtureModel{route: "r", provider: "p", model: "</script><script>alert(3)</script>", inPrice: 1, outPrice: 1}, "hi", nil)
	if err := d.st.InsertRecords(context.Background(), []store.Record{evil}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/ui/costs"} {
		body := d.page(path)
		if strings.Contains(body, "<script>alert(3)") || strings.Count(body, "</script>") != strings.Count(body, "<script") {
			t.Errorf("GET %s: a model name broke out of the chart data", path)
		}
		m := reChartData.FindStringSubmatch(body)
		var c chartData
		if m == nil || json.Unmarshal([]byte(m[1]), &c) != nil || !slices.Contains(c.Models, evil.Model) {
			t.Errorf("GET %s: the chart data lost the model name %q", path, evil.Model)
		}
	}
}

func TestFeedbackFormSaves(t *testing.T) {
	d := newDash(t, dashOpts{records: 5})
	path := "/ui/requests/" + idToolCall + "/feedback"
	code, _, body := d.post(path, url.Values{"score": {"0.5"}, "label": {"needs-work"}, "comment": {"Right order, wrong <b>tone</b>."}}, "HX-Request", "true")
	if code != http.StatusOK || !strings.Contains(body, "Feedback saved.") || !strings.Contains(body, "★ 0.5") || !strings.Contains(body, "wrong &lt;b&gt;tone&lt;/b&gt;") {
		t.Fatalf("POST feedback: status %d, body:\n%s", code, body)
	}
	rec, err := d.st.GetRecord(context.Background(), idToolCall)
	if err != nil {
		t.Fatal(err)
	}
	if f := rec.Feedback; f == nil || f.Score == nil || *f.Score != 0.5 || f.Label != "needs-work" || f.Comment != "Right order, wrong <b>tone</b>." {
		t.Fatalf("stored feedback %+v, want score 0.5, label needs-work and the comment", f)
	}
	if !strings.Contains(d.page("/ui/requests/"+idToolCall), "needs-work") {
		t.Error("the detail page does not show the saved feedback")
	}

	// Without htmx the form still works: a redirect back to the call.
	code, hdr, _ := d.post(path, url.Values{"label": {"good"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/ui/requests/"+idToolCall+"#feedback" {
		t.Errorf("plain POST: status %d Location %q, want 303 back to the call", code, hdr.Get("Location"))
	}

	for _, tt := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"score": {"great"}}, "is not a number"},
		{url.Values{}, "Give a score, a label or a comment."},
	} {
		_, _, body := d.post(path, tt.form, "HX-Request", "true")
		if !strings.Contains(body, tt.want) {
			t.Errorf("POST %v: body lacks %q:\n%s", tt.form, tt.want, body)
		}
	}
	_, _, body = d.post("/ui/requests/req_nope/feedback", url.Values{"label": {"x"}}, "HX-Request", "true")
	if !strings.Contains(body, "No captured call") {
		t.Errorf("feedback on an unknown call: body lacks the explanation:\n%s", body)
	}
	if rec, _ := d.st.GetRecord(context.Background(), idToolCall); rec.Feedback.Label != "good" {
		t.Errorf("a rejected form changed the feedback to %+v", rec.Feedback)
	}

	// Another site cannot post feedback through the viewer's browser.
	code, _, _ = d.post(path, url.Values{"label": {"spam"}}, "Sec-Fetch-Site", "cross-site")
	if code != http.StatusForbidden {
		t.Errorf("cross-site POST: status %d, want 403", code)
	}
	code, _, _ = d.post(path, url.Values{"label": {"spam"}}, "Origin", "http://evil.example")
	if code != http.StatusForbidden {
		t.Errorf("POST from another origin: status %d, want 403", code)
	}
}

func TestLoginWithAdminKey(t *testing.T) {
	const key = "fdy-admin-s3cret"
	d := newDash(t, dashOpts{adminKey: key, records: 5})

	code, hdr, _ := d.get("/ui/traffic?status=error")
	if code != http.StatusSeeOther || hdr.Get("Location") != "/ui/login?next="+url.QueryEscape("/ui/traffic?status=error") {
		t.Fatalf("GET /ui/traffic without a session: status %d Location %q, want 303 to the login form", code, hdr.Get("Location"))
	}
	code, hdr, _ = d.get("/ui/traffic/rows", "HX-Request", "true", "HX-Current-URL", d.URL+"/ui/traffic")
	if code != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("HX-Redirect"), "/ui/login?next=") {
		t.Errorf("htmx poll without a session: status %d HX-Redirect %q, want 401 and a redirect to the login form", code, hdr.Get("HX-Redirect"))
	}
	for _, p := range []string{"/", "/ui/costs", "/ui/requests/" + idToolCall} {
		if code, _, body := d.get(p); code != http.StatusSeeOther || strings.Contains(body, "gpt-4o") {
			t.Errorf("GET %s without a session: status %d, want 303 and no data", p, code)
		}
	}
	if code, _, _ := d.post("/ui/requests/"+idToolCall+"/feedback", url.Values{"label": {"x"}}); code != http.StatusUnauthorized {
		t.Errorf("POST feedback without a session: status %d, want 401", code)
	}
	body := d.page("/ui/login?next=/ui/costs")
	if !strings.Contains(body, `type="password"`) || !strings.Contains(body, `name="next" value="/ui/costs"`) {
		t.Errorf("login form:\n%s", body)
	}

	code, hdr, body = d.post("/ui/login", url.Values{"key": {"fdy-admin-wrong"}, "next": {"/ui/costs"}})
	if code != http.StatusUnauthorized || hdr.Get("Set-Cookie") != "" || !strings.Contains(body, "That is not the admin key") {
		t.Errorf("wrong key: status %d, Set-Cookie %q; want 401, no cookie and an explanation", code, hdr.Get("Set-Cookie"))
	}

	code, hdr, _ = d.post("/ui/login", url.Values{"key": {key}, "next": {"/ui/costs"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/ui/costs" {
		t.Fatalf("right key: status %d Location %q, want 303 to /ui/costs", code, hdr.Get("Location"))
	}
	resp := http.Response{Header: hdr}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", session)
	}
	if strings.Contains(session.Value, key) || strings.Contains(session.Value, strings.TrimPrefix(key, "fdy-")) {
		t.Fatal("the session cookie holds the admin key")
	}
	cookie := sessionCookie + "=" + session.Value
	for _, p := range []string{"/", "/ui/traffic", "/ui/costs", "/ui/requests/" + idToolCall} {
		body := d.page(p, "Cookie", cookie)
		if strings.Contains(body, key) {
			t.Errorf("GET %s shows the admin key", p)
		}
	}
	if !strings.Contains(d.page("/", "Cookie", cookie), `action="/ui/logout"`) {
		t.Error("a logged-in page has no Log out button")
	}

	// A forged, tampered or expired session is refused.
	exp, sig, _ := strings.Cut(session.Value, ".")
	later, _ := strconv.ParseInt(exp, 10, 64)
	for name, v := range map[string]string{
		"tampered":  exp + "." + strings.Repeat("0", len(sig)),
		"extended":  strconv.FormatInt(later+3600, 10) + "." + sig,
		"malformed": "admin",
		"expired":   New(Options{Store: d.st, AdminKey: key, Now: func() time.Time { return d.now.Add(-sessionTTL - time.Hour) }}).newSession(),
		"other key": New(Options{Store: d.st, AdminKey: "another-key", Now: func() time.Time { return d.now }}).newSession(),
	} {
		if code, _, _ := d.get("/", "Cookie", sessionCookie+"="+v); code != http.StatusSeeOther {
			t.Errorf("%s session: status %d, want 303 to the login form", name, code)
		}
	}

	// After login, redirects never leave the site.
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example"} {
		_, hdr, _ := d.post("/ui/login", url.Values{"key": {key}, "next": {next}})
		if hdr.Get("Location") != "/" {
			t.Errorf("next=%q redirected to %q, want /", next, hdr.Get("Location"))
		}
	}
	code, hdr, _ = d.post("/ui/logout", nil, "Cookie", cookie)
	if code != http.StatusSeeOther || !strings.Contains(hdr.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout: status %d Set-Cookie %q, want the cookie cleared", code, hdr.Get("Set-Cookie"))
	}
	// The JSON API keeps its own auth: a dashboard cookie is not an API key.
	if code, _, _ := d.get("/api/v1/requests", "Cookie", cookie); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/requests with only the dashboard cookie: status %d, want 401", code)
	}
}

func TestAssetsAreEmbeddedAndLocal(t *testing.T) {
	d := newDash(t, dashOpts{})
	for path, ctype := range map[string]string{
		"/ui/static/vendor/htmx.min.js":       "text/javascript",
		"/ui/static/vendor/uPlot.iife.min.js": "text/javascript",
		"/ui/static/vendor/uPlot.min.css":     "text/css",
		"/ui/static/app.js":                   "text/javascript",
		"/ui/static/app.css":                  "text/css",
	} {
		code, hdr, body := d.get(path)
		if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), ctype) || len(body) < 500 {
			t.Errorf("GET %s: status %d, type %q, %d bytes", path, code, hdr.Get("Content-Type"), len(body))
		}
	}
	// With an empty store every page still renders, with no external links.
	for _, p := range []string{"/", "/ui/traffic", "/ui/costs"} {
		code, hdr, body := d.get(p)
		if code != http.StatusOK {
			t.Errorf("GET %s on an empty store: status %d", p, code)
		}
		if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(body) {
			t.Errorf("GET %s loads something from another host; the dashboard must work offline", p)
		}
		if !strings.Contains(hdr.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("GET %s: no Content-Security-Policy", p)
		}
	}
	// The gateway still answers its own paths, and unknown ones in JSON.
	if code, hdr, _ := d.get("/v2/nothing"); code != http.StatusNotFound || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Errorf("GET /v2/nothing: status %d type %q, want the gateway's JSON 404", code, hdr.Get("Content-Type"))
	}
	if code, _, body := d.get("/ui/nothing"); code != http.StatusNotFound || !strings.Contains(body, "no dashboard page") {
		t.Errorf("GET /ui/nothing: status %d, want the dashboard's 404 page", code)
	}
}

// TestCapturedCallAppears sends a real chat call through the gateway and
// opens it in the dashboard at once (the lookup flushes capture).
func TestCapturedCallAppears(t *testing.T) {
	up := upstreamtest.NewOpenAI(t)
	st := openStore(t)
	reg := provider.NewRegistry()
	reg.Register(popenai.New(popenai.Options{BaseURL: up.URL, APIKey: "sk-upstream-secret"}), provider.DefaultPrefixes["openai"]...)
	capt := capture.New(st, capture.Options{Prices: pricing.New(nil), SpillFile: filepath.Join(t.TempDir(), "spill.jsonl"), FlushInterval: time.Hour})
	if err := capt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { capt.Close(context.Background()) })
	d := newDash(t, dashOpts{st: st, registry: reg, plugins: []provider.Plugin{capt}, flusher: capt})

	resp, err := http.Post(d.URL+"/v1/chat/completions", "application/json", strings.NewReader(
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Is my parcel <b>late</b>?"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != 200 || id == "" {
		t.Fatalf("chat call: status %d, request id %q", resp.StatusCode, id)
	}
	body := d.page("/ui/requests/" + id)
	if !strings.Contains(body, "Is my parcel &lt;b&gt;late&lt;/b&gt;?") || !strings.Contains(body, "echo: Is my parcel") {
		t.Fatalf("the captured call's page lacks the conversation:\n%.3000s", body)
	}
	if strings.Contains(body, "sk-upstream-secret") {
		t.Fatal("the page shows the upstream key")
	}
	if ids := rowIDs(d.page("/ui/traffic")); len(ids) != 1 || ids[0] != id {
		t.Errorf("traffic rows %v, want just %s", ids, id)
	}
}

func TestUsageSeries(t *testing.T) {
	st := openStore(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	recs := seed(t, st, now, 200)
	u, err := usageSeries(context.Background(), st, store.Query{Since: now.Add(-6 * time.Hour), Until: now}, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var want usageTotals
	for _, r := range recs {
		if r.CreatedAt.Before(now.Add(-6 * time.Hour)) {
			continue
		}
		want.Requests++
		want.CostUSD += r.CostUSD
		want.PromptTokens += int64(r.PromptTokens)
		if r.Status >= 400 {
			want.Errors++
		}
	}
	if u.Total.Requests != want.Requests || u.Total.Errors != want.Errors || u.Total.PromptTokens != want.PromptTokens || !near(u.Total.CostUSD, want.CostUSD) {
		t.Errorf("totals %+v, want %+v", u.Total, want)
	}
	if len(u.Times) != 12 || u.Times[0] != now.Add(-6*time.Hour).Unix() {
		t.Errorf("%d buckets from %d, want 12 from %d", len(u.Times), u.Times[0], now.Add(-6*time.Hour).Unix())
	}
	var sumReq, sumModels int64
	var sumCost float64
	for i := range u.Times {
		sumReq += u.Requests[i]
		for m := range u.Models {
			sumModels += u.Calls[m][i]
			sumCost += u.Cost[m][i]
		}
	}
	if sumReq != want.Requests || sumModels != want.Requests || !near(sumCost, want.CostUSD) {
		t.Errorf("buckets sum to %d requests (%d by model) and $%f, want %d and $%f", sumReq, sumModels, sumCost, want.Requests, want.CostUSD)
	}
	if u.Total.P50MS <= 0 || u.Total.P95MS < u.Total.P50MS {
		t.Errorf("latency p50 %.0f p95 %.0f", u.Total.P50MS, u.Total.P95MS)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestPercentile(t *testing.T) {
	for _, tt := range []struct {
		xs   []float64
		p    float64
		want float64
	}{
		{nil, 0.5, 0},
		{[]float64{7}, 0.95, 7},
		{[]float64{5, 1, 4, 2, 3}, 0.5, 3},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.95, 10},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5, 5},
	} {
		if got := percentile(tt.xs, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.xs, tt.p, got, tt.want)
		}
	}
}
