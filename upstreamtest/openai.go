package upstreamtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/foundryhq/foundry/api"
)

// Reply is what the fake OpenAI server answers to one chat request.
type Reply struct {
	Content      string         // assistant text; streamed word by word
	ToolCalls    []api.ToolCall // tool calls; streamed as name then argument pieces
	FinishReason string         // default "stop", or "tool_calls" when ToolCalls are set
	Usage        *api.Usage     // default: counted from words; see NoUsage
	NoUsage      bool           // omit usage (to exercise local token counting)
	Logprobs     bool           // attach a logprob per streamed piece / token
	Fault        Fault          // fail this call instead
}

// OpenAI is a fake OpenAI API server at URL (which ends in /v1).
type OpenAI struct {
	*recorder
	URL    string // base URL for clients, e.g. http://127.0.0.1:34567/v1
	mu     sync.Mutex
	reply  func(req *api.ChatRequest) Reply
	models []string
	seq    atomic.Int64
	// APIKey, when set, is required as the Bearer token (401 otherwise).
	APIKey string
}

// TB is the part of testing.TB the fakes use, so benchmarks can pass nil.
type TB interface {
	Helper()
	Cleanup(func())
}

// NewOpenAI starts a fake OpenAI server on 127.0.0.1. With t non-nil it is
// closed at the end of the test. Its default reply echoes the last user
// message as "echo: <text>" with usage counted in words.
func NewOpenAI(t TB) *OpenAI {
	o := NewOpenAIHandler()
	if t != nil {
		t.Helper()
	}
	o.serve(t, o)
	o.URL = o.srv.URL + "/v1"
	return o
}

// NewOpenAIHandler returns the fake as an http.Handler only, without a
// server of its own (URL is empty; Close and Addr must not be called): for
// embedding it behind another server, as the quick start's simulated
// teacher does.
func NewOpenAIHandler() *OpenAI {
	return &OpenAI{recorder: newRecorder(), models: []string{"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"}}
}

// OnChat sets the reply function for chat requests (nil restores the echo).
func (o *OpenAI) OnChat(f func(req *api.ChatRequest) Reply) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reply = f
}

// SetModels sets the ids GET /v1/models lists.
func (o *OpenAI) SetModels(ids ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.models = ids
}

// Echo is the default reply: "echo: " + the last user message's text.
func Echo(req *api.ChatRequest) Reply {
	last := ""
	for _, m := range req.Messages {
		if m.Role == "user" {
			last = m.Content.String()
		}
	}
	return Reply{Content: "echo: " + last}
}

// WordCount is the fake's token count: whitespace-separated words.
func WordCount(s string) int { return len(strings.Fields(s)) }

func (o *OpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	o.record(r, body)
	if o.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+o.APIKey {
		writeOpenAIError(w, Fault{Status: 401, Message: "Incorrect API key provided."})
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		o.mu.Lock()
		list := api.ModelList{Object: "list", Data: []api.Model{}}
		for _, id := range o.models {
			list.Data = append(list.Data, api.Model{ID: id, Object: "model", Created: 1700000000, OwnedBy: "upstreamtest"})
		}
		o.mu.Unlock()
		writeJSON(w, list)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/embeddings":
		o.embeddings(w, r, body)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
		o.chat(w, r, body)
	default:
		writeOpenAIError(w, Fault{Status: 404, Message: "Invalid URL (" + r.Method + " " + r.URL.Path + ")"})
	}
}

func (o *OpenAI) chat(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.ChatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeOpenAIError(w, Fault{Status: 400, Message: "We could not parse the JSON body of your request: " + err.Error()})
		return
	}
	o.mu.Lock()
	replyFn := o.reply
	o.mu.Unlock()
	if replyFn == nil {
		replyFn = Echo
	}
	rep := replyFn(&req)
	fault := o.nextFault()
	if fault == (Fault{}) {
		fault = rep.Fault
	}
	if fault.Hang {
		select {
		case <-r.Context().Done():
		case <-o.closed:
		}
		return
	}
	if fault.Status != 0 {
		writeOpenAIError(w, fault)
		return
	}
	if rep.FinishReason == "" {
		rep.FinishReason = "stop"
		if len(rep.ToolCalls) > 0 {
			rep.FinishReason = "tool_calls"
		}
	}
	if rep.Usage == nil && !rep.NoUsage {
		in := 0
		for _, m := range req.Messages {
			in += WordCount(m.Content.String())
		}
		out := WordCount(rep.Content)
		for _, tc := range rep.ToolCalls {
			out += WordCount(tc.Function.Name + " " + tc.Function.Arguments)
		}
		rep.Usage = &api.Usage{PromptTokens: in, CompletionTokens: out, TotalTokens: in + out}
	}
	if rep.NoUsage {
		rep.Usage = nil
	}
	id := fmt.Sprintf("chatcmpl-fake%d", o.seq.Add(1))
	n := 1
	if req.N != nil && *req.N > 1 && *req.N <= 16 {
		n = *req.N
	}
	if req.Stream {
		o.stream(w, r, &req, rep, id, n, fault)
		return
	}
	resp := api.ChatResponse{ID: id, Object: "chat.completion", Created: time.Now().Unix(), Model: req.Model, Usage: rep.Usage, SystemFingerprint: "fp_fake"}
	for i := 0; i < n; i++ {
		m := api.Message{Role: "assistant", ToolCalls: rep.ToolCalls}
		if rep.Content != "" || len(rep.ToolCalls) == 0 {
			m.Content = api.TextContent(rep.Content)
		}
		c := api.Choice{Index: i, Message: m, FinishReason: rep.FinishReason}
		if rep.Logprobs {
			c.Logprobs = &api.Logprobs{Content: logprobsFor(strings.Fields(rep.Content))}
		}
		resp.Choices = append(resp.Choices, c)
	}
	writeJSON(w, resp)
}

func logprobsFor(pieces []string) []api.TokenLogprob {
	out := make([]api.TokenLogprob, 0, len(pieces))
	for i, p := range pieces {
		lp := -0.05 * float64(i%5)
		out = append(out, api.TokenLogprob{Token: p, Logprob: lp, Bytes: bytesOf(p), TopLogprobs: []api.TopLogprob{{Token: p, Logprob: lp, Bytes: bytesOf(p)}}})
	}
	return out
}

func bytesOf(s string) []int {
	b := make([]int, len(s))
	for i := range s {
		b[i] = int(s[i])
	}
	return b
}

// stream writes the reply as OpenAI's SSE chunks: a role chunk, content
// pieces, tool-call deltas, a finish chunk per choice, the usage chunk when
// stream_options.include_usage is set, and "data: [DONE]". Keep-alive
// comments are interleaved, as real servers do.
func (o *OpenAI) stream(w http.ResponseWriter, r *http.Request, req *api.ChatRequest, rep Reply, id string, n int, fault Fault) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	created := time.Now().Unix()
	sent := 0
	cut := func() bool {
		if fault.DisconnectAfter != 0 && (fault.DisconnectAfter < 0 || sent >= fault.DisconnectAfter) {
			if fl != nil {
				fl.Flush()
			}
			disconnect(w)
		}
		return false
	}
	send := func(c api.ChatChunk) {
		cut()
		c.ID, c.Object, c.Created, c.Model, c.SystemFingerprint = id, "chat.completion.chunk", created, req.Model, "fp_fake"
		b, _ := json.Marshal(c)
		_ = api.WriteSSE(w, b)
		sent++
		if fl != nil {
			fl.Flush()
		}
	}
	if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
		return
	}
	pieces := splitKeep(rep.Content)
	for ci := 0; ci < n; ci++ {
		send(api.ChatChunk{Choices: []api.ChunkChoice{{Index: ci, Delta: api.Delta{Role: "assistant", Content: api.Ptr("")}}}})
		for i, p := range pieces {
			cc := api.ChunkChoice{Index: ci, Delta: api.Delta{Content: api.Ptr(p)}}
			if rep.Logprobs {
				cc.Logprobs = &api.Logprobs{Content: logprobsFor([]string{p})}
				cc.Logprobs.Content[0].Logprob = -0.05 * float64(i%5)
			}
			send(api.ChatChunk{Choices: []api.ChunkChoice{cc}})
			if i == len(pieces)/2 {
				_, _ = io.WriteString(w, ": ping\n\n")
			}
		}
		for ti, tc := range rep.ToolCalls {
			send(api.ChatChunk{Choices: []api.ChunkChoice{{Index: ci, Delta: api.Delta{ToolCalls: []api.ToolCallDelta{{Index: ti, ID: tc.ID, Type: "function", Function: api.FunctionCallDelta{Name: tc.Function.Name}}}}}}})
			args := tc.Function.Arguments
			half := len(args) / 2
			for _, part := range []string{args[:half], args[half:]} {
				send(api.ChatChunk{Choices: []api.ChunkChoice{{Index: ci, Delta: api.Delta{ToolCalls: []api.ToolCallDelta{{Index: ti, Function: api.FunctionCallDelta{Arguments: part}}}}}}})
			}
		}
		send(api.ChatChunk{Choices: []api.ChunkChoice{{Index: ci, Delta: api.Delta{}, FinishReason: api.Ptr(rep.FinishReason)}}})
	}
	if req.IncludeUsage() && rep.Usage != nil {
		send(api.ChatChunk{Choices: []api.ChunkChoice{}, Usage: rep.Usage})
	}
	cut()
	_, _ = w.Write(api.DoneEvent)
}

// splitKeep splits s into pieces that concatenate back to s (words with
// their following space).
func splitKeep(s string) []string {
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

func (o *OpenAI) embeddings(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.EmbeddingRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeOpenAIError(w, Fault{Status: 400, Message: "invalid JSON: " + err.Error()})
		return
	}
	if f := o.nextFault(); f.Status != 0 {
		writeOpenAIError(w, f)
		return
	}
	texts := req.Texts()
	if texts == nil {
		texts = []string{string(req.Input)}
	}
	dims := 8
	if req.Dimensions != nil && *req.Dimensions > 0 && *req.Dimensions <= 4096 {
		dims = *req.Dimensions
	}
	resp := api.EmbeddingResponse{Object: "list", Model: req.Model, Usage: &api.EmbeddingUsage{}}
	for i, t := range texts {
		v := make([]float64, dims)
		for j := range v {
			v[j] = math.Round(math.Sin(float64(len(t)*(j+1)+i))*1e6) / 1e6
		}
		b, _ := json.Marshal(v)
		resp.Data = append(resp.Data, api.Embedding{Object: "embedding", Index: i, Embedding: b})
		resp.Usage.PromptTokens += WordCount(t)
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	writeJSON(w, resp)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func writeOpenAIError(w http.ResponseWriter, f Fault) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
	}
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(f.Status)
	}
	typ := "server_error"
	if f.Status < 500 {
		typ = "invalid_request_error"
	}
	if f.Status == 429 {
		typ = "requests"
	}
	api.WriteError(w, &api.Error{Status: f.Status, Message: msg, Type: typ})
}
