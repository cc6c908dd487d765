package route_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/judge"
	popenai "github.com/foundryhq/foundry/provider/openai"
	"github.com/foundryhq/foundry/route"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/postgres"
	"github.com/foundryhq/foundry/store/sqlite"
	"github.com/foundryhq/foundry/upstreamtest"
)

// A 10% canary under concurrent load lands within 4 binomial standard
// deviations of 10%, and every record carries the route's labels.
func TestCanaryShare(t *testing.T) {
	e := newEnv(t, envOpts{})
	rj := e.put("support-bot", "arms:\n  - model: teacher\n    weight: 90\n  - model: student\n    weight: 10\n")
	if rj.Version != 1 || rj.Stats == nil || math.Abs(rj.Stats.Shares["student"]-10) > 1e-9 || math.Abs(rj.Stats.Shares["teacher"]-90) > 1e-9 {
		t.Fatalf("PUT answered %+v, want version 1 with shares teacher 90%%, student 10%%", rj)
	}
	const n = 2000
	arms := make([]string, n)
	ids := make([]string, n)
	var failed atomic.Int64
	parallel(n, 16, func(i int) {
		content, id, err := e.chat("support-bot", "", fmt.Sprint("q", i))
		if err != nil {
			failed.Add(1)
			t.Error(err)
			return
		}
		arms[i], ids[i] = armOf(content), id
	})
	if failed.Load() > 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
	student := 0
	for _, a := range arms {
		switch a {
		case "student":
			student++
		case "teacher":
		default:
			t.Fatalf("answer from %q, want teacher or student", a)
		}
	}
	p := 0.10
	sigma := math.Sqrt(n * p * (1 - p))
	lo, hi := n*p-4*sigma, n*p+4*sigma
	t.Logf("canary: student answered %d of %d (%.2f%%); 4σ bound [%.0f, %.0f]", student, n, 100*float64(student)/n, lo, hi)
	if float64(student) < lo || float64(student) > hi {
		t.Fatalf("student answered %d of %d, outside the 4σ bound [%.0f, %.0f]", student, n, lo, hi)
	}
	s := e.stats("support-bot")
	if got := armStats(s, "student").Requests + armStats(s, "teacher").Requests; got != n {
		t.Errorf("stats count %d requests, want %d", got, n)
	}
	if got := armStats(s, "student").Requests; got != int64(student) {
		t.Errorf("stats count %d student requests, answers show %d", got, student)
	}
	code, b := e.do("GET", "/api/v1/routes", nil)
	var list struct{ Data []route.RouteJSON }
	if err := json.Unmarshal(b, &list); code != 200 || err != nil || len(list.Data) != 1 || list.Data[0].Stats == nil ||
		armStats(*list.Data[0].Stats, "student").Requests != int64(student) {
		t.Errorf("GET /api/v1/routes: %d %s", code, b)
	}
	for _, i := range []int{0, 1, 2, n / 2, n - 1} {
		r := e.record(ids[i])
		if r.Route != "support-bot" || r.Metadata["route"] != "support-bot" || r.Metadata["route.version"] != "1" ||
			r.Metadata["route.arm"] != arms[i] || r.Model != arms[i] {
			t.Errorf("record %s: route %q model %q metadata %v; want route support-bot, model and route.arm %s, version 1", ids[i], r.Route, r.Model, r.Metadata, arms[i])
		}
	}
}

// A sticky user never switches arms; when the student's weight grows, users
// move only from teacher to student.
func TestStickyUsers(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.put("support-bot", `{"arms":[{"model":"teacher","weight":80},{"model":"student","weight":20}],"sticky":{"key":"user"}}`)
	const users, each = 300, 4
	assign := func() map[string]string {
		var mu sync.Mutex
		seen := map[string]string{}
		parallel(users*each, 16, func(i int) {
			u := fmt.Sprint("user-", i%users)
			content, _, err := e.chat("support-bot", u, "hello")
			if err != nil {
				t.Error(err)
				return
			}
			a := armOf(content)
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := seen[u]; ok && prev != a {
				t.Errorf("%s switched arms: %s then %s", u, prev, a)
			}
			seen[u] = a
		})
		return seen
	}
	before := assign()
	onStudent := 0
	for _, a := range before {
		if a == "student" {
			onStudent++
		}
	}
	// 300 users at 20%: mean 60, σ ≈ 6.9; 4σ ≈ 28.
	if onStudent < 32 || onStudent > 88 {
		t.Errorf("%d of %d sticky users on the student, want about 60 (20%%, within 4σ)", onStudent, users)
	}
	e.put("support-bot", `{"arms":[{"model":"teacher","weight":70},{"model":"student","weight":30}],"sticky":{"key":"user"}}`)
	after := assign()
	moved := 0
	for u, a := range before {
		switch {
		case a == "student" && after[u] != "student":
			t.Errorf("%s moved from student to %s when the student's weight grew", u, after[u])
		case a != after[u]:
			moved++
		}
	}
	t.Logf("sticky: %d users on the student at 20%%; %d moved teacher→student at 30%%, none the other way", onStudent, moved)
	if moved == 0 {
		t.Errorf("no user moved to the student when its weight went from 20%% to 30%%")
	}

	// A metadata key works the same way.
	e.put("meta-bot", `{arms: [{model: teacher}, {model: student}], sticky: {key: metadata.tenant}}`) // flow-style YAML
	first := map[string]string{}
	for i := range 40 {
		tenant := fmt.Sprint("t", i%8)
		resp, err := e.client().Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: "meta-bot", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
			Metadata: map[string]string{"tenant": tenant}})
		if err != nil {
			t.Fatal(err)
		}
		a := armOf(resp.Choices[0].Message.Content)
		if prev, ok := first[tenant]; ok && prev != a {
			t.Errorf("tenant %s switched arms: %s then %s", tenant, prev, a)
		}
		first[tenant] = a
	}
}

// Shadow: the answer is the primary's, returned while the shadow call is
// still blocked upstream; both calls are captured and linked; a full queue
// drops and counts.
func TestShadow(t *testing.T) {
	e := newEnv(t, envOpts{shadowQueue: 2, shadowWorkers: 1})
	started := make(chan bool, 64) // the shadow call reached the upstream (value: was it streaming)
	release := make(chan struct{})
	e.on("slow", func(req *api.ChatRequest) upstreamtest.Reply {
		started <- req.Stream
		<-release
		return upstreamtest.Reply{Content: "slow shadow answer"}
	})
	e.put("support-bot", `{"arms":[{"model":"teacher"}],"shadow":{"targets":["slow"]}}`)

	// Baseline: the same route without the shadow on another name.
	e.put("plain-bot", `{"arms":[{"model":"teacher"}]}`)
	base := medianLatency(t, e, "plain-bot", 15)

	t0 := time.Now()
	content, id, err := e.chat("support-bot", "u1", "hello")
	first := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	if content != "teacher says hi" {
		t.Fatalf("answer %q, want the primary's %q", content, "teacher says hi")
	}
	if stream := <-started; stream {
		t.Errorf("the shadow call was streaming")
	}
	// The one worker is now blocked in the shadow call: 2 more fit the queue, the rest drop.
	lat := make([]time.Duration, 0, 10)
	for range 10 {
		t0 := time.Now()
		c, _, err := e.chat("support-bot", "u1", "hello")
		lat = append(lat, time.Since(t0))
		if err != nil || c != "teacher says hi" {
			t.Fatalf("answer %q, %v while shadows are blocked; want the primary's", c, err)
		}
	}
	withShadow := median(lat)
	t.Logf("shadow: primary median latency %v with the shadow blocked upstream, %v without a shadow (first call %v)", withShadow, base, first)
	if withShadow > base+50*time.Millisecond {
		t.Errorf("shadow added %v to the primary's median latency, want at most 50ms", withShadow-base)
	}
	s := armStats(e.stats("support-bot"), "slow")
	if !s.Shadow || s.ShadowSent != 3 || s.ShadowDropped != 8 {
		t.Errorf("shadow stats %+v, want 3 sent (1 running + 2 queued) and 8 dropped", s)
	}
	close(release)
	for range 2 {
		if stream := <-started; stream {
			t.Errorf("a queued shadow call was streaming")
		}
	}
	// A streaming request is mirrored as a non-streaming one.
	st := e.client().Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "support-bot", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream me")}})
	var acc openai.ChatCompletionAccumulator
	for st.Next() {
		acc.AddChunk(st.Current())
	}
	if err := st.Err(); err != nil || acc.Choices[0].Message.Content != "teacher says hi" {
		t.Fatalf("streamed %q, %v; want the primary's answer", acc.Choices[0].Message.Content, err)
	}
	if stream := <-started; stream {
		t.Errorf("the shadow of a streaming request was streaming")
	}
	if err := e.router.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	primary := e.record(id)
	if primary.Metadata["route.arm"] != "teacher" || primary.ParentID != "" {
		t.Errorf("primary record: metadata %v parent %q", primary.Metadata, primary.ParentID)
	}
	kids := e.children(id)
	if len(kids) != 1 {
		t.Fatalf("%d records link to the primary %s, want its 1 shadow", len(kids), id)
	}
	sh := kids[0]
	if sh.Route != "support-bot" || sh.Model != "slow" || sh.Status != 200 || sh.Metadata["route.arm"] != "slow" ||
		sh.Metadata["route.shadow"] != "true" || sh.Metadata["route.version"] != "1" || !strings.Contains(string(sh.Response), "slow shadow answer") ||
		!contains(sh.Tags, "shadow") || sh.User != "u1" {
		t.Errorf("shadow record: route %q model %q status %d metadata %v tags %v user %q response %s", sh.Route, sh.Model, sh.Status, sh.Metadata, sh.Tags, sh.User, sh.Response)
	}
}

func medianLatency(t *testing.T, e *env, model string, n int) time.Duration {
	lat := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, _, err := e.chat(model, "", "hello"); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	return median(lat)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Cascade escalates exactly when a validator fails: JSON Schema, regex, and
// a mean log-prob under the bar; the candidate's escalated call is its own
// record, and logprobs the client did not ask for are stripped.
func TestCascade(t *testing.T) {
	e := newEnv(t, envOpts{})
	// The student answers the prompt's text; its fake logprobs are 0, -0.05,
	// -0.1, ... per word (a 1-word answer has mean 0, a 5-word one -0.1).
	var logprobsAsked atomic.Int64
	e.on("student", func(req *api.ChatRequest) upstreamtest.Reply {
		lp := req.Logprobs != nil && *req.Logprobs
		if lp {
			logprobsAsked.Add(1)
		}
		return upstreamtest.Reply{Content: req.Messages[len(req.Messages)-1].Content.String(), Logprobs: lp}
	})
	e.on("teacher", func(req *api.ChatRequest) upstreamtest.Reply { return upstreamtest.Reply{Content: "TEACHER"} })
	cases := []struct {
		name, validate string
		pass, fail     []string
	}{
		{"schema", `{"json_schema":{"type":"object","required":["answer"],"properties":{"answer":{"type":"string"}}}}`,
			[]string{`{"answer":"yes"}`, `{"answer":"no","extra":1}`}, []string{`not json`, `{"answer":5}`, `{"other":"x"}`}},
		{"regex", `{"regex":"^ORDER-[0-9]+$"}`, []string{"ORDER-1", "ORDER-42"}, []string{"order-1", "ORDER-", "no"}},
		{"logprob", `{"min_mean_logprob":-0.05}`, []string{"fine", "two words"}, []string{"a b c d e", "one two three four five six"}},
	}
	for _, tc := range cases {
		name := "cascade-" + tc.name
		e.put(name, `{"arms":[{"name":"cand","model":"student","escalate_to":"teacher"}],"validate":`+tc.validate+`}`)
		for _, prompt := range tc.pass {
			content, id, err := e.chat(name, "", prompt)
			if err != nil {
				t.Fatal(err)
			}
			if content != prompt {
				t.Errorf("%s: %q escalated (answer %q), want the candidate's answer", tc.name, prompt, content)
			}
			r := e.record(id)
			if r.Metadata["route.escalated"] != "false" || r.Metadata["route.arm"] != "cand" || r.Model != "student" {
				t.Errorf("%s: record of a passing answer: model %q metadata %v", tc.name, r.Model, r.Metadata)
			}
			if strings.Contains(string(r.Response), `"logprobs":{`) {
				t.Errorf("%s: the client did not ask for logprobs but got them: %s", tc.name, r.Response)
			}
			if kids := e.children(id); len(kids) != 0 {
				t.Errorf("%s: a passing answer has %d child records", tc.name, len(kids))
			}
		}
		for _, prompt := range tc.fail {
			content, id, err := e.chat(name, "", prompt)
			if err != nil {
				t.Fatal(err)
			}
			if content != "TEACHER" {
				t.Errorf("%s: %q not escalated (answer %q)", tc.name, prompt, content)
			}
			r := e.record(id)
			if r.Metadata["route.escalated"] != "true" || r.Metadata["route.arm"] != "cand" || r.Model != "teacher" ||
				!strings.HasPrefix(r.Metadata["route.escalation_reason"], tc.name[:3]) && !strings.Contains(r.Metadata["route.escalation_reason"], tc.name) {
				t.Errorf("%s: escalated record: model %q metadata %v", tc.name, r.Model, r.Metadata)
			}
			kids := e.children(id)
			if len(kids) != 1 {
				t.Fatalf("%s: %d child records, want the candidate's 1", tc.name, len(kids))
			}
			k := kids[0]
			if k.Model != "student" || !contains(k.Tags, "cascade:escalated") || k.Metadata["route.arm"] != "cand" ||
				k.Metadata["route"] != name || !strings.Contains(string(k.Response), jsonText(prompt)) || k.ID != r.Metadata["route.escalated_from"] {
				t.Errorf("%s: candidate record: model %q tags %v metadata %v response %s", tc.name, k.Model, k.Tags, k.Metadata, k.Response)
			}
		}
		s := armStats(e.stats(name), "cand")
		if s.Escalations != int64(len(tc.fail)) || s.Requests != int64(len(tc.pass)+len(tc.fail)) {
			t.Errorf("%s: stats %+v, want %d escalations of %d requests", tc.name, s, len(tc.fail), len(tc.pass)+len(tc.fail))
		}
		if q := s.PassRate; q == nil || q.N != len(tc.pass)+len(tc.fail) || math.Abs(q.Value-float64(len(tc.pass))/float64(q.N)) > 1e-9 {
			t.Errorf("%s: pass rate %+v, want %d/%d", tc.name, q, len(tc.pass), len(tc.pass)+len(tc.fail))
		}
	}
	if logprobsAsked.Load() != 4 {
		t.Errorf("logprobs were asked of the candidate %d times, want 4 (only under the log-prob bar)", logprobsAsked.Load())
	}

	// A client that asks for logprobs keeps them.
	lp := true
	body, _ := json.Marshal(api.ChatRequest{Model: "cascade-logprob", Logprobs: &lp, Messages: []api.Message{{Role: "user", Content: api.TextContent("fine")}}})
	code, b := e.do("POST", "/v1/chat/completions", body)
	if code != 200 || !strings.Contains(string(b), `"logprobs":{"content":[{`) {
		t.Errorf("with logprobs asked: %d %s; want the candidate's logprobs", code, b)
	}

	// Streaming clients: the candidate's answer is buffered, then streamed; an escalation streams the teacher's.
	for prompt, want := range map[string]string{"ORDER-7": "ORDER-7", "nope": "TEACHER"} {
		st := e.client().Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
			Model: "cascade-regex", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)}})
		var acc openai.ChatCompletionAccumulator
		for st.Next() {
			acc.AddChunk(st.Current())
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		if got := acc.Choices[0].Message.Content; got != want || acc.Choices[0].FinishReason != "stop" {
			t.Errorf("streamed cascade of %q: %q (finish %q), want %q", prompt, got, acc.Choices[0].FinishReason, want)
		}
	}
}

func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

// A planted quality drop (low feedback on the student's answers) rolls the
// route back to its previous version, audited as auto-rollback; too few
// observations do not.
func TestAutoRollback(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.put("support-bot", `{"arms":[{"model":"teacher"}]}`)
	e.put("support-bot", `{"arms":[{"model":"teacher","weight":50},{"model":"student","weight":50}],
		"rollback":{"min_feedback":0.5,"min_observations":10,"window":20}}`)
	scored := 0
	feedback := func(id string, score float64) {
		code, b := e.do("POST", "/api/v1/feedback", []byte(fmt.Sprintf(`{"request_id":%q,"score":%v}`, id, score)))
		if code != 200 {
			t.Fatalf("feedback: %d %s", code, b)
		}
	}
	send := func(studentScores int) {
		for scored < studentScores {
			content, id, err := e.chat("support-bot", "", "hello")
			if err != nil {
				t.Fatal(err)
			}
			if armOf(content) == "student" {
				feedback(id, 0.1)
				scored++
			} else {
				feedback(id, 1)
			}
		}
	}
	send(9)
	if err := e.router.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := e.get("support-bot").Version; v != 2 {
		t.Fatalf("rolled back to version %d with 9 low scores, fewer than min_observations 10", v)
	}
	if q := armStats(e.stats("support-bot"), "student").Feedback; q == nil || q.N != 9 || math.Abs(q.Value-0.1) > 1e-9 {
		t.Errorf("student feedback %+v, want mean 0.1 over 9", q)
	}
	send(10)
	if err := e.router.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	rj := e.get("support-bot")
	if rj.Version != 3 || rj.Actor != route.AutoRollbackActor || !strings.Contains(rj.Comment, `arm "student"`) || !strings.Contains(rj.Comment, "rollback from version 2 to version 1") {
		t.Fatalf("after the drop: version %d actor %q comment %q; want version 3 by auto-rollback naming the student", rj.Version, rj.Actor, rj.Comment)
	}
	code, b := e.do("GET", "/api/v1/routes/support-bot/history", nil)
	var hist struct{ Data []route.RouteJSON }
	if err := json.Unmarshal(b, &hist); code != 200 || err != nil || len(hist.Data) != 3 {
		t.Fatalf("history: %d %s", code, b)
	}
	if string(hist.Data[2].Policy) != string(hist.Data[0].Policy) {
		t.Errorf("rolled-back policy %s, want version 1's %s", hist.Data[2].Policy, hist.Data[0].Policy)
	}
	t.Logf("audit: v3 by %s: %s", hist.Data[2].Actor, hist.Data[2].Comment)
	for range 20 {
		content, _, err := e.chat("support-bot", "", "after")
		if err != nil || armOf(content) != "teacher" {
			t.Fatalf("after rollback: %q, %v; want every answer from the teacher", content, err)
		}
	}
	// A manual rollback through the API goes back to the canary (version 2's policy).
	code, b = e.do("POST", "/api/v1/routes/support-bot/rollback", []byte(`{"version":2,"actor":"alice","comment":"retry the canary"}`))
	if code != 200 || e.get("support-bot").Version != 4 || e.get("support-bot").Actor != "alice" {
		t.Fatalf("manual rollback: %d %s", code, b)
	}
}

// The validator pass rate also rolls back.
func TestAutoRollbackOnPassRate(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.on("student", func(req *api.ChatRequest) upstreamtest.Reply { return upstreamtest.Reply{Content: "not an order"} })
	e.put("orders", `{"arms":[{"model":"teacher"}]}`)
	e.put("orders", `{"arms":[{"name":"cand","model":"student","escalate_to":"teacher"}],"validate":{"regex":"^ORDER"},
		"rollback":{"min_pass_rate":0.8,"min_observations":5,"window":10}}`)
	for range 5 {
		if _, _, err := e.chat("orders", "", "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.router.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rj := e.get("orders"); rj.Version != 3 || rj.Actor != route.AutoRollbackActor || !strings.Contains(rj.Comment, "pass rate 0.000") {
		t.Fatalf("version %d actor %q comment %q; want an automatic rollback on the pass rate", rj.Version, rj.Actor, rj.Comment)
	}
}

// Bad policies are refused with 400 and a clear message; traffic keeps the
// last good policy, also when a bad version reaches the store by another way.
func TestBadPolicies(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.put("support-bot", `{"arms":[{"model":"teacher","weight":1},{"model":"student","weight":0}]}`)
	cases := []struct{ name, policy, want string }{
		{"unknown model", `{"arms":[{"model":"teacher"},{"model":"no-such-model","weight":10}]}`, `unknown model "no-such-model"`},
		{"weights sum to 0", "arms:\n  - model: teacher\n    weight: 0\n  - model: student\n    weight: 0\n", "weights sum to 0"},
		{"negative weight", `{"arms":[{"model":"teacher","weight":-1},{"model":"student","weight":2}]}`, "not a non-negative number"},
		{"invalid schema", `{"arms":[{"model":"student","escalate_to":"teacher"}],"validate":{"json_schema":{"type":"nonsense"}}}`, "validate.json_schema: invalid schema"},
		{"bad regex", `{"arms":[{"model":"student","escalate_to":"teacher"}],"validate":{"regex":"("}}`, "validate.regex"},
		{"cascade without validate", `{"arms":[{"model":"student","escalate_to":"teacher"}]}`, "a cascade needs validate"},
		{"unknown field", `{"arms":[{"model":"teacher"}],"canary":{}}`, `unknown field "canary"`},
		{"no arms", `{}`, "needs at least one arm"},
		{"unlisted model", `{"arms":[{"model":"teacher-typo"}]}`, `provider up does not list "teacher-typo"`},
		{"unknown shadow", `{"arms":[{"model":"teacher"}],"shadow":{"targets":["ghost"]}}`, `unknown model "ghost"`},
		{"bad yaml", "arms: [", "neither JSON nor valid YAML"},
	}
	for _, tc := range cases {
		code, b := e.do("PUT", "/api/v1/routes/support-bot", []byte(tc.policy))
		var eb struct {
			Error struct{ Message, Code string }
		}
		_ = json.Unmarshal(b, &eb)
		if code != 400 || eb.Error.Code != "invalid_policy" || !strings.Contains(eb.Error.Message, tc.want) {
			t.Errorf("%s: %d %s; want 400 invalid_policy mentioning %q", tc.name, code, b, tc.want)
		}
		content, _, err := e.chat("support-bot", "", "still there?")
		if err != nil || content != "teacher says hi" {
			t.Errorf("%s: traffic after the refused policy: %q, %v", tc.name, content, err)
		}
	}
	if v := e.get("support-bot").Version; v != 1 {
		t.Errorf("version %d after refused policies, want 1", v)
	}
	// A bad version written straight to the store (an older replica, a hand edit) is not loaded.
	if err := e.st.PutRoute(context.Background(), store.RouteVersion{Name: "support-bot", Version: 2, Policy: json.RawMessage(`{"arms":[]}`), Actor: "hand"}); err != nil {
		t.Fatal(err)
	}
	if err := e.router.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := e.stats("support-bot")
	if s.Version != 1 || !strings.Contains(s.LoadError, "version 2 does not load") {
		t.Errorf("stats %+v, want version 1 live and a load error for version 2", s)
	}
	if content, _, err := e.chat("support-bot", "", "still there?"); err != nil || content != "teacher says hi" {
		t.Errorf("traffic after a bad stored version: %q, %v", content, err)
	}
	// Optimistic concurrency through the API.
	if code, b := e.do("PUT", "/api/v1/routes/support-bot?if_version=1", []byte(`{"arms":[{"model":"teacher"}]}`)); code != 409 {
		t.Errorf("PUT with a stale if_version: %d %s, want 409", code, b)
	}
	if code, _ := e.do("GET", "/api/v1/routes/nope", nil); code != 404 {
		t.Errorf("GET an unknown route: %d, want 404", code)
	}
}

// The fallback chain takes over when the chosen model fails with a retryable error.
func TestFallbackChain(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.on("broken", func(req *api.ChatRequest) upstreamtest.Reply {
		return upstreamtest.Reply{Fault: upstreamtest.Fault{Status: 503, Message: "overloaded"}}
	})
	e.put("support-bot", `{"arms":[{"model":"broken"}],"fallback":["student","teacher"]}`)
	content, id, err := e.chat("support-bot", "", "hi")
	if err != nil || content != "student says hi" {
		t.Fatalf("answer %q, %v; want the first fallback's", content, err)
	}
	r := e.record(id)
	if r.Model != "student" || r.Metadata["route.arm"] != "broken" || r.Attempts < 2 {
		t.Errorf("record: model %q attempts %d metadata %v", r.Model, r.Attempts, r.Metadata)
	}
	// Embeddings follow the arm and the chain too.
	e.put("embed-bot", `{"arms":[{"model":"broken-embed"}],"fallback":["text-embedding-3-small"]}`)
	down := upstreamtest.Fault{Status: 503, Message: "down"}
	e.up.Fail(down, down, down) // the first model and the gateway's 2 retries
	var raw *http.Response
	emb, err := e.client().Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "embed-bot",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")}}, option.WithResponseInto(&raw))
	if err != nil || len(emb.Data) != 1 {
		t.Fatalf("embeddings through a route: %v", err)
	}
	if r := e.record(raw.Header.Get("X-Request-Id")); r.Model != "text-embedding-3-small" || r.Metadata["route.arm"] != "broken-embed" || r.Attempts != 4 {
		t.Errorf("embedding record: model %q attempts %d metadata %v; want the fallback after 3 failed attempts", r.Model, r.Attempts, r.Metadata)
	}
	// A non-retryable failure is not hidden by the chain.
	e.on("broken", func(req *api.ChatRequest) upstreamtest.Reply {
		return upstreamtest.Reply{Fault: upstreamtest.Fault{Status: 400, Message: "bad request"}}
	})
	if _, _, err := e.chat("support-bot", "", "hi"); err == nil || !strings.Contains(err.Error(), "status 400") {
		t.Errorf("non-retryable failure: %v, want the 400", err)
	}
}

// Shadow-judge agreement feeds the shadow target's rolling agreement.
func TestShadowAgreement(t *testing.T) {
	var calls atomic.Int64
	judged := make(chan struct{}, 16)
	e := newEnv(t, envOpts{agree: func(ctx context.Context, req *api.ChatRequest, primary, shadow *api.ChatResponse) (bool, error) {
		defer func() { judged <- struct{}{} }()
		calls.Add(1)
		return primary.Choices[0].Message.Content.String() == shadow.Choices[0].Message.Content.String(), nil
	}})
	e.on("student", func(req *api.ChatRequest) upstreamtest.Reply { return upstreamtest.Reply{Content: "teacher says hi"} })
	e.put("support-bot", `{"arms":[{"model":"teacher"}],"shadow":{"targets":["student","slow"]}}`)
	for range 3 {
		if _, _, err := e.chat("support-bot", "", "hi"); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 {
		<-judged
	}
	s := e.stats("support-bot")
	if q := armStats(s, "student").Agreement; q == nil || q.N != 3 || q.Value != 1 {
		t.Errorf("student agreement %+v, want 3/3", q)
	}
	if q := armStats(s, "slow").Agreement; q == nil || q.N != 3 || q.Value != 0 {
		t.Errorf("slow agreement %+v, want 0/3", q)
	}
}

// Replicas share the store: one replica's change reaches another at its next
// reload, and when both see a quality drop only one rollback is written.
// Two full gateways (each with its own router, capturer and upstream) run on
// one SQLite file, and on one PostgreSQL schema.
func TestReplicas(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "shared.db")
		testReplicas(t, func() store.Store {
			st, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := postgresSchema(t)
		testReplicas(t, func() store.Store {
			st, err := postgres.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
}

func testReplicas(t *testing.T, open func() store.Store) {
	ctx := context.Background()
	a, b := newEnv(t, envOpts{store: open()}), newEnv(t, envOpts{store: open()})
	a.put("support-bot", `{"arms":[{"model":"teacher"}]}`)
	if err := b.router.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if s := b.stats("support-bot"); s.Version != 1 {
		t.Fatalf("replica B after reload: version %d, want 1", s.Version)
	}
	a.put("support-bot", `{"arms":[{"model":"teacher","weight":50},{"model":"student","weight":50}],"rollback":{"min_feedback":0.5,"min_observations":6,"window":10}}`)
	if s := b.stats("support-bot"); s.Version != 1 {
		t.Fatalf("replica B saw version %d before reloading", s.Version)
	}
	if err := b.router.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if s := b.stats("support-bot"); s.Version != 2 || s.Shares["student"] != 50 {
		t.Fatalf("replica B after reload: %+v, want version 2 at 50%%", s)
	}
	// Low scores on the student's answers, half through each replica.
	for low := 0; low < 6; {
		e := a
		if low%2 == 1 {
			e = b
		}
		content, id, err := e.chat("support-bot", "", "hi")
		if err != nil {
			t.Fatal(err)
		}
		if armOf(content) == "student" {
			if code, body := e.do("POST", "/api/v1/feedback", []byte(fmt.Sprintf(`{"request_id":%q,"score":0}`, id))); code != 200 {
				t.Fatalf("feedback: %d %s", code, body)
			}
			low++
		}
	}
	var wg sync.WaitGroup
	for _, e := range []*env{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.router.Sync(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	hist, err := a.st.RouteHistory(ctx, "support-bot")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[2].Actor != route.AutoRollbackActor {
		for _, h := range hist {
			t.Logf("v%d by %s: %s", h.Version, h.Actor, h.Comment)
		}
		t.Fatalf("%d versions after both replicas saw the drop, want exactly one rollback (3)", len(hist))
	}
	for _, e := range []*env{a, b} {
		if err := e.router.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if s := e.stats("support-bot"); s.Version != 3 {
			t.Errorf("a replica serves version %d after the rollback, want 3", s.Version)
		}
		if content, _, err := e.chat("support-bot", "", "after"); err != nil || armOf(content) != "teacher" {
			t.Errorf("after the rollback: %q, %v", content, err)
		}
	}
}

// postgresSchema returns a DSN on a new schema of the test server
// (FOUNDRY_TEST_POSTGRES), dropped at the end; it skips when the server is
// unreachable, unless FOUNDRY_REQUIRE_ALL=1.
func postgresSchema(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dsn := os.Getenv("FOUNDRY_TEST_POSTGRES")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL at FOUNDRY_TEST_POSTGRES is unreachable: %v (start one, as scripts/test.sh does)", err)
		if os.Getenv("FOUNDRY_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "foundry_route_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// JudgeAgree: an LLM judge (here the fake, preferring the answer that says
// GOOD) turns shadow answers into agreement; a worse shadow disagrees.
func TestJudgeAgree(t *testing.T) {
	judged := make(chan struct{}, 16)
	var agree route.Agree
	e := newEnv(t, envOpts{agree: func(ctx context.Context, req *api.ChatRequest, primary, shadow *api.ChatResponse) (bool, error) {
		defer func() { judged <- struct{}{} }()
		return agree(ctx, req, primary, shadow)
	}})
	j, err := judge.New(judge.Options{Chatter: popenai.New(popenai.Options{BaseURL: e.up.URL, APIKey: "sk-up"}), Model: "judge"})
	if err != nil {
		t.Fatal(err)
	}
	agree = route.JudgeAgree(j, "")
	e.on("judge", func(req *api.ChatRequest) upstreamtest.Reply {
		p := req.Messages[len(req.Messages)-1].Content.String()
		a, b := strings.Index(p, "## Answer A"), strings.Index(p, "## Answer B")
		winner := "tie"
		if good := strings.Index(p[a:], "GOOD"); good >= 0 && a+good < b {
			winner = "A"
		}
		if strings.Contains(p[b:], "GOOD") {
			if winner == "A" {
				winner = "tie"
			} else {
				winner = "B"
			}
		}
		return upstreamtest.Reply{Content: fmt.Sprintf(`{"winner": %q, "reason": "fake"}`, winner)}
	})
	e.on("teacher", func(req *api.ChatRequest) upstreamtest.Reply { return upstreamtest.Reply{Content: "GOOD answer"} })
	e.on("student", func(req *api.ChatRequest) upstreamtest.Reply { return upstreamtest.Reply{Content: "GOOD too"} })
	e.on("slow", func(req *api.ChatRequest) upstreamtest.Reply { return upstreamtest.Reply{Content: "meh"} })
	e.put("support-bot", `{"arms":[{"model":"teacher"}],"shadow":{"targets":["student","slow"]}}`)
	for i := range 2 {
		if _, _, err := e.chat("support-bot", "", fmt.Sprint("question ", i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		<-judged
	}
	s := e.stats("support-bot")
	if q := armStats(s, "student").Agreement; q == nil || q.N != 2 || q.Value != 1 {
		t.Errorf("student (as good) agreement %+v, want 2/2", q)
	}
	if q := armStats(s, "slow").Agreement; q == nil || q.N != 2 || q.Value != 0 {
		t.Errorf("slow (worse) agreement %+v, want 0/2", q)
	}
}

// A client cannot label its call as another route's arm: route.* metadata
// it sends is replaced on routed calls.
func TestRouteMetadataNotSpoofable(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.put("support-bot", `{"arms":[{"model":"teacher"}]}`)
	var raw *http.Response
	_, err := e.client().Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "support-bot", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}},
		option.WithHeader("X-Foundry-Metadata", "route=other,route.arm=student,route.escalated=true,team=core"), option.WithResponseInto(&raw))
	if err != nil {
		t.Fatal(err)
	}
	r := e.record(raw.Header.Get("X-Request-Id"))
	want := map[string]string{"route": "support-bot", "route.version": "1", "route.arm": "teacher", "team": "core"}
	if len(r.Metadata) != len(want) {
		t.Fatalf("metadata %v, want %v", r.Metadata, want)
	}
	for k, v := range want {
		if r.Metadata[k] != v {
			t.Errorf("metadata %v, want %v", r.Metadata, want)
		}
	}
}
