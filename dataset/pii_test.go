package dataset_test

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/dataset"
)

// TestPIIPrecisionRecall measures the scrubber on testdata/pii_labelled.jsonl:
// each line is a text and the exact PII strings in it (none for the tricky
// negatives: order numbers, dates, versions, non-Luhn digit runs, bad IBAN
// checksums, template values). A found span counts as correct when its type
// and text equal a label.
func TestPIIPrecisionRecall(t *testing.T) {
	f, err := os.Open("testdata/pii_labelled.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := dataset.NewScrubber(nil)
	if err != nil {
		t.Fatal(err)
	}
	var tp, fp, fn int
	perType := map[string][3]int{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var l struct {
			Text string      `json:"text"`
			PII  [][2]string `json:"pii"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		want := map[[2]string]int{}
		for _, p := range l.PII {
			want[p]++
		}
		for _, m := range s.Find(l.Text) {
			k := [2]string{m.Type, l.Text[m.Start:m.End]}
			c := perType[m.Type]
			if want[k] > 0 {
				want[k]--
				tp++
				c[0]++
			} else {
				fp++
				c[1]++
				t.Logf("line %d: false positive %s %q", line, k[0], k[1])
			}
			perType[m.Type] = c
		}
		for k, n := range want {
			if n > 0 {
				fn += n
				c := perType[k[0]]
				c[2] += n
				perType[k[0]] = c
				t.Logf("line %d: missed %s %q", line, k[0], k[1])
			}
		}
	}
	precision := float64(tp) / float64(tp+fp)
	recall := float64(tp) / float64(tp+fn)
	t.Logf("PII precision %.3f recall %.3f (tp %d, fp %d, fn %d)", precision, recall, tp, fp, fn)
	for _, typ := range dataset.PIITypes {
		c := perType[typ]
		t.Logf("  %-6s tp %2d fp %2d fn %2d", typ, c[0], c[1], c[2])
	}
	if tp+fn < 50 {
		t.Fatalf("the fixture has %d labelled strings; keep at least 50", tp+fn)
	}
	if precision < 0.95 || recall < 0.95 {
		t.Errorf("precision %.3f / recall %.3f below the 0.95 floors", precision, recall)
	}
}

func TestScrubPlaceholdersConsistentAcrossMessages(t *testing.T) {
	s, _ := dataset.NewScrubber(nil)
	ex := &dataset.Example{}
	ex.Messages = []api.Message{
		{Role: "user", Content: api.TextContent("I am ann@x.io, my colleague is bob@y.io; call +44 20 7946 0958")},
		{Role: "assistant", Content: api.TextContent("Emailing ann@x.io now."), ToolCalls: []api.ToolCall{{ID: "c1", Type: "function",
			Function: api.FunctionCall{Name: "send", Arguments: `{"to":"bob@y.io","phone":"+44 20 7946 0958"}`}}}},
	}
	counts := s.ScrubExample(ex)
	if got := ex.Messages[0].Content.String(); got != "I am <EMAIL_1>, my colleague is <EMAIL_2>; call <PHONE_1>" {
		t.Errorf("user message: %q", got)
	}
	if got := ex.Messages[1].Content.String(); got != "Emailing <EMAIL_1> now." {
		t.Errorf("answer: %q", got)
	}
	if got := ex.Messages[1].ToolCalls[0].Function.Arguments; got != `{"to":"<EMAIL_2>","phone":"<PHONE_1>"}` {
		t.Errorf("tool call arguments: %q", got)
	}
	if counts["EMAIL"] != 4 || counts["PHONE"] != 2 {
		t.Errorf("counts %v", counts)
	}
	if out, _ := s.ScrubText("nothing here 2024-01-15"); !strings.Contains(out, "2024-01-15") {
		t.Errorf("date scrubbed: %q", out)
	}
}
