package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/capture"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/provider/anthropic"
	popenai "github.com/foundryhq/foundry/provider/openai"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
	"github.com/foundryhq/foundry/upstreamtest"
)

// env is a gateway in front of a fake OpenAI upstream, capturing into a real SQLite file.
type env struct {
	t    testing.TB
	up   *upstreamtest.OpenAI
	st   store.Store
	capt *capture.Capturer
	srv  *gateway.Server
	http *httptest.Server
	URL  string // gateway base, e.g. http://127.0.0.1:1234
}

type envOpts struct {
	adminKey  string
	fallbacks map[string][]string
	retryMax  time.Duration
	firstByte time.Duration
	maxBody   int64
	extra     func(reg *provider.Registry)
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	up := upstreamtest.NewOpenAI(t)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "foundry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := provider.NewRegistry()
	reg.Register(popenai.New(popenai.Options{BaseURL: up.URL, APIKey: "sk-upstream-secret", FirstByteTimeout: o.firstByte}), provider.DefaultPrefixes["openai"]...)
	if o.extra != nil {
		o.extra(reg)
	}
	capt := capture.New(st, capture.Options{Prices: pricing.New(nil), SpillFile: filepath.Join(t.TempDir(), "spill.jsonl"), FlushInterval: 5 * time.Millisecond})
	if err := capt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if o.retryMax == 0 {
		o.retryMax = 2 * time.Second
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := gateway.New(ctx, gateway.Options{Registry: reg, Store: st, Plugins: []provider.Plugin{capt}, Fallbacks: o.fallbacks,
		AdminKey: o.adminKey, RetryBase: time.Millisecond, RetryMax: o.retryMax, MaxBodyBytes: o.maxBody, Flusher: capt, Logger: log,
		Stats: func() gateway.CaptureStats {
			s := capt.Stats()
			return gateway.CaptureStats{QueueDepth: s.QueueDepth, Written: s.Written, Spilled: s.Spilled, Lost: s.Lost}
		}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		capt.Close(context.Background())
	})
	return &env{t: t, up: up, st: st, capt: capt, srv: srv, http: hs, URL: hs.URL}
}

func (e *env) client(opts ...option.RequestOption) *openai.Client {
	c := openai.NewClient(append([]option.RequestOption{option.WithBaseURL(e.URL + "/v1"), option.WithAPIKey("unused"), option.WithMaxRetries(0)}, opts...)...)
	return &c
}

// record flushes capture and returns the record of request id.
func (e *env) record(id string) store.RecordWithFeedback {
	e.t.Helper()
	if err := e.capt.Flush(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	r, err := e.st.GetRecord(context.Background(), id)
	if err != nil {
		e.t.Fatalf("record %s: %v", id, err)
	}
	return r
}

// do sends a raw request and returns status, headers and body.
func (e *env) do(method, path, key string, body []byte, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestChatThroughOpenAISDK(t *testing.T) {
	e := newEnv(t, envOpts{})
	var hdr http.Header
	resp, err := e.client().Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("hello there")},
		User:     openai.String("user-7"),
	}, option.WithHeader("X-Foundry-Tags", "support, beta"), option.WithHeader("X-Foundry-Metadata", "team=core,env=test"),
		option.WithResponseInto(new(*http.Response)), func() option.RequestOption {
			return option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
				res, err := next(r)
				if res != nil {
					hdr = res.Header
				}
				return res, err
			})
		}())
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "echo: hello there" {
		t.Fatalf("content %q", got)
	}
	id := hdr.Get("X-Request-Id")
	if !strings.HasPrefix(id, "req_") {
		t.Fatalf("X-Request-Id %q", id)
	}
	// The upstream got Foundry's key, not the client's.
	if got := e.up.Requests()[0].Header.Get("Authorization"); got != "Bearer sk-upstream-secret" {
		t.Fatalf("upstream auth %q", got)
	}
	r := e.record(id)
	if r.Status != 200 || r.Provider != "openai" || r.Model != "gpt-4o-mini" || r.Route != "gpt-4o-mini" || r.Stream {
		t.Fatalf("record %+v", r.Record)
	}
	if r.PromptTokens == 0 || r.CompletionTokens != 3 || r.CostUSD <= 0 || r.UsageEstimated {
		t.Fatalf("usage/cost not recorded: %+v", r.Record)
	}
	if strings.Join(r.Tags, ",") != "support,beta" || r.Metadata["team"] != "core" || r.Metadata["env"] != "test" || r.User != "user-7" {
		t.Fatalf("tags/metadata/user: %v %v %q", r.Tags, r.Metadata, r.User)
	}
	if r.Latency <= 0 || r.TTFT <= 0 {
		t.Fatalf("latency %v ttft %v", r.Latency, r.TTFT)
	}
	var got api.ChatResponse
	if err := json.Unmarshal(r.Response, &got); err != nil || got.Choices[0].Message.Content.String() != "echo: hello there" {
		t.Fatalf("stored response %s (%v)", r.Response, err)
	}
	if strings.Contains(string(r.Request), "sk-upstream-secret") || strings.Contains(string(r.Response), "sk-upstream-secret") {
		t.Fatal("upstream key leaked into the store")
	}

	// The management API shows it, filtered by tag and model.
	code, _, body := e.do("GET", "/api/v1/requests?tag=support&model=gpt-4o-mini", "", nil)
	var list struct {
		Data []gateway.RecordJSON `json:"data"`
	}
	if code != 200 || json.Unmarshal(body, &list) != nil || len(list.Data) != 1 || list.Data[0].ID != id || list.Data[0].CostUSD <= 0 {
		t.Fatalf("list: %d %s", code, body)
	}
	code, _, body = e.do("GET", "/api/v1/requests?tag=nope", "", nil)
	if code != 200 || json.Unmarshal(body, &list) != nil || len(list.Data) != 0 {
		t.Fatalf("filtered list: %d %s", code, body)
	}
}

func TestStreamingThroughOpenAISDK(t *testing.T) {
	e := newEnv(t, envOpts{})
	var id string
	stream := e.client(option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		res, err := next(r)
		if res != nil {
			id = res.Header.Get("X-Request-Id")
		}
		return res, err
	})).Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:         "gpt-4o-mini",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("one two three four")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	acc := openai.ChatCompletionAccumulator{}
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "echo: one two three four" {
		t.Fatalf("streamed content %q", got)
	}
	if chunks < 3 || acc.Usage.CompletionTokens != 5 {
		t.Fatalf("chunks %d usage %+v", chunks, acc.Usage)
	}
	r := e.record(id)
	var got api.ChatResponse
	if err := json.Unmarshal(r.Response, &got); err != nil || got.Choices[0].Message.Content.String() != "echo: one two three four" {
		t.Fatalf("reassembled response %s (%v)", r.Response, err)
	}
	if !r.Stream || r.Status != 200 || r.CompletionTokens != 5 || r.TTFT <= 0 || r.TTFT > r.Latency {
		t.Fatalf("record %+v", r.Record)
	}
}

func TestStreamUsageOnlyWhenAsked(t *testing.T) {
	e := newEnv(t, envOpts{})
	code, hdr, body := e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"a b"}]}`))
	if code != 200 || strings.Contains(string(body), `"usage"`) || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Fatalf("%d %s", code, body)
	}
	// The upstream was still asked for usage, so the record has real counts.
	if r := e.record(hdr.Get("X-Request-Id")); r.CompletionTokens != 3 || r.UsageEstimated {
		t.Fatalf("record usage %+v", r.Record)
	}
}

func TestFieldsPassThroughUnchanged(t *testing.T) {
	e := newEnv(t, envOpts{})
	in := `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}}]}],
	"tools":[{"type":"function","function":{"name":"lookup","description":"d","parameters":{"type":"object","properties":{"q":{"type":"string"}}},"strict":true}}],
	"tool_choice":{"type":"function","function":{"name":"lookup"}},"parallel_tool_calls":false,
	"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"},"strict":true}},
	"n":2,"seed":42,"logprobs":true,"top_logprobs":3,"stop":["\n\n"],"user":"u1","metadata":{"k":"v"},
	"logit_bias":{"50256":-100},"reasoning_effort":"low","store":false,"vendor_x":{"nested":[1,2,3]}}`
	code, _, body := e.do("POST", "/v1/chat/completions", "", []byte(in))
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var sent, got map[string]any
	json.Unmarshal([]byte(in), &sent)
	json.Unmarshal(e.up.Requests()[0].Body, &got)
	for k, v := range sent {
		a, _ := json.Marshal(v)
		b, _ := json.Marshal(got[k])
		if string(a) != string(b) {
			t.Errorf("field %s: sent %s, upstream got %s", k, a, b)
		}
	}
}

func TestBadInputGetsOpenAIErrors(t *testing.T) {
	e := newEnv(t, envOpts{maxBody: 1 << 10})
	cases := []struct {
		name, body string
		status     int
		want       string
	}{
		{"malformed", `{"model":"gpt-4o",`, 400, "JSON"},
		{"wrong type", `{"model":"gpt-4o","messages":"hi"}`, 400, "messages"},
		{"no messages", `{"model":"gpt-4o","messages":[]}`, 400, "messages"},
		{"no model", `{"messages":[{"role":"user","content":"x"}]}`, 400, "model"},
		{"unknown model", `{"model":"mystery-9","messages":[{"role":"user","content":"x"}]}`, 404, "does not resolve"},
		{"too large", `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`, 413, "limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, hdr, body := e.do("POST", "/v1/chat/completions", "", []byte(c.body))
			var eb struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Code    *string `json:"code"`
				} `json:"error"`
			}
			if code != c.status || json.Unmarshal(body, &eb) != nil || eb.Error.Type == "" || !strings.Contains(eb.Error.Message, c.want) {
				t.Fatalf("got %d %s; want %d with %q", code, body, c.status, c.want)
			}
			// Bad traffic is recorded too.
			if r := e.record(hdr.Get("X-Request-Id")); r.Status != c.status || r.Error == "" {
				t.Fatalf("record %+v", r.Record)
			}
		})
	}
	if len(e.up.Requests()) != 0 {
		t.Fatalf("bad requests reached the upstream: %d", len(e.up.Requests()))
	}
	code, _, body := e.do("GET", "/v2/nothing", "", nil)
	if code != 404 || !strings.Contains(string(body), `"error"`) {
		t.Fatalf("unknown path: %d %s", code, body)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.Fail(upstreamtest.Fault{Status: 500, Message: "boom"}, upstreamtest.Fault{Status: 429, Message: "slow down"})
	code, hdr, body := e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`))
	if code != 200 || !strings.Contains(string(body), "echo: x") {
		t.Fatalf("%d %s", code, body)
	}
	if r := e.record(hdr.Get("X-Request-Id")); r.Attempts != 3 || r.Status != 200 {
		t.Fatalf("attempts %d status %d", r.Attempts, r.Status)
	}
}

func TestUpstreamErrorsReachClient(t *testing.T) {
	e := newEnv(t, envOpts{retryMax: 50 * time.Millisecond})
	// Persistent 500: retried, then a 502 that names the upstream.
	e.up.Fail(upstreamtest.Fault{Status: 500}, upstreamtest.Fault{Status: 500}, upstreamtest.Fault{Status: 500})
	code, hdr, body := e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`))
	if code != 502 || !strings.Contains(string(body), "upstream openai") {
		t.Fatalf("%d %s", code, body)
	}
	if r := e.record(hdr.Get("X-Request-Id")); r.Status != 502 || r.Attempts != 3 || r.Error == "" {
		t.Fatalf("record %+v", r.Record)
	}
	// A 429 whose Retry-After exceeds what we wait is passed through with the header.
	e.up.Fail(upstreamtest.Fault{Status: 429, RetryAfter: 30 * time.Second, Message: "rate limited"})
	code, hdr, body = e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`))
	if code != 429 || hdr.Get("Retry-After") != "30" {
		t.Fatalf("%d %v %s", code, hdr, body)
	}
	// A 400 from upstream is not retried and passes through.
	e.up.Fail(upstreamtest.Fault{Status: 400, Message: "bad param"})
	n := len(e.up.Requests())
	code, _, body = e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`))
	if code != 400 || !strings.Contains(string(body), "bad param") || len(e.up.Requests()) != n+1 {
		t.Fatalf("%d %s", code, body)
	}
}

func TestFallbackChain(t *testing.T) {
	backup := upstreamtest.NewOpenAI(t)
	backup.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		return upstreamtest.Reply{Content: "from backup " + req.Model}
	})
	e := newEnv(t, envOpts{fallbacks: map[string][]string{"gpt-4o": {"backup/small-model"}}, extra: func(reg *provider.Registry) {
		reg.Register(popenai.New(popenai.Options{Name: "backup", BaseURL: backup.URL}))
	}})
	e.up.Fail(upstreamtest.Fault{Status: 503}, upstreamtest.Fault{Status: 503}, upstreamtest.Fault{Status: 503})
	code, hdr, body := e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`))
	if code != 200 || !strings.Contains(string(body), "from backup small-model") || hdr.Get("X-Foundry-Provider") != "backup" {
		t.Fatalf("%d %s", code, body)
	}
	if r := e.record(hdr.Get("X-Request-Id")); r.Provider != "backup" || r.Model != "small-model" || r.Route != "gpt-4o" || r.Attempts != 4 {
		t.Fatalf("record %+v", r.Record)
	}
}

func TestMidStreamDisconnectIsReportedAndCaptured(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.Fail(upstreamtest.Fault{DisconnectAfter: 2})
	code, hdr, body := e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"a b c d e f"}]}`))
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	s := string(body)
	if !strings.Contains(s, `"error"`) || strings.Contains(s, "[DONE]") || !strings.Contains(s, `"content"`) {
		t.Fatalf("client stream: %s", s)
	}
	r := e.record(hdr.Get("X-Request-Id"))
	if r.Error == "" || r.Status < 500 || len(r.Response) == 0 {
		t.Fatalf("record %+v response %s", r.Record, r.Response)
	}
	// Failures before the first byte are retried instead.
	e.up.Fail(upstreamtest.Fault{DisconnectAfter: -1})
	code, _, body = e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"ok"}]}`))
	if code != 200 || !strings.Contains(string(body), "[DONE]") || strings.Contains(string(body), `"error"`) {
		t.Fatalf("retried stream: %d %s", code, body)
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	e := newEnv(t, envOpts{})
	arrived := make(chan struct{})
	e.up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		close(arrived)
		return upstreamtest.Reply{Fault: upstreamtest.Fault{Hang: true}}
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`))
	go func() {
		<-arrived // cancel once the upstream has the request
		cancel()
	}()
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("expected the client's request to be cancelled")
	}
	// The record shows the client went away (499), and nothing was lost.
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.capt.Flush(context.Background())
		page, _ := e.st.ListRecords(context.Background(), store.Query{})
		if len(page.Records) == 1 {
			if page.Records[0].Status != gateway.StatusClientClosed {
				t.Fatalf("status %d", page.Records[0].Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cancelled call was not captured")
		}
		<-time.After(2 * time.Millisecond) // the server notices the disconnect asynchronously
	}
}

func TestFirstByteTimeout(t *testing.T) {
	e := newEnv(t, envOpts{firstByte: 50 * time.Millisecond, retryMax: 10 * time.Millisecond})
	e.up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		return upstreamtest.Reply{Fault: upstreamtest.Fault{Hang: true}}
	})
	code, _, body := e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`))
	if code != 504 || !strings.Contains(string(body), "timed out") {
		t.Fatalf("%d %s", code, body)
	}
}

func TestFeedback(t *testing.T) {
	e := newEnv(t, envOpts{})
	_, hdr, _ := e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`))
	id := hdr.Get("X-Request-Id")
	// Posted straight away: the record may still be queued; the gateway flushes and finds it.
	code, _, body := e.do("POST", "/api/v1/feedback", "", []byte(`{"request_id":"`+id+`","score":0.9,"label":"good","comment":"nice"}`))
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	code, _, body = e.do("GET", "/api/v1/requests/"+id, "", nil)
	var r gateway.RecordJSON
	if code != 200 || json.Unmarshal(body, &r) != nil || r.Feedback == nil || *r.Feedback.Score != 0.9 || r.Feedback.Label != "good" {
		t.Fatalf("%d %s", code, body)
	}
	for _, bad := range []struct {
		body   string
		status int
	}{
		{`{"request_id":"req_nope","score":1}`, 404},
		{`{"score":1}`, 400},
		{`{"request_id":"` + id + `"}`, 400},
		{`{"request_id":"` + id + `","score":"high"}`, 400},
	} {
		if code, _, body := e.do("POST", "/api/v1/feedback", "", []byte(bad.body)); code != bad.status || !strings.Contains(string(body), `"message"`) {
			t.Errorf("%s: %d %s", bad.body, code, body)
		}
	}
	if code, _, _ := e.do("GET", "/api/v1/requests/req_nope", "", nil); code != 404 {
		t.Fatalf("unknown id: %d", code)
	}
}

func TestKeysAndAuth(t *testing.T) {
	e := newEnv(t, envOpts{adminKey: "admin-secret"})
	chat := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`)
	if code, _, body := e.do("POST", "/v1/chat/completions", "", chat); code != 401 || !strings.Contains(string(body), "missing API key") {
		t.Fatalf("no key: %d %s", code, body)
	}
	if code, _, _ := e.do("POST", "/v1/chat/completions", "wrong", chat); code != 401 {
		t.Fatalf("wrong key: %d", code)
	}
	if code, _, _ := e.do("GET", "/api/v1/requests", "", nil); code != 401 {
		t.Fatalf("api without key: %d", code)
	}
	code, _, body := e.do("POST", "/api/v1/keys", "admin-secret", []byte(`{"name":"app","project":"shop"}`))
	var k gateway.KeyJSON
	if code != 201 || json.Unmarshal(body, &k) != nil || !strings.HasPrefix(k.Secret, "fdy-") {
		t.Fatalf("create key: %d %s", code, body)
	}
	code, hdr, body := e.do("POST", "/v1/chat/completions", k.Secret, chat)
	if code != 200 {
		t.Fatalf("virtual key: %d %s", code, body)
	}
	if r := e.record(hdr.Get("X-Request-Id")); r.Project != "shop" || r.KeyID != k.ID {
		t.Fatalf("record identity %q %q", r.Project, r.KeyID)
	}
	if code, _, _ := e.do("GET", "/api/v1/requests", k.Secret, nil); code != 403 {
		t.Fatalf("virtual key on admin API: %d", code)
	}
	// Keys are listed without secrets and stored hashed.
	_, _, body = e.do("GET", "/api/v1/keys", "admin-secret", nil)
	if strings.Contains(string(body), k.Secret) || !strings.Contains(string(body), k.ID) {
		t.Fatalf("list keys: %s", body)
	}
	if code, _, _ := e.do("DELETE", "/api/v1/keys/"+k.ID, "admin-secret", nil); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _, _ := e.do("POST", "/v1/chat/completions", k.Secret, chat); code != 401 {
		t.Fatalf("revoked key: %d", code)
	}
}

func TestModelsAndMetrics(t *testing.T) {
	e := newEnv(t, envOpts{})
	models, err := e.client().Models.List(context.Background())
	if err != nil || len(models.Data) == 0 {
		t.Fatalf("models: %v %v", models, err)
	}
	e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`))
	code, _, body := e.do("GET", "/metrics", "", nil)
	for _, want := range []string{`foundry_requests_total{endpoint="chat.completions",model="gpt-4o-mini",provider="openai",status="200"} 1`,
		"foundry_capture_queue_depth", "foundry_capture_lost_total 0", "foundry_request_duration_seconds_bucket"} {
		if code != 200 || !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestEmbeddings(t *testing.T) {
	e := newEnv(t, envOpts{})
	resp, err := e.client().Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "text-embedding-3-small", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}}})
	if err != nil || len(resp.Data) != 2 {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestGracefulShutdownDrainsAndFlushes(t *testing.T) {
	e := newEnv(t, envOpts{})
	release := make(chan struct{})
	arrived := make(chan struct{})
	e.up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		close(arrived)
		<-release
		return upstreamtest.Reply{Content: "finished late"}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, ln, 10*time.Second) }()
	type result struct {
		code int
		body string
		id   string
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"x"}]}`))
		if err != nil {
			got <- result{code: -1, body: err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{resp.StatusCode, string(b), resp.Header.Get("X-Request-Id")}
	}()
	<-arrived
	stop() // SIGTERM arrives while the call is in flight
	close(release)
	r := <-got
	if r.code != 200 || !strings.Contains(r.body, `"late"`) || !strings.Contains(r.body, "[DONE]") {
		t.Fatalf("in-flight stream: %d %s", r.code, r.body)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if err := e.capt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec, err := e.st.GetRecord(context.Background(), r.id)
	if err != nil || rec.Status != 200 {
		t.Fatalf("record after shutdown: %+v %v", rec.Record, err)
	}
}

func TestAnthropicThroughOpenAISDK(t *testing.T) {
	fake := upstreamtest.NewAnthropic(t)
	fake.APIKey = "sk-ant-secret"
	e := newEnv(t, envOpts{extra: func(reg *provider.Registry) {
		reg.Register(anthropic.New(anthropic.Options{BaseURL: fake.URL, APIKey: "sk-ant-secret"}), provider.DefaultPrefixes["anthropic"]...)
	}})
	var ids []string
	grab := option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		res, err := next(r)
		if res != nil {
			ids = append(ids, res.Header.Get("X-Request-Id"))
		}
		return res, err
	})
	params := openai.ChatCompletionNewParams{
		Model:    "claude-sonnet-4-5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("bonjour le monde")},
	}
	resp, err := e.client(grab).Chat.Completions.New(context.Background(), params, option.WithHeader("X-Foundry-Tags", "fr"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "echo: bonjour le monde" || resp.Choices[0].FinishReason != "stop" {
		t.Fatalf("%+v", resp.Choices[0])
	}
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := e.client(grab).Chat.Completions.NewStreaming(context.Background(), params)
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil || acc.Choices[0].Message.Content != "echo: bonjour le monde" {
		t.Fatalf("stream: %v %q", err, acc.Choices[0].Message.Content)
	}
	for i, id := range ids {
		r := e.record(id)
		if r.Provider != "anthropic" || r.Model != "claude-sonnet-4-5" || r.Status != 200 || r.CompletionTokens == 0 || r.CostUSD <= 0 || r.Stream != (i == 1) {
			t.Fatalf("record %d: %+v", i, r.Record)
		}
		if strings.Join(r.Tags, ",") != "fr" && i == 0 {
			t.Fatalf("tags %v", r.Tags)
		}
	}
	// The upstream saw the Messages API: system on top, the key in x-api-key.
	got := fake.Requests()[0]
	if got.Path != "/v1/messages" || got.Header.Get("x-api-key") != "sk-ant-secret" || !strings.Contains(string(got.Body), `"system"`) {
		t.Fatalf("upstream request %s %v %s", got.Path, got.Header, got.Body)
	}
}

func TestUsageRollup(t *testing.T) {
	e := newEnv(t, envOpts{})
	for i := 0; i < 3; i++ {
		e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a b c"}]}`))
	}
	e.up.Fail(upstreamtest.Fault{Status: 400, Message: "nope"})
	e.do("POST", "/v1/chat/completions", "", []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`))
	e.capt.Flush(context.Background())
	code, _, body := e.do("GET", "/api/v1/usage?since=1h&bucket=1h", "", nil)
	var out struct {
		Data []gateway.UsageJSON `json:"data"`
	}
	if code != 200 || json.Unmarshal(body, &out) != nil {
		t.Fatalf("%d %s", code, body)
	}
	byModel := map[string]gateway.UsageJSON{}
	for _, u := range out.Data {
		byModel[u.Model] = u
	}
	if m := byModel["gpt-4o-mini"]; m.Requests != 3 || m.Errors != 0 || m.CompletionTokens != 12 || m.CostUSD <= 0 {
		t.Fatalf("gpt-4o-mini: %+v", m)
	}
	if m := byModel["gpt-4o"]; m.Requests != 1 || m.Errors != 1 {
		t.Fatalf("gpt-4o: %+v", m)
	}
	if code, _, _ := e.do("GET", "/api/v1/usage?bucket=1ms", "", nil); code != 400 {
		t.Fatalf("bad bucket: %d", code)
	}
	if code, _, _ := e.do("GET", "/api/v1/requests?cursor=garbage", "", nil); code != 400 {
		t.Fatalf("bad cursor: %d", code)
	}
}
