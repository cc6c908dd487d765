package dataset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/store"
)

var benchReq = []byte(`{"messages":[{"content":"You are the support assistant for Acme Cloud. Answer politely and concisely, cite the relevant help-center article when one exists, and never promise refunds without a ticket number.","role":"system"},{"content":"acct1 ship2 bill3 log4 net5 disk6 user7 plan8 fee9 tax10 acct11 ship12 bill13 log14 net15 disk16 user17 plan18 fee19 tax20 acct21 ship22 bill23 log24 net25 disk26 user27 plan28 fee29 tax30 acct31 ship32 bill33 log34 net35 disk36 user37 plan38 fee39 tax40 acct41 ship42 bill43 log44 net45 disk46 user47 plan48 fee49 tax50 acct51 ship52 bill53 log54 net55 disk56 user57 plan58 fee59","role":"user"}],"model":"gpt-4o-mini","temperature":0.2}`)
var benchResp = []byte(`{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"acct1 ship2 bill3 log4 net5 disk6 user7 plan8 fee9 tax10 acct11 ship12 bill13 log14 net15 disk16 user17 plan18 fee19 tax20 acct21 ship22 bill23 log24 net25 disk26 user27 plan28 fee29 tax30 acct31 ship32 bill33 log34 net35 disk36 user37 plan38 fee39 tax40 acct41 ship42 bill43 log44 net45 disk46 user47 plan48 fee49 tax50 acct51 ship52 bill53 log54 net55 disk56 user57 plan58 fee59 tax60 acct61 ship62 bill63 log64 net65 disk66 user67 plan68 fee69 tax70 acct71 ship72 bill73 log74 net75","role":"assistant"}}],"created":1767225600,"id":"chatcmpl-1","model":"gpt-4o-mini-2024-07-18","object":"chat.completion","usage":{"completion_tokens":90,"prompt_tokens":120,"total_tokens":210}}`)

func BenchmarkNewFineTuneExample(b *testing.B) {
	for b.Loop() {
		api.NewFineTuneExample(benchReq, benchResp)
	}
}

func BenchmarkFromRecord(b *testing.B) {
	r := store.RecordWithFeedback{Record: store.Record{Endpoint: "chat.completions", Request: benchReq, Response: benchResp}}
	for b.Loop() {
		FromRecord(r)
	}
}

func BenchmarkTail(b *testing.B) {
	var tail struct {
		Choices []struct {
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	for b.Loop() {
		json.Unmarshal(benchResp, &tail)
	}
}

func BenchmarkSpool(b *testing.B) {
	r := store.RecordWithFeedback{Record: store.Record{Endpoint: "chat.completions", Request: benchReq, Response: benchResp}}
	ex, _ := FromRecord(r)
	var buf bytes.Buffer
	w := &rowSpool{w: &buf}
	for b.Loop() {
		buf.Reset()
		w.put(ex)
		w.flush()
		rd := &rowReader{r: bufio.NewReader(&buf)}
		rd.next()
	}
}

func BenchmarkScrub(b *testing.B) {
	r := store.RecordWithFeedback{Record: store.Record{Endpoint: "chat.completions", Request: benchReq, Response: benchResp}}
	ex, _ := FromRecord(r)
	s, _ := NewScrubber(nil)
	for b.Loop() {
		for _, m := range ex.Messages {
			s.Find(m.Content.Text)
		}
	}
}

func BenchmarkDedupeSignature(b *testing.B) {
	r := store.RecordWithFeedback{Record: store.Record{Endpoint: "chat.completions", Request: benchReq, Response: benchResp}}
	ex, _ := FromRecord(r)
	var n normalizer
	sig, full := make([]uint32, 72), make([]bool, 72)
	for b.Loop() {
		n.normalize(ex.Text("dialogue"))
		minHash(n.shingles(5), sig, full)
	}
}
