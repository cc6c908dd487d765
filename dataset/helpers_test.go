package dataset_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
)

// plantedRow is one line of testdata/planted.jsonl (see gen_planted.py).
type plantedRow struct {
	ID         string            `json:"id"`
	Created    int64             `json:"created"`
	Route      string            `json:"route"`
	Model      string            `json:"model"`
	Tags       []string          `json:"tags"`
	Meta       map[string]string `json:"meta"`
	User       string            `json:"user"`
	Answer     *string           `json:"answer"`
	Refusal    string            `json:"refusal"`
	Score      *float64          `json:"score"`
	Error      string            `json:"error"`
	Status     int               `json:"status"`
	Endpoint   string            `json:"endpoint"`
	Finish     string            `json:"finish"`
	RawRequest string            `json:"raw_request"`
	Plant      string            `json:"plant"`
	PII        map[string]int    `json:"pii"`
}

const systemPrompt = "You are the support bot. Answer with JSON {category, answer}."

func (p plantedRow) record() store.Record {
	req, _ := json.Marshal(map[string]any{"model": p.Model, "messages": []map[string]any{
		{"role": "system", "content": systemPrompt}, {"role": "user", "content": p.User}}})
	if p.RawRequest != "" {
		req = []byte(p.RawRequest)
	}
	msg := map[string]any{"role": "assistant", "content": p.Answer}
	if p.Refusal != "" {
		msg["refusal"] = p.Refusal
	}
	finish := p.Finish
	if finish == "" {
		finish = "stop"
	}
	resp, _ := json.Marshal(map[string]any{"id": "chatcmpl-" + p.ID, "object": "chat.completion", "created": p.Created, "model": p.Model,
		"choices": []map[string]any{{"index": 0, "message": msg, "finish_reason": finish}}})
	r := store.Record{ID: p.ID, CreatedAt: time.Unix(p.Created, 0).UTC(), Endpoint: "chat.completions", Route: p.Route, Provider: "openai",
		Model: p.Model, Status: 200, Error: p.Error, Request: req, Response: resp, Tags: p.Tags, Metadata: p.Meta}
	if p.Endpoint != "" {
		r.Endpoint = p.Endpoint
	}
	if p.Status != 0 {
		r.Status = p.Status
	}
	return r
}

func readPlanted(t testing.TB) []plantedRow {
	t.Helper()
	f, err := os.Open("testdata/planted.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []plantedRow
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r plantedRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return rows
}

// plantedStore loads the planted fixture into a fresh SQLite store.
func plantedStore(t testing.TB) (store.Store, []plantedRow) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "foundry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rows := readPlanted(t)
	recs := make([]store.Record, len(rows))
	for i, r := range rows {
		recs[i] = r.record()
	}
	if err := st.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Score != nil {
			if err := st.AddFeedback(ctx, store.Feedback{RequestID: r.ID, Score: r.Score, CreatedAt: time.Unix(r.Created+1, 0)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st, rows
}
