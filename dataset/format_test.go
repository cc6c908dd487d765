package dataset_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/foundryhq/foundry/dataset"
)

func readAll(t *testing.T, path, format string) (rows []*dataset.Example, bad []error) {
	t.Helper()
	err := dataset.ReadFile(context.Background(), path, format, func(ex *dataset.Example, err error) error {
		if err != nil {
			bad = append(bad, err)
			return nil
		}
		rows = append(rows, ex)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows, bad
}

func TestImportReportsUnreadableLines(t *testing.T) {
	rows, bad := readAll(t, "testdata/mixed.openai.jsonl", dataset.FormatOpenAI)
	if len(rows) != 4 || len(bad) != 2 {
		t.Fatalf("%d rows, %d bad; want 4 and 2", len(rows), len(bad))
	}
	if !strings.HasPrefix(bad[0].Error(), "line 4:") || !strings.HasPrefix(bad[1].Error(), "line 5:") {
		t.Errorf("errors do not name their lines: %v", bad)
	}
	if f, _ := dataset.DetectFormat("testdata/mixed.openai.jsonl"); f != dataset.FormatOpenAI {
		t.Errorf("detected %q", f)
	}
}

// TestFormatsRoundTrip writes the fixture in every format, reads it back and
// writes it again: the second write must equal the first, and converting
// back to OpenAI must give the original conversations (for rows the format
// can hold).
func TestFormatsRoundTrip(t *testing.T) {
	rows, _ := readAll(t, "testdata/mixed.openai.jsonl", dataset.FormatOpenAI)
	dir := t.TempDir()
	for _, format := range dataset.Formats {
		t.Run(format, func(t *testing.T) {
			write := func(name string, rows []*dataset.Example) (string, int) {
				path := filepath.Join(dir, name)
				f, err := os.Create(path)
				if err != nil {
					t.Fatal(err)
				}
				w, err := dataset.NewWriter(f, format)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, ex := range rows {
					if err := w.Write(ex); err == nil {
						n++
					} else if _, ok := err.(*dataset.UnrepresentableError); !ok {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				f.Close()
				return path, n
			}
			p1, n1 := write("a."+format, rows)
			back, bad := readAll(t, p1, format)
			if len(bad) > 0 || len(back) != n1 {
				t.Fatalf("read back %d rows (%v), wrote %d", len(back), bad, n1)
			}
			p2, _ := write("b."+format, back)
			b1, _ := os.ReadFile(p1)
			b2, _ := os.ReadFile(p2)
			if !bytes.Equal(b1, b2) {
				t.Errorf("second write differs from the first")
			}
			want := map[string]bool{}
			for _, ex := range rows {
				l, _ := dataset.EncodeLine(ex, dataset.FormatOpenAI)
				want[string(l)] = true
			}
			same := 0
			for _, ex := range back {
				l, _ := dataset.EncodeLine(ex, dataset.FormatOpenAI)
				if want[string(l)] {
					same++
				}
			}
			t.Logf("%s: wrote %d of %d rows, %d identical as OpenAI JSONL after the round trip", format, n1, len(rows), same)
			minRows := map[string]int{"openai": 4, "parquet": 4, "sharegpt": 4, "alpaca": 3}[format]
			if n1 < minRows {
				t.Errorf("wrote %d rows, want %d", n1, minRows)
			}
			// Everything but ShareGPT (which has no tool call ids) comes back exactly.
			if format != dataset.FormatShareGPT && same != n1 {
				t.Errorf("%d of %d rows changed in the round trip", n1-same, n1)
			}
			if format == dataset.FormatShareGPT && same < 3 {
				t.Errorf("only %d rows survived the sharegpt round trip unchanged", same)
			}
		})
	}
}

func TestShareGPTAndAlpacaShapes(t *testing.T) {
	rows, _ := readAll(t, "testdata/mixed.openai.jsonl", dataset.FormatOpenAI)
	b, err := dataset.EncodeLine(rows[1], dataset.FormatShareGPT)
	if err != nil {
		t.Fatal(err)
	}
	var sg struct {
		Conversations []struct{ From, Value string }
		Tools         string
	}
	if err := json.Unmarshal(b, &sg); err != nil {
		t.Fatal(err)
	}
	var froms []string
	for _, c := range sg.Conversations {
		froms = append(froms, c.From)
	}
	if strings.Join(froms, ",") != "human,function_call,observation,gpt" || !strings.Contains(sg.Tools, "get_weather") {
		t.Errorf("sharegpt: %s", b)
	}
	b, err = dataset.EncodeLine(rows[2], dataset.FormatAlpaca)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"instruction":"And 'dog'?","input":"","output":"chien","history":[["Translate 'cat' to French","chat"]]}` {
		t.Errorf("alpaca: %s", b)
	}
	if _, err := dataset.EncodeLine(rows[1], dataset.FormatAlpaca); err == nil {
		t.Error("alpaca accepted a conversation with tools")
	}
}

// Hub-style Parquet schemas: what datasets on the Hugging Face hub store.
type (
	hubMessage struct {
		Role    string `parquet:"role"`
		Content string `parquet:"content"`
	}
	hubChatRow struct {
		Prompt   string       `parquet:"prompt"`
		Messages []hubMessage `parquet:"messages,list"`
		Category string       `parquet:"category"`
	}
	hubTurn struct {
		From  string `parquet:"from"`
		Value string `parquet:"value"`
	}
	hubShareGPTRow struct {
		Conversations []hubTurn `parquet:"conversations,list"`
	}
	hubAlpacaRow struct {
		Instruction string `parquet:"instruction"`
		Input       string `parquet:"input"`
		Output      string `parquet:"output"`
	}
	hubOtherRow struct {
		Question string `parquet:"question"`
		Answer   string `parquet:"answer"`
	}
)

func writeParquet[T any](t *testing.T, rows []T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[T](f)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReadHubParquet reads the Parquet layouts of hub datasets: chat
// messages as a list of structs, ShareGPT turns and Alpaca columns; other
// columns are an error that names them.
func TestReadHubParquet(t *testing.T) {
	chat := writeParquet(t, []hubChatRow{
		{Prompt: "Hi?", Messages: []hubMessage{{"system", "Be brief."}, {"user", "Hi?"}, {"assistant", "Hello."}}, Category: "chat"},
		{Prompt: "", Messages: nil, Category: "empty"},
		{Prompt: "Sum?", Messages: []hubMessage{{"user", "1+1?"}, {"assistant", "2"}}},
	})
	sharegpt := writeParquet(t, []hubShareGPTRow{{Conversations: []hubTurn{{"human", "Name a color."}, {"gpt", "Teal."}}}})
	alpaca := writeParquet(t, []hubAlpacaRow{{Instruction: "Translate.", Input: "chat", Output: "cat"}})
	for _, c := range []struct {
		name, path string
		want       [][]string // role:content per row
		bad        int
	}{
		{"messages", chat, [][]string{{"system:Be brief.", "user:Hi?", "assistant:Hello."}, {"user:1+1?", "assistant:2"}}, 1},
		{"sharegpt", sharegpt, [][]string{{"user:Name a color.", "assistant:Teal."}}, 0},
		{"alpaca", alpaca, [][]string{{"user:Translate.\n\nchat", "assistant:cat"}}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if f, err := dataset.DetectFormat(c.path); err != nil || f != dataset.FormatParquet {
				t.Fatalf("DetectFormat = %q, %v", f, err)
			}
			rows, bad := readAll(t, c.path, dataset.FormatParquet)
			if len(bad) != c.bad || len(rows) != len(c.want) {
				t.Fatalf("%d rows, %d unreadable (%v); want %d and %d", len(rows), len(bad), bad, len(c.want), c.bad)
			}
			for i, ex := range rows {
				var got []string
				for _, m := range ex.Messages {
					got = append(got, m.Role+":"+m.Content.String())
				}
				if strings.Join(got, "|") != strings.Join(c.want[i], "|") {
					t.Errorf("row %d: %q, want %q", i, got, c.want[i])
				}
				if !strings.HasPrefix(ex.Meta.ID, "data.parquet:") {
					t.Errorf("row %d id %q", i, ex.Meta.ID)
				}
			}
		})
	}
	other := writeParquet(t, []hubOtherRow{{Question: "q", Answer: "a"}})
	err := dataset.ReadFile(context.Background(), other, dataset.FormatParquet, func(*dataset.Example, error) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "(question, answer)") {
		t.Errorf("unknown columns: %v, want an error naming them", err)
	}
}
