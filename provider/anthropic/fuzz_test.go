package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
)

// FuzzStreamParse feeds arbitrary bytes to the Messages API stream reader
// as an upstream body. It must never panic or loop, must end every stream
// with io.EOF (only after message_stop) or an *provider.UpstreamError, and
// must only produce well-formed single-choice chunks. Seeds: the
// testdata/streams/*.sse files and testdata/fuzz/FuzzStreamParse.
//
//	go test ./provider/anthropic -run '^$' -fuzz FuzzStreamParse -fuzztime 30s
func FuzzStreamParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "streams", "*.sse"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s := newStream(context.Background(), "anthropic", io.NopCloser(bytes.NewReader(body)), nil, 1)
		defer s.Close()
		var acc api.Accumulator
		var last *api.ChatChunk
		for i := 0; ; i++ {
			if i > 2*len(body)+10 {
				t.Fatalf("stream did not end after %d chunks from %d bytes", i, len(body))
			}
			c, err := s.Next()
			if err == io.EOF {
				if last == nil || last.Usage == nil || len(last.Choices) != 0 {
					t.Fatalf("io.EOF without the final usage chunk (last %+v)", last)
				}
				break
			}
			if err != nil {
				var ue *provider.UpstreamError
				if !errors.As(err, &ue) {
					t.Fatalf("error %T %v, want *provider.UpstreamError", err, err)
				}
				if _, err := s.Next(); err != io.EOF {
					t.Fatalf("Next after an error: %v, want io.EOF", err)
				}
				break
			}
			if c.Object != "chat.completion.chunk" || len(c.Choices) > 1 || (len(c.Choices) == 1 && c.Choices[0].Index != 0) {
				t.Fatalf("malformed chunk %+v", c)
			}
			if _, err := json.Marshal(c); err != nil {
				t.Fatalf("chunk does not marshal: %v", err)
			}
			acc.Add(c)
			last = c
		}
		if _, err := json.Marshal(acc.Response()); err != nil {
			t.Fatalf("reassembled response does not marshal: %v", err)
		}
	})
}
