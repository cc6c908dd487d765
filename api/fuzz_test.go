package api

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParseChatRequest: any body either fails to decode with a 400 *Error
// or decodes, validates without panicking, and survives a marshal → parse
// round trip unchanged.
func FuzzParseChatRequest(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"tool_choice":"auto","stop":"x","x":[1,2]}`))
	f.Add([]byte(`{"model":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r ChatRequest
		if err := DecodeStrict(body, &r); err != nil {
			if AsError(err).Status != 400 {
				t.Fatalf("decode error is not a 400: %v", err)
			}
			return
		}
		_ = r.Validate()
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal after successful parse: %v", err)
		}
		var r2 ChatRequest
		if err := json.Unmarshal(out, &r2); err != nil {
			t.Fatalf("re-parse of our own output: %v\n%s", err, out)
		}
		out2, err := json.Marshal(r2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip not stable:\n%s\n%s", out, out2)
		}
	})
}

// FuzzReassembleSSE: any byte stream reassembles without panicking, and the
// reassembled response always marshals.
func FuzzReassembleSSE(f *testing.F) {
	f.Add([]byte(sampleStream))
	f.Add([]byte("data: {\"choices\":[{\"index\":3,\"delta\":{\"tool_calls\":[{\"index\":2,\"function\":{\"arguments\":\"{\"}}]}}]}\n\n"))
	f.Add([]byte(": ping\r\n\r\ndata: [DONE]\r\n\r\n"))
	f.Add([]byte("data: {\"choices\":[{\"index\":-1,\"delta\":{\"content\":\"x\"}}]}\ndata: more\n\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		resp, _, _ := ReassembleSSE(bytes.NewReader(stream))
		if resp == nil {
			t.Fatal("nil response")
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("marshal reassembled: %v", err)
		}
	})
}

// FuzzScanExtra: for any valid JSON object the byte scanner finds exactly
// the unknown members a full decode finds, byte for byte.
func FuzzScanExtra(f *testing.F) {
	f.Add([]byte(`{"model":"m","x":{"y":["}",1]},"z":"\\\""}`))
	f.Add([]byte(`{"\u006dodel":1, "a" : [ ] }`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var all map[string]json.RawMessage
		if !json.Valid(data) || json.Unmarshal(data, &all) != nil {
			return
		}
		got := scanExtra(data, chatRequestNames)
		n := 0
		for k, v := range all {
			if chatRequestNames[k] {
				continue
			}
			n++
			if !bytes.Equal(got[k], v) {
				t.Fatalf("key %q: scan %q, decode %q", k, got[k], v)
			}
		}
		if n != len(got) {
			t.Fatalf("scan found %d extras, decode %d: %v", len(got), n, got)
		}
	})
}
