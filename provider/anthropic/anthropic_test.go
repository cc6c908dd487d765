package anthropic_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/provider/anthropic"
	"github.com/foundryhq/foundry/upstreamtest"
)

const testKey = "sk-ant-test-SECRET-0123456789"

// fake starts a fake Anthropic server requiring testKey and a provider for it.
func fake(t *testing.T, opts anthropic.Options) (*upstreamtest.Anthropic, *anthropic.Provider) {
	t.Helper()
	up := upstreamtest.NewAnthropic(t)
	up.APIKey = testKey
	opts.BaseURL, opts.APIKey = up.URL, testKey
	return up, anthropic.New(opts)
}

func parseReq(t *testing.T, s string) *api.ChatRequest {
	t.Helper()
	var r api.ChatRequest
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("parse request: %v", err)
	}
	return &r
}

// lastBody decodes the body of the last request the fake received.
func lastBody(t *testing.T, up *upstreamtest.Anthropic) map[string]any {
	t.Helper()
	rs := up.Requests()
	if len(rs) == 0 {
		t.Fatal("upstream received no request")
	}
	var m map[string]any
	if err := json.Unmarshal(rs[len(rs)-1].Body, &m); err != nil {
		t.Fatalf("upstream body: %v", err)
	}
	return m
}

// collect reads a stream to its end and returns its chunks and the final error (nil at io.EOF).
func collect(t *testing.T, s provider.Stream) ([]*api.ChatChunk, error) {
	t.Helper()
	defer s.Close()
	var out []*api.ChatChunk
	for {
		c, err := s.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
}

func reassemble(chunks []*api.ChatChunk) *api.ChatResponse {
	var acc api.Accumulator
	for _, c := range chunks {
		acc.Add(c)
	}
	return acc.Response()
}

func TestChatSendsHeadersAndTranslates(t *testing.T) {
	up, p := fake(t, anthropic.Options{})
	req := parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi there"}],"temperature":0.5}`)
	before := time.Now().Unix()
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := up.Requests()[0]
	if got.Method != "POST" || got.Path != "/v1/messages" {
		t.Errorf("request %s %s, want POST /v1/messages", got.Method, got.Path)
	}
	for h, want := range map[string]string{"X-Api-Key": testKey, "Anthropic-Version": "2023-06-01", "Content-Type": "application/json"} {
		if v := got.Header.Get(h); v != want {
			t.Errorf("header %s = %q, want %q", h, v, want)
		}
	}
	if got.Header.Get("Authorization") != "" {
		t.Error("Authorization header sent to Anthropic")
	}
	body := lastBody(t, up)
	if body["system"] != "Be brief." || body["max_tokens"] != float64(anthropic.DefaultMaxTokens) || body["temperature"] != 0.5 || body["stream"] != nil {
		t.Errorf("upstream body %v", body)
	}
	if resp.Object != "chat.completion" || !strings.HasPrefix(resp.ID, "msg_") || resp.Model != "claude-sonnet-4-5" || resp.Created < before {
		t.Errorf("response header fields %+v", resp)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].Message.Content.String() != "echo: hi there" || resp.Choices[0].FinishReason != "stop" || resp.Choices[0].Message.Role != "assistant" {
		t.Fatalf("choices %+v", resp.Choices)
	}
	// Input words: "Be brief." + "hi there"; output: "echo: hi there".
	if u := resp.Usage; u == nil || u.PromptTokens != 4 || u.CompletionTokens != 3 || u.TotalTokens != 7 {
		t.Errorf("usage %+v", resp.Usage)
	}
}

func TestDefaultMaxTokensOption(t *testing.T) {
	up, p := fake(t, anthropic.Options{DefaultMaxTokens: 77})
	if _, err := p.Chat(context.Background(), parseReq(t, `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"x"}]}`)); err != nil {
		t.Fatal(err)
	}
	if got := lastBody(t, up)["max_tokens"]; got != float64(77) {
		t.Errorf("max_tokens %v, want 77", got)
	}
}

func TestToolsRoundTrip(t *testing.T) {
	up, p := fake(t, anthropic.Options{})
	up.OnMessages(func(r *upstreamtest.AnthropicRequest) upstreamtest.AnthropicReply {
		last := r.Messages[len(r.Messages)-1]
		if bs := last.Blocks(); bs[0].Type == "tool_result" {
			return upstreamtest.AnthropicReply{Text: "Rome is warmer."}
		}
		return upstreamtest.AnthropicReply{Text: "Checking both.", ToolUses: []upstreamtest.AnthropicToolUse{
			{ID: "toolu_p", Name: "get_weather", Input: json.RawMessage(`{"city":"Paris"}`)},
			{ID: "toolu_r", Name: "get_weather", Input: json.RawMessage(`{"city":"Rome"}`)},
		}}
	})
	req := parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Weather in Paris and Rome?"}],
		"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":"auto"}`)
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	m := resp.Choices[0].Message
	want := []api.ToolCall{
		{ID: "toolu_p", Type: "function", Function: api.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}},
		{ID: "toolu_r", Type: "function", Function: api.FunctionCall{Name: "get_weather", Arguments: `{"city":"Rome"}`}},
	}
	if !reflect.DeepEqual(m.ToolCalls, want) || m.Content.String() != "Checking both." || resp.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("message %+v finish %q", m, resp.Choices[0].FinishReason)
	}
	body := lastBody(t, up)
	if tc := body["tool_choice"].(map[string]any); tc["type"] != "auto" {
		t.Errorf("tool_choice %v", tc)
	}
	if tools := body["tools"].([]any); tools[0].(map[string]any)["input_schema"] == nil {
		t.Errorf("tools %v", tools)
	}

	// Second turn: the assistant's calls and both results go back; the fake
	// rejects tool results that do not answer the previous turn's tool uses.
	req.Messages = append(req.Messages, m,
		api.Message{Role: "tool", ToolCallID: "toolu_p", Content: api.TextContent("18C")},
		api.Message{Role: "tool", ToolCallID: "toolu_r", Content: api.TextContent("24C")})
	resp, err = p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content.String() != "Rome is warmer." {
		t.Fatalf("second turn %+v", resp.Choices[0].Message)
	}
	msgs := lastBody(t, up)["messages"].([]any)
	if len(msgs) != 3 {
		t.Fatalf("want user, assistant, user(tool results); got %v", msgs)
	}
	results := msgs[2].(map[string]any)["content"].([]any)
	if len(results) != 2 || results[0].(map[string]any)["tool_use_id"] != "toolu_p" || results[1].(map[string]any)["content"] != "24C" {
		t.Errorf("tool results %v", results)
	}
	uses := msgs[1].(map[string]any)["content"].([]any)
	if len(uses) != 3 || uses[1].(map[string]any)["input"].(map[string]any)["city"] != "Paris" {
		t.Errorf("assistant turn %v", uses)
	}
}

func TestImages(t *testing.T) {
	up, p := fake(t, anthropic.Options{})
	req := parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[{"type":"text","text":"describe"},
		{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`)
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content.String() != "echo: describe" {
		t.Errorf("content %q", resp.Choices[0].Message.Content.String())
	}
	content := lastBody(t, up)["messages"].([]any)[0].(map[string]any)["content"].([]any)
	want := []any{
		map[string]any{"type": "text", "text": "describe"},
		map[string]any{"type": "image", "source": map[string]any{"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
		map[string]any{"type": "image", "source": map[string]any{"type": "url", "url": "https://example.com/a.png"}},
	}
	if !reflect.DeepEqual(content, want) {
		t.Errorf("content blocks\n got %v\nwant %v", content, want)
	}
}

// TestStreamMatchesChat streams each reply and checks that the reassembled
// chunks equal the non-streaming answer, and the chunk sequence's shape.
func TestStreamMatchesChat(t *testing.T) {
	replies := map[string]upstreamtest.AnthropicReply{
		"text":          {Text: "The quick brown fox jumps."},
		"parallel":      {Text: "Two calls.", ToolUses: []upstreamtest.AnthropicToolUse{{ID: "toolu_a", Name: "a", Input: json.RawMessage(`{"x":[1,2,{"y":"z"}]}`)}, {ID: "toolu_b", Name: "b", Input: json.RawMessage(`{"q":"long argument value"}`)}}},
		"tool only":     {ToolUses: []upstreamtest.AnthropicToolUse{{ID: "toolu_now", Name: "now"}}},
		"thinking":      {Thinking: "Think first, then answer.", Text: "Answer."},
		"max_tokens":    {Text: "cut off", StopReason: "max_tokens"},
		"stop_sequence": {Text: "one two", StopReason: "stop_sequence", StopSequence: "three"},
		"cached usage":  {Text: "ok", Usage: &upstreamtest.AnthropicUsage{InputTokens: 3, CacheCreationInputTokens: 20, CacheReadInputTokens: 100, OutputTokens: 1}},
	}
	for name, rep := range replies {
		t.Run(name, func(t *testing.T) {
			up, p := fake(t, anthropic.Options{})
			up.OnMessages(func(*upstreamtest.AnthropicRequest) upstreamtest.AnthropicReply { return rep })
			req := parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"}]}`)
			want, err := p.Chat(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			s, err := p.ChatStream(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if lastBody(t, up)["stream"] != true {
				t.Error("stream request without stream: true")
			}
			if h := up.Requests()[1].Header.Get("Accept"); h != "text/event-stream" {
				t.Errorf("Accept %q", h)
			}
			chunks, err := collect(t, s)
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			first, last := chunks[0], chunks[len(chunks)-1]
			if first.Choices[0].Delta.Role != "assistant" || first.Object != "chat.completion.chunk" {
				t.Errorf("first chunk %+v", first)
			}
			if len(last.Choices) != 0 || last.Usage == nil {
				t.Errorf("last chunk should carry usage with no choices: %+v", last)
			}
			fin := chunks[len(chunks)-2].Choices[0].FinishReason
			if fin == nil || *fin != want.Choices[0].FinishReason {
				t.Errorf("finish chunk %v, want %q", fin, want.Choices[0].FinishReason)
			}
			got := reassemble(chunks)
			if !strings.HasPrefix(got.ID, "msg_") {
				t.Errorf("stream id %q", got.ID)
			}
			got.ID, got.Created = want.ID, want.Created // two calls, two ids
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if !bytes.Equal(gb, wb) {
				t.Errorf("reassembled stream differs from the non-streaming answer\n got %s\nwant %s", gb, wb)
			}
		})
	}
}

func TestUsageWithCache(t *testing.T) {
	up, p := fake(t, anthropic.Options{})
	up.OnMessages(func(*upstreamtest.AnthropicRequest) upstreamtest.AnthropicReply {
		return upstreamtest.AnthropicReply{Text: "ok", Usage: &upstreamtest.AnthropicUsage{InputTokens: 3, CacheCreationInputTokens: 20, CacheReadInputTokens: 100, OutputTokens: 9}}
	})
	resp, err := p.Chat(context.Background(), parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &api.Usage{PromptTokens: 123, CompletionTokens: 9, TotalTokens: 132, PromptTokensDetails: &api.PromptTokensDetails{CachedTokens: 100}}
	if !reflect.DeepEqual(resp.Usage, want) {
		t.Errorf("usage %+v, want %+v", resp.Usage, want)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name      string
		fault     upstreamtest.Fault
		errType   string // script the body's error type ("" = from the status)
		status    int
		wantType  string
		retryable bool
		retry     time.Duration
		apiStatus int // what the gateway's client sees
	}{
		{"400", upstreamtest.Fault{Status: 400, Message: "messages: bad"}, "", 400, "invalid_request_error", false, 0, 400},
		{"401", upstreamtest.Fault{Status: 401, Message: "invalid x-api-key"}, "", 401, "authentication_error", false, 0, 502},
		{"429", upstreamtest.Fault{Status: 429, RetryAfter: 7 * time.Second, Message: "slow down"}, "", 429, "rate_limit_error", true, 7 * time.Second, 429},
		{"500", upstreamtest.Fault{Status: 500}, "", 500, "api_error", true, 0, 502},
		{"529", upstreamtest.Fault{Status: 529}, "", 529, "overloaded_error", true, 0, 502},
		{"413 typed", upstreamtest.Fault{Status: 413, Message: "too big"}, "request_too_large", 413, "request_too_large", false, 0, 413},
	}
	for _, c := range cases {
		for _, streaming := range []bool{false, true} {
			name := c.name
			if streaming {
				name += " stream"
			}
			t.Run(name, func(t *testing.T) {
				up, p := fake(t, anthropic.Options{})
				up.OnMessages(func(*upstreamtest.AnthropicRequest) upstreamtest.AnthropicReply {
					return upstreamtest.AnthropicReply{Text: "unused", Fault: c.fault, ErrorType: c.errType}
				})
				req := parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"}]}`)
				var err error
				if streaming {
					_, err = p.ChatStream(context.Background(), req)
				} else {
					_, err = p.Chat(context.Background(), req)
				}
				var ue *provider.UpstreamError
				if !errors.As(err, &ue) {
					t.Fatalf("err = %#v, want *provider.UpstreamError", err)
				}
				if ue.Provider != "anthropic" || ue.Status != c.status || ue.Type != c.wantType || ue.Retryable() != c.retryable || ue.RetryAfter != c.retry {
					t.Errorf("got %+v", ue)
				}
				if c.fault.Message != "" && ue.Message != c.fault.Message {
					t.Errorf("message %q, want %q", ue.Message, c.fault.Message)
				}
				if ae := ue.APIError(); ae.Status != c.apiStatus {
					t.Errorf("client status %d, want %d", ae.Status, c.apiStatus)
				}
				if strings.Contains(err.Error(), testKey) || strings.Contains(ue.APIError().Message, testKey) {
					t.Error("API key leaked into the error")
				}
			})
		}
	}
}

func TestWrongKeyIsNotLeaked(t *testing.T) {
	up := upstreamtest.NewAnthropic(t)
	up.APIKey = "the-right-key"
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := anthropic.New(anthropic.Options{BaseURL: up.URL + "/v1/", APIKey: testKey, Logger: log})
	_, err := p.Chat(context.Background(), parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"}]}`))
	var ue *provider.UpstreamError
	if !errors.As(err, &ue) || ue.Status != 401 {
		t.Fatalf("err = %v, want a 401", err)
	}
	if up.Requests()[0].Path != "/v1/messages" {
		t.Errorf("a base URL ending in /v1/ gave path %q", up.Requests()[0].Path)
	}
	mu.Lock()
	defer mu.Unlock()
	if logs.Len() == 0 {
		t.Error("no debug log line about the upstream call")
	}
	for _, s := range []string{err.Error(), ue.APIError().Message, logs.String()} {
		if strings.Contains(s, testKey) {
			t.Errorf("API key leaked: %s", s)
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestTranslationErrorsAreClientErrors(t *testing.T) {
	up, p := fake(t, anthropic.Options{})
	req := parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"}],"n":2}`)
	for _, call := range []func() error{
		func() error { _, err := p.Chat(context.Background(), req); return err },
		func() error { _, err := p.ChatStream(context.Background(), req); return err },
	} {
		err := call()
		if st := api.StatusOf(err); st != 400 || provider.IsRetryable(err) || !strings.Contains(err.Error(), "'n'") {
			t.Errorf("n=2: status %d, err %v", st, err)
		}
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("a request that cannot be translated reached the upstream %d times", n)
	}
}

func TestMidStreamErrorEvent(t *testing.T) {
	up, p := fake(t, anthropic.Options{})
	up.OnMessages(func(*upstreamtest.AnthropicRequest) upstreamtest.AnthropicReply {
		return upstreamtest.AnthropicReply{Text: "one two three four", StreamErrorAfter: 3,
			StreamError: &upstreamtest.AnthropicError{Type: "overloaded_error", Message: "Overloaded"}}
	})
	s, err := p.ChatStream(context.Background(), parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := collect(t, s)
	var ue *provider.UpstreamError
	if !errors.As(err, &ue) || ue.Status != 529 || ue.Type != "overloaded_error" || ue.Message != "Overloaded" || !ue.Retryable() {
		t.Fatalf("err = %#v", err)
	}
	// message_start, content_block_start (no chunk), one text delta.
	if got := reassemble(chunks).Choices[0].Message.Content.String(); len(chunks) != 2 || got != "one " {
		t.Errorf("before the error: %d chunks, text %q", len(chunks), got)
	}
}

func TestErrorEventBeforeFirstChunkFailsChatStream(t *testing.T) {
	up, p := fake(t, anthropic.Options{})
	up.OnMessages(func(*upstreamtest.AnthropicRequest) upstreamtest.AnthropicReply {
		return upstreamtest.AnthropicReply{Text: "x", StreamErrorAfter: 0,
			StreamError: &upstreamtest.AnthropicError{Type: "overloaded_error", Message: "Overloaded"}}
	})
	s, err := p.ChatStream(context.Background(), parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"}]}`))
	var ue *provider.UpstreamError
	if s != nil || !errors.As(err, &ue) || ue.Status != 529 || !ue.Retryable() {
		t.Fatalf("ChatStream = %v, %#v; want a retryable 529 before any chunk", s, err)
	}
}

func TestMidStreamDisconnect(t *testing.T) {
	up, p := fake(t, anthropic.Options{})
	up.Fail(upstreamtest.Fault{DisconnectAfter: 4})
	s, err := p.ChatStream(context.Background(), parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"a b c d e f"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := collect(t, s)
	var ue *provider.UpstreamError
	if !errors.As(err, &ue) || ue.Status != 0 || !ue.Retryable() || ue.Timeout {
		t.Fatalf("err = %#v, want a retryable connection failure", err)
	}
	if got := reassemble(chunks).Choices[0].Message.Content.String(); got != "echo: a " {
		t.Errorf("before the cut: %q", got)
	}
}

func TestCancelClosesUpstreamRequest(t *testing.T) {
	up, p := fake(t, anthropic.Options{})
	gone := make(chan struct{})
	up.OnMessages(func(*upstreamtest.AnthropicRequest) upstreamtest.AnthropicReply {
		return upstreamtest.AnthropicReply{Text: "never finished", StallAfter: 3, OnClientGone: func() { close(gone) }}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := p.ChatStream(ctx, parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c, err := s.Next(); err != nil || c.Choices[0].Delta.Role != "assistant" {
		t.Fatalf("first chunk %v %v", c, err)
	}
	cancel()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request stayed open after the context was cancelled")
	}
	for {
		_, err = s.Next()
		if err != nil {
			break
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel: %v, want context.Canceled", err)
	}
}

func TestTimeouts(t *testing.T) {
	t.Run("first byte", func(t *testing.T) {
		up, p := fake(t, anthropic.Options{FirstByteTimeout: 200 * time.Millisecond})
		up.Fail(upstreamtest.Fault{Hang: true})
		_, err := p.Chat(context.Background(), parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"}]}`))
		var ue *provider.UpstreamError
		if !errors.As(err, &ue) || !ue.Timeout || !ue.Retryable() || ue.APIError().Status != 504 {
			t.Fatalf("err = %#v, want a timeout", err)
		}
	})
	t.Run("total, mid-stream", func(t *testing.T) {
		up, p := fake(t, anthropic.Options{TotalTimeout: 300 * time.Millisecond})
		up.OnMessages(func(*upstreamtest.AnthropicRequest) upstreamtest.AnthropicReply {
			return upstreamtest.AnthropicReply{Text: "slow words", EventDelay: time.Second}
		})
		s, err := p.ChatStream(context.Background(), parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		_, err = collect(t, s)
		var ue *provider.UpstreamError
		if !errors.As(err, &ue) || !ue.Timeout {
			t.Fatalf("err = %#v, want a timeout", err)
		}
	})
	t.Run("cancel while waiting", func(t *testing.T) {
		up, p := fake(t, anthropic.Options{})
		up.Fail(upstreamtest.Fault{Hang: true})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := p.Chat(ctx, parseReq(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"}]}`))
			errc <- err
		}()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) || provider.IsRetryable(err) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		up := upstreamtest.NewAnthropic(t)
		base := up.URL
		up.Close()
		p := anthropic.New(anthropic.Options{BaseURL: base, APIKey: testKey})
		_, err := p.Models(context.Background())
		var ue *provider.UpstreamError
		if !errors.As(err, &ue) || ue.Status != 0 || ue.Timeout || !ue.Retryable() || strings.Contains(err.Error(), testKey) {
			t.Fatalf("err = %#v", err)
		}
	})
}

func TestModels(t *testing.T) {
	up, p := fake(t, anthropic.Options{})
	up.SetModels("claude-a", "claude-b", "claude-c", "claude-d", "claude-e")
	up.ModelsPerPage = 2
	ms, err := p.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
		if m.Object != "model" || m.OwnedBy != "anthropic" || m.Created < time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix() {
			t.Errorf("model %+v", m)
		}
	}
	if strings.Join(ids, ",") != "claude-a,claude-b,claude-c,claude-d,claude-e" {
		t.Errorf("ids %v (pagination not followed?)", ids)
	}
	if n := len(up.Requests()); n != 3 {
		t.Errorf("%d page requests, want 3", n)
	}
	if g := up.Requests()[0]; g.Method != "GET" || g.Header.Get("x-api-key") != testKey {
		t.Errorf("models request %s %v", g.Method, g.Header)
	}
}

func TestEmbeddingsUnsupported(t *testing.T) {
	up, p := fake(t, anthropic.Options{})
	_, err := p.Embeddings(context.Background(), &api.EmbeddingRequest{Model: "x", Input: json.RawMessage(`"a"`)})
	if api.StatusOf(err) != 400 || provider.IsRetryable(err) || len(up.Requests()) != 0 {
		t.Errorf("embeddings: %v", err)
	}
	if p.Name() != "anthropic" {
		t.Errorf("name %q", p.Name())
	}
}
