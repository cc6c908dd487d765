package dataset

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/foundryhq/foundry/api"
)

// TestFastEncodeMatchesJSON checks the fast OpenAI line writer against
// encoding/json on random text: ASCII, controls, quotes, backslashes, HTML
// characters, multi-byte runes, U+2028/2029 and invalid UTF-8.
func TestFastEncodeMatchesJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "Z", " ", "\"", "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "<", ">", "&", "é", "日本", "😀",
		"\u2028", "\u2029", "\xff", "\xc3", "{}", "\\u003c", "sk-"}
	text := func() string {
		s := ""
		for range rng.IntN(20) {
			s += pieces[rng.IntN(len(pieces))]
		}
		return s
	}
	for i := range 2000 {
		ex := &Example{}
		for j := range 1 + rng.IntN(4) {
			m := api.Message{Role: []string{"system", "user", "assistant", "tool"}[j%4], Content: api.TextContent(text())}
			switch rng.IntN(5) {
			case 0:
				m.Content = api.Content{} // null
			case 1:
				m.Name = text()
			case 2:
				m.ToolCallID = text()
			}
			ex.Messages = append(ex.Messages, m)
		}
		fast, ok := appendOpenAILine(nil, ex)
		if !ok {
			t.Fatal("plain example not taken by the fast path")
		}
		b, err := json.Marshal(ex.FineTuneExample)
		if err != nil {
			t.Fatal(err)
		}
		if want := unescapeHTML(b); string(fast) != string(want) {
			t.Fatalf("case %d:\n fast %q\n want %q", i, fast, want)
		}
	}
	ex := &Example{}
	ex.Messages = []api.Message{{Role: "user", Content: api.PartsContent(api.ContentPart{Type: "text", Text: "x"})}}
	if _, ok := appendOpenAILine(nil, ex); ok {
		t.Error("content parts took the fast path")
	}
}
