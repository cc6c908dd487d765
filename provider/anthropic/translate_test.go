package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
)

// Regenerate the golden files after an intended change with:
//
//	go test ./provider/anthropic -run 'Translate' -update
var update = flag.Bool("update", false, "rewrite testdata/*/*.golden.json from the current translation")

// golden compares got (indented JSON) with testdata file path, or rewrites it with -update.
func golden(t *testing.T, path string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatalf("marshal result: %v", err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s\n--- want\n%s", path, b, want)
	}
}

// cases returns the names of the testdata/<dir>/*<ext> inputs.
func cases(t *testing.T, dir, ext string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*"+ext))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cases in testdata/%s: %v", dir, err)
	}
	return files
}

// errorResult is how a rejected translation is written in a golden file.
type errorResult struct {
	Error struct {
		Status  int    `json:"status"`
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// TestTranslateRequests turns each testdata/requests/*.in.json (an OpenAI
// chat request) into a Messages API request and compares it with
// *.golden.json (or the 400 error the translation gives).
func TestTranslateRequests(t *testing.T) {
	p := New(Options{})
	for _, in := range cases(t, "requests", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var req api.ChatRequest
			if err := json.Unmarshal(b, &req); err != nil {
				t.Fatalf("parse %s: %v", in, err)
			}
			var got any
			mr, err := p.toMessagesRequest(&req, DefaultMaxTokens)
			if err != nil {
				var ue *provider.UpstreamError
				if !errors.As(err, &ue) || ue.Status != 400 || ue.Retryable() {
					t.Fatalf("translation error is %#v, want a non-retryable 400 *provider.UpstreamError", err)
				}
				var e errorResult
				e.Error.Status, e.Error.Type, e.Error.Message = ue.Status, ue.Type, ue.Message
				got = e
			} else {
				got = mr
			}
			golden(t, strings.TrimSuffix(in, ".in.json")+".golden.json", got)
		})
	}
}

// TestTranslateResponses turns each testdata/responses/*.in.json (a Messages
// API answer) into an OpenAI chat completion and compares it with *.golden.json.
func TestTranslateResponses(t *testing.T) {
	for _, in := range cases(t, "responses", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var mr messagesResponse
			if err := json.Unmarshal(b, &mr); err != nil {
				t.Fatalf("parse %s: %v", in, err)
			}
			golden(t, strings.TrimSuffix(in, ".in.json")+".golden.json", toChatResponse(&mr, 1700000000))
		})
	}
}

// streamResult is how a translated stream is written in a golden file: the
// chunks, how the stream ended, and the chunks reassembled.
type streamResult struct {
	Chunks      []*api.ChatChunk  `json:"chunks"`
	End         string            `json:"end"`
	Reassembled *api.ChatResponse `json:"reassembled"`
}

// TestTranslateStreams reads each testdata/streams/*.sse (a Messages API
// event stream as sent on the wire) through the stream and compares the
// OpenAI chunks with *.golden.json.
func TestTranslateStreams(t *testing.T) {
	for _, in := range cases(t, "streams", ".sse") {
		name := strings.TrimSuffix(filepath.Base(in), ".sse")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(in, ".sse")+".golden.json", readStream(b))
		})
	}
}

// readStream translates a raw event stream to its result.
func readStream(body []byte) streamResult {
	s := newStream(context.Background(), "anthropic", io.NopCloser(bytes.NewReader(body)), nil, 1700000000)
	var res streamResult
	var acc api.Accumulator
	for {
		c, err := s.Next()
		if err == io.EOF {
			res.End = "EOF"
			break
		}
		if err != nil {
			var ue *provider.UpstreamError
			if errors.As(err, &ue) {
				res.End = "UpstreamError status=" + strconv.Itoa(ue.Status) + " type=" + ue.Type + " message=" + ue.Message
			} else {
				res.End = "error: " + err.Error()
			}
			break
		}
		res.Chunks = append(res.Chunks, c)
		acc.Add(c)
	}
	_ = s.Close()
	res.Reassembled = acc.Response()
	return res
}
