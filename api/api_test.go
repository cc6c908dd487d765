package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// canon re-encodes JSON through a generic map so key order and spacing do not matter.
func canon(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestChatRequestRoundTripKeepsEverything(t *testing.T) {
	cases := map[string]string{
		"unknown top-level and nested fields":      `{"model":"gpt-4o","messages":[{"role":"user","content":"hi","x_vendor":{"a":1}}],"logit_bias":{"50256":-100},"store":true,"reasoning_effort":"low","top_k":40}`,
		"content parts with image and audio":       `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}},{"type":"input_audio","input_audio":{"data":"UklG","format":"wav"}}]}]}`,
		"tools and tool choice object":             `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"call_1","content":"42"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{"a":{"type":"integer"}}},"strict":true}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}`,
		"response format json schema and sampling": `{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"out","schema":{"type":"object"},"strict":true}},"n":2,"seed":7,"logprobs":true,"top_logprobs":3,"stop":["a","b"],"user":"u1","metadata":{"k":"v"},"stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":10,"max_tokens":11,"temperature":0.5,"top_p":0.9,"presence_penalty":0.1,"frequency_penalty":0.2}`,
		"tool choice string":                       `{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"required"}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			var r ChatRequest
			if err := json.Unmarshal([]byte(in), &r); err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := canon(t, out), canon(t, []byte(in)); got != want {
				t.Fatalf("round trip changed the request\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestStopStringBecomesList(t *testing.T) {
	var r ChatRequest
	if err := json.Unmarshal([]byte(`{"model":"m","messages":[],"stop":"END"}`), &r); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Stop, Stop{"END"}) {
		t.Fatalf("stop = %v", r.Stop)
	}
}

func TestDecodeStrictErrors(t *testing.T) {
	cases := []struct{ name, body, param, want string }{
		{"malformed", `{"model":`, "", "not valid JSON"},
		{"wrong type", `{"model":"m","messages":"hi"}`, "messages", "wrong type"},
		{"wrong type nested", `{"model":"m","messages":[{"role":"user","content":5}]}`, "", "content must be"},
		{"empty", ``, "", "empty"},
		{"temperature string", `{"model":"m","messages":[],"temperature":"hot"}`, "temperature", "wrong type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r ChatRequest
			err := DecodeStrict([]byte(c.body), &r)
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("err = %v, want a 400 *Error", err)
			}
			if !strings.Contains(e.Message, c.want) || e.Param != c.param {
				t.Fatalf("got param %q message %q, want param %q containing %q", e.Param, e.Message, c.param, c.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct{ body, param string }{
		{`{"messages":[{"role":"user","content":"x"}]}`, "model"},
		{`{"model":"m","messages":[]}`, "messages"},
		{`{"model":"m","messages":[{"role":"wizard","content":"x"}]}`, "messages[0].role"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"n":0}`, "n"},
	} {
		var r ChatRequest
		if err := json.Unmarshal([]byte(c.body), &r); err != nil {
			t.Fatal(err)
		}
		err := r.Validate()
		if err == nil || AsError(err).Param != c.param {
			t.Fatalf("%s: err = %v, want param %s", c.body, err, c.param)
		}
	}
}

func TestWriteErrorBody(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, &Error{Status: 429, Message: "slow down", Code: "rate_limited", RetryAfter: 3})
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "3" {
		t.Fatalf("status %d retry-after %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	want := `{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"rate_limited"}}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Fatalf("body %s", got)
	}
	e, ok := ParseError(429, rec.Body.Bytes())
	if !ok || e.Message != "slow down" || e.Code != "rate_limited" {
		t.Fatalf("ParseError = %+v %v", e, ok)
	}
	rec = httptest.NewRecorder()
	WriteError(rec, errors.New("boom"))
	if rec.Code != 500 {
		t.Fatalf("plain error status %d", rec.Code)
	}
}

const sampleStream = ": keep-alive\n\n" +
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\r\n\r\n" +
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"logprobs\":{\"content\":[{\"token\":\"Hel\",\"logprob\":-0.1,\"bytes\":[72],\"top_logprobs\":[]}]},\"finish_reason\":null}]}\n\n" +
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}]}\n\n" +
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":1,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n" +
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":1,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"q\\\":\"}}]},\"finish_reason\":null}]}\n\n" +
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":1,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n" +
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n" +
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}\n\n" +
	"data: [DONE]\n\n"

func TestReassembleStream(t *testing.T) {
	resp, n, err := ReassembleSSE(strings.NewReader(sampleStream))
	if err != nil {
		t.Fatal(err)
	}
	if n != 8 {
		t.Fatalf("chunks = %d", n)
	}
	if resp.ID != "c1" || resp.Model != "gpt-x" || resp.Object != "chat.completion" || len(resp.Choices) != 2 {
		t.Fatalf("resp = %+v", resp)
	}
	c0, c1 := resp.Choices[0], resp.Choices[1]
	if c0.Message.Content.String() != "Hello" || c0.FinishReason != "stop" || len(c0.Logprobs.Content) != 1 {
		t.Fatalf("choice 0 = %+v", c0)
	}
	if len(c1.Message.ToolCalls) != 1 || c1.Message.ToolCalls[0].Function.Arguments != `{"q":1}` || c1.Message.ToolCalls[0].ID != "call_9" || c1.FinishReason != "tool_calls" || !c1.Message.Content.IsNull() {
		t.Fatalf("choice 1 = %+v", c1)
	}
	if resp.Usage == nil || resp.Usage.TotalTokens != 8 {
		t.Fatalf("usage = %+v", resp.Usage)
	}
}

func TestSSEReaderTruncated(t *testing.T) {
	r := NewSSEReader(strings.NewReader("event: a\ndata: 1\ndata: 2\n\nid: 5\nretry: 10\ndata: {\"x\""))
	ev, err := r.Next()
	if err != nil || ev.Name != "a" || string(ev.Data) != "1\n2" {
		t.Fatalf("first = %+v %v", ev, err)
	}
	ev, err = r.Next()
	if err != nil || string(ev.Data) != `{"x"` {
		t.Fatalf("second = %+v %v", ev, err)
	}
	if _, err = r.Next(); err != io.EOF {
		t.Fatalf("end = %v", err)
	}
}

func TestChunkMarshalShape(t *testing.T) {
	b, _ := json.Marshal(ChatChunk{ID: "x", Object: "chat.completion.chunk", Choices: []ChunkChoice{{Delta: Delta{Content: Ptr("a")}}}})
	if !bytes.Contains(b, []byte(`"finish_reason":null`)) {
		t.Fatalf("chunk = %s", b)
	}
}

func TestScanExtraMatchesFullDecode(t *testing.T) {
	known := names("a", "b")
	for _, in := range []string{
		`{"a":1,"b":"x","c":{"d":[1,"}",{"e":"\"]"}]},"f":null, "g" : true ,"h":-1.5e3,"i":"\\","j":[]}`,
		`{}`, ` { "a" : 1 } `, `{"\u0063x":"escaped key"}`, `null`, `[1,2]`, `{"a":{"b":{}},"z":"\u00e9"}`,
	} {
		got := scanExtra([]byte(in), known)
		var all map[string]json.RawMessage
		json.Unmarshal([]byte(in), &all)
		want := Extra{}
		for k, v := range all {
			if !known[k] {
				want[k] = v
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %v want %v", in, got, want)
		}
		for k, v := range want {
			if string(got[k]) != string(v) {
				t.Fatalf("%s: key %s got %s want %s", in, k, got[k], v)
			}
		}
	}
}
