package route_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/capture"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/provider"
	popenai "github.com/foundryhq/foundry/provider/openai"
	"github.com/foundryhq/foundry/route"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
	"github.com/foundryhq/foundry/upstreamtest"
)

const admin = "admin-secret"

// env is the real gateway with the route middleware, in front of one fake
// OpenAI upstream that answers per model ("teacher", "student", ...),
// capturing into a real SQLite file.
type env struct {
	t      *testing.T
	up     *upstreamtest.OpenAI
	st     store.Store
	capt   *capture.Capturer
	router *route.Router
	URL    string

	mu      sync.Mutex
	replies map[string]func(req *api.ChatRequest) upstreamtest.Reply
}

type envOpts struct {
	store                      store.Store // default: a new SQLite file; closed with the test
	shadowQueue, shadowWorkers int
	agree                      route.Agree
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, replies: map[string]func(*api.ChatRequest) upstreamtest.Reply{}}
	e.up = upstreamtest.NewOpenAI(t)
	e.up.Record(false)
	e.up.SetModels("teacher", "student", "broken", "slow", "broken-embed", "text-embedding-3-small")
	e.up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		e.mu.Lock()
		f := e.replies[req.Model]
		e.mu.Unlock()
		if f != nil {
			return f(req)
		}
		return upstreamtest.Reply{Content: req.Model + " says hi"}
	})
	st := o.store
	if st == nil {
		var err error
		if st, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "foundry.db")); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	reg := provider.NewRegistry()
	reg.Register(popenai.New(popenai.Options{Name: "up", BaseURL: e.up.URL, APIKey: "sk-up"}), "teacher", "student", "broken", "slow", "text-embedding-")
	e.capt = capture.New(st, capture.Options{Prices: pricing.New(nil), FlushInterval: 5 * time.Millisecond, QueueSize: 1 << 14})
	if err := e.capt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.capt.Close(context.Background()) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.router = route.New(route.Options{Store: st, Recorder: e.capt, Agree: o.agree, Logger: log,
		Resolve:     route.RegistryResolver(reg),
		Reload:      time.Hour, // tests call Sync themselves
		ShadowQueue: o.shadowQueue, ShadowWorkers: o.shadowWorkers})
	if err := e.router.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.router.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	srv, err := gateway.New(ctx, gateway.Options{Registry: reg, Store: st, Plugins: []provider.Plugin{e.capt},
		Middleware: []provider.Middleware{e.router.Middleware}, AdminKey: admin, RetryBase: time.Millisecond,
		RetryMax: 10 * time.Millisecond, Flusher: e.capt, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.router.Mount(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e.URL = hs.URL
	return e
}

// on sets how the fake answers model.
func (e *env) on(model string, f func(req *api.ChatRequest) upstreamtest.Reply) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.replies[model] = f
}

func (e *env) client() *openai.Client {
	c := openai.NewClient(option.WithBaseURL(e.URL+"/v1"), option.WithAPIKey(admin), option.WithMaxRetries(0))
	return &c
}

// do sends a request with the admin key and returns status and body.
func (e *env) do(method, path string, body []byte) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// put stores a policy through the API and fails the test unless it is accepted.
func (e *env) put(name, policy string) route.RouteJSON {
	e.t.Helper()
	code, b := e.do("PUT", "/api/v1/routes/"+name+"?actor=test", []byte(policy))
	if code != 200 {
		e.t.Fatalf("PUT route %s: %d %s", name, code, b)
	}
	var rj route.RouteJSON
	if err := json.Unmarshal(b, &rj); err != nil {
		e.t.Fatal(err)
	}
	return rj
}

func (e *env) get(name string) route.RouteJSON {
	e.t.Helper()
	code, b := e.do("GET", "/api/v1/routes/"+name, nil)
	if code != 200 {
		e.t.Fatalf("GET route %s: %d %s", name, code, b)
	}
	var rj route.RouteJSON
	if err := json.Unmarshal(b, &rj); err != nil {
		e.t.Fatal(err)
	}
	return rj
}

// chat is one raw non-streaming chat call; it returns the answer's text and request id.
func (e *env) chat(model, user, prompt string) (string, string, error) {
	body, _ := json.Marshal(map[string]any{"model": model, "user": user, "messages": []map[string]string{{"role": "user", "content": prompt}}})
	req, _ := http.NewRequest("POST", e.URL+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", resp.Header.Get("X-Request-Id"), fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var cr api.ChatResponse
	if err := json.Unmarshal(b, &cr); err != nil {
		return "", "", err
	}
	return cr.Choices[0].Message.Content.String(), resp.Header.Get("X-Request-Id"), nil
}

// record flushes capture and returns a record.
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

// children returns the records whose ParentID is id.
func (e *env) children(id string) []store.RecordWithFeedback {
	e.t.Helper()
	if err := e.capt.Flush(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	var out []store.RecordWithFeedback
	err := e.st.ScanRecords(context.Background(), store.Query{}, func(r store.RecordWithFeedback) error {
		if r.ParentID == id {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) stats(name string) route.Stats {
	e.t.Helper()
	s, ok := e.router.Stats(name)
	if !ok {
		e.t.Fatalf("route %s is not loaded", name)
	}
	return s
}

func armStats(s route.Stats, arm string) route.ArmStats {
	for _, a := range s.Arms {
		if a.Arm == arm {
			return a
		}
	}
	return route.ArmStats{}
}

// armOf tells which model answered from the fake's "<model> says hi".
func armOf(content string) string {
	m, _, _ := strings.Cut(content, " ")
	return m
}

// parallel runs fn(i) for i in [0, n) on workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
