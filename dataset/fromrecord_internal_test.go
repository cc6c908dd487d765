package dataset

import (
	"bufio"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/api"
)

// TestFastDecodeMatchesNewFineTuneExample checks that the one-pass decoder
// gives exactly api.NewFineTuneExample's example, on varied bodies: system
// and tool messages, tool calls, tools, names, null and empty content,
// unknown fields, and content parts (which must fall back).
func TestFastDecodeMatchesNewFineTuneExample(t *testing.T) {
	resp := func(msg string) string {
		return `{"id":"x","object":"chat.completion","choices":[{"index":0,"finish_reason":"stop","message":` + msg + `}],"usage":{"prompt_tokens":1}}`
	}
	cases := []struct {
		req, resp string
		fast      bool
	}{
		{`{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi","name":"ann"}]}`, resp(`{"role":"assistant","content":"hello"}`), true},
		{`{"model":"m","messages":[{"role":"user","content":"w?"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"parallel_tool_calls":false}`,
			resp(`{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}`), true},
		{`{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},{"role":"tool","tool_call_id":"c","content":"42"}]}`,
			resp(`{"role":"assistant","content":"done","reasoning_content":"hmm","refusal":null}`), true},
		{`{"model":"m","messages":[{"role":"user","content":"e"}],"metadata":{"k":"v"},"store":true}`, resp(`{"content":""}`), true},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"parts"},{"type":"image_url","image_url":{"url":"data:x"}}]}]}`, resp(`{"role":"assistant","content":"img"}`), false},
	}
	f, err := os.Open("testdata/planted.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var p struct {
			User    string  `json:"user"`
			Answer  *string `json:"answer"`
			Refusal string  `json:"refusal"`
		}
		json.Unmarshal(sc.Bytes(), &p)
		req, _ := json.Marshal(map[string]any{"model": "m", "messages": []map[string]any{{"role": "system", "content": "sys"}, {"role": "user", "content": p.User}}})
		msg, _ := json.Marshal(map[string]any{"role": "assistant", "content": p.Answer})
		cases = append(cases, struct {
			req, resp string
			fast      bool
		}{string(req), resp(string(msg)), true})
	}
	for i, c := range cases {
		var ex Example
		if got := fastDecode([]byte(c.req), []byte(c.resp), &ex); got != c.fast {
			t.Errorf("case %d: fast path %v, want %v", i, got, c.fast)
			continue
		}
		if !c.fast {
			continue
		}
		want, err := api.NewFineTuneExample([]byte(c.req), []byte(c.resp))
		if err != nil {
			// NewFineTuneExample refuses answers with neither content nor tool
			// calls; the fast path keeps the prompt with an empty answer.
			if a := ex.Answer(); a == nil || !a.Content.IsNull() {
				t.Errorf("case %d: NewFineTuneExample failed (%v) but the fast path has an answer", i, err)
			}
			continue
		}
		wb, _ := json.Marshal(want)
		gb, _ := json.Marshal(ex.FineTuneExample)
		if string(wb) != string(gb) {
			t.Errorf("case %d:\n fast %s\n want %s", i, gb, wb)
		}
	}
}

func TestRowSpoolRoundTrip(t *testing.T) {
	var rows []*Example
	err := ReadFile(t.Context(), "testdata/mixed.openai.jsonl", FormatOpenAI, func(ex *Example, err error) error {
		if err == nil {
			rows = append(rows, ex)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	score := 0.5
	rows[0].Meta.Score, rows[0].Meta.Tags, rows[0].Meta.Metadata = &score, []string{"a", "b"}, map[string]string{"k": "v", "j": "w"}
	rows[1].ParallelToolCalls = api.Ptr(false)
	rows[2].Messages[0].Content = api.PartsContent(api.ContentPart{Type: "text", Text: "part"})
	rows[3].Messages[0].Content = api.TextContent(strings.Repeat("longer than at's first read ", 400)) // 11 kB
	path := t.TempDir() + "/spool"
	f, _ := os.Create(path)
	w := &rowSpool{w: f, r: f}
	var offs []int64
	for _, ex := range rows {
		off, err := w.put(ex)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
	}
	same := func(i int, want, got *Example) {
		t.Helper()
		wb, _ := json.Marshal(struct {
			E api.FineTuneExample
			M Meta
			S int64
		}{want.FineTuneExample, want.Meta, want.Seq})
		gb, _ := json.Marshal(struct {
			E api.FineTuneExample
			M Meta
			S int64
		}{got.FineTuneExample, got.Meta, got.Seq})
		if string(wb) != string(gb) {
			t.Errorf("row %d:\n got  %s\n want %s", i, gb, wb)
		}
	}
	// Read back by offset from memory, then from the file once written.
	for _, written := range []bool{false, true} {
		if written {
			if err := w.flush(); err != nil {
				t.Fatal(err)
			}
		}
		for i := len(rows) - 1; i >= 0; i-- {
			got, err := w.at(offs[i])
			if err != nil {
				t.Fatalf("written %v: row %d: %v", written, i, err)
			}
			same(i, rows[i], got)
		}
	}
	f.Seek(0, 0)
	r := &rowReader{r: bufio.NewReader(f)}
	for i, want := range rows {
		got, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		same(i, want, got)
	}
}

// plainSeeds are bodies of the shapes scanPlain reads and the ones it must
// leave to encoding/json.
var plainSeeds = []string{
	`{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi","name":"ann"}],"temperature":0.2}`,
	`{"messages":[],"parallel_tool_calls":true,"tools":null}`,
	`{"messages":[{"role":"user","content":null,"tool_calls":null,"tool_call_id":"c","refusal":"no"}],"parallel_tool_calls":false}`,
	` { "messages" : [ { "role" : "user" , "content" : "a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800x\udc00\u0041" } ] } `,
	`{"messages":[{"role":"user","content":"caf\u00e9 ünïcödé 日本"}],"n":-0.5e+10,"x":[1,2.25,-3E-2,{"a":[true,false,null]}],"s":"\u00ff"}`,
	`{"Messages":[{"role":"user","content":"case"}]}`,
	`{"messages":[{"ROLE":"user","content":"case"}]}`,
	`{"messages":[{"role":"user","content":"a"}],"messages":[{"content":"b"}]}`,
	`{"messages":[{"role":"user","content":"a","content":"b"}]}`,
	`{"messages":[{"role":"user","content":[{"type":"text","text":"parts"}]}]}`,
	`{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"f"}}]}`,
	`{"messages":[{"role":"user","content":"a"}]} x`,
	`{"messages":[{"role":"user","content":"a"}],}`,
	`{"messages":[{"role":"user","content":"a\x01"}]}`,
	`{"messages":[{"role":"user","content":"bad \xff utf8"}]}`,
	`{"messages":[{"role":"user","content":"a"}],"other":"bad \xff utf8 ignored"}`,
	`{"messages":[{"role":null,"content":"a"}]}`,
	`{"messages":[{"role":1,"content":"a"}]}`,
	`{"messages":null}`,
	`{"messages":[null]}`,
	`{"x":01}`, `{"x":1.}`, `{"x":-}`, `{"x":tru}`, `{"x":"\u12"}`, `{"x":"\q"}`, `null`, `[]`, ``, `{`,
	`{"rol\u0065":"x","messages":[{"rol\u0065":"user","content":"escaped key"}]}`,
	`{"meſſages":[{"role":"user","content":"long s folds to s"}]}`,
	`{"id":"x","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hello","refusal":null}}],"usage":{"prompt_tokens":1}}`,
	`{"choices":[{"finish_reason":"stop","message":{"content":null,"refusal":"I can't"}},{"message":{"content":"second"}}]}`,
	`{"choices":[]}`,
	`{"choices":[{"finish_reason":null,"message":{"content":"x"}}]}`,
	`{"choices":[{"message":{"content":"x","tool_calls":[{"id":"c"}]}}]}`,
	`{"choices":[{"Message":{"content":"x"}}]}`,
}

// FuzzScanPlain checks that whenever scanPlain reads a body, encoding/json
// reads it too, into exactly the same structs.
func FuzzScanPlain(f *testing.F) {
	for _, s := range plainSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want plainRequest
		if scanPlainRequest(b, &got) {
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatalf("request %q: scanPlain read it, encoding/json failed: %v", b, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("request %q:\n scanPlain %+v\n json      %+v", b, got, want)
			}
		}
		var gotR, wantR plainResponse
		if scanPlainResponse(b, &gotR) {
			if err := json.Unmarshal(b, &wantR); err != nil {
				t.Fatalf("response %q: scanPlain read it, encoding/json failed: %v", b, err)
			}
			if !reflect.DeepEqual(gotR, wantR) {
				t.Fatalf("response %q:\n scanPlain %+v\n json      %+v", b, gotR, wantR)
			}
		}
	})
}

// TestScanPlainReads checks that the fast reader takes the common shapes
// (and so that FuzzScanPlain's comparisons are not vacuous).
func TestScanPlainReads(t *testing.T) {
	for i, s := range plainSeeds[:5] {
		var req plainRequest
		if !scanPlainRequest([]byte(s), &req) {
			t.Errorf("seed %d: scanPlain refused %s", i, s)
		}
	}
	var resp plainResponse
	for _, s := range []string{string(benchResp), plainSeeds[len(plainSeeds)-6], plainSeeds[len(plainSeeds)-5]} {
		if !scanPlainResponse([]byte(s), &resp) {
			t.Errorf("scanPlain refused %s", s)
		}
	}
	var req plainRequest
	if !scanPlainRequest(benchReq, &req) {
		t.Errorf("scanPlain refused %s", benchReq)
	}
}
