package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/upstreamtest"
)

func TestChatPassesUnknownFieldsThrough(t *testing.T) {
	up := upstreamtest.NewOpenAI(t)
	up.APIKey = "sk-up"
	p := New(Options{BaseURL: up.URL, APIKey: "sk-up"})
	var req api.ChatRequest
	in := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi there","cache_control":{"type":"ephemeral"}}],"top_k":3,"response_format":{"type":"json_object"}}`
	if err := json.Unmarshal([]byte(in), &req); err != nil {
		t.Fatal(err)
	}
	resp, err := p.Chat(context.Background(), &req)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content.String(); got != "echo: hi there" {
		t.Fatalf("content %q", got)
	}
	var sent map[string]any
	if err := json.Unmarshal(up.Requests()[0].Body, &sent); err != nil {
		t.Fatal(err)
	}
	if sent["top_k"] != float64(3) || sent["messages"].([]any)[0].(map[string]any)["cache_control"] == nil || sent["response_format"] == nil {
		t.Fatalf("upstream got %v", sent)
	}
}

func TestStreamAndFaults(t *testing.T) {
	up := upstreamtest.NewOpenAI(t)
	p := New(Options{BaseURL: up.URL, FirstByteTimeout: 300 * time.Millisecond})
	req := &api.ChatRequest{Model: "gpt-4o", Messages: []api.Message{{Role: "user", Content: api.TextContent("a b c")}}, StreamOptions: &api.StreamOptions{IncludeUsage: true}}

	s, err := p.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var acc api.Accumulator
	for {
		c, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		acc.Add(c)
	}
	s.Close()
	if r := acc.Response(); r.Choices[0].Message.Content.String() != "echo: a b c" || r.Usage == nil || r.Usage.CompletionTokens != 4 {
		t.Fatalf("reassembled %+v", r)
	}

	cases := []struct {
		name   string
		fault  upstreamtest.Fault
		status int
		retry  bool
	}{
		{"500", upstreamtest.Fault{Status: 500}, 500, true},
		{"429", upstreamtest.Fault{Status: 429, RetryAfter: 2 * time.Second}, 429, true},
		{"400", upstreamtest.Fault{Status: 400, Message: "bad"}, 400, false},
		{"hang", upstreamtest.Fault{Hang: true}, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Fail(c.fault)
			_, err := p.Chat(context.Background(), req)
			var ue *provider.UpstreamError
			if !errors.As(err, &ue) || ue.Status != c.status || ue.Retryable() != c.retry {
				t.Fatalf("err = %#v", err)
			}
			if c.name == "429" && ue.RetryAfter != 2*time.Second {
				t.Fatalf("retry-after %v", ue.RetryAfter)
			}
			if c.name == "hang" && !ue.Timeout {
				t.Fatalf("hang should be a timeout: %v", ue)
			}
		})
	}

	up.Fail(upstreamtest.Fault{DisconnectAfter: 2})
	s, err = p.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err = s.Next()
		if err != nil {
			break
		}
		n++
	}
	if n != 2 || err == io.EOF || !provider.IsRetryable(err) {
		t.Fatalf("mid-stream cut: %d chunks, err %v", n, err)
	}
}

func TestModelsAndEmbeddings(t *testing.T) {
	up := upstreamtest.NewOpenAI(t)
	p := New(Options{BaseURL: up.URL})
	ms, err := p.Models(context.Background())
	if err != nil || len(ms) != 3 {
		t.Fatalf("models %v %v", ms, err)
	}
	e, err := p.Embeddings(context.Background(), &api.EmbeddingRequest{Model: "text-embedding-3-small", Input: json.RawMessage(`["a","b c"]`)})
	if err != nil || len(e.Data) != 2 || e.Usage.PromptTokens != 3 {
		t.Fatalf("embeddings %+v %v", e, err)
	}
}
