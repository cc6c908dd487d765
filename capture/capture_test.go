package capture

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/store"
)

// memStore is a tiny in-memory store.Store for capture's own tests; the
// gateway's tests use the real SQLite store.
type memStore struct {
	store.Store // methods the capturer never calls (routes)
	mu          sync.Mutex
	recs        map[string]store.Record
	gate        chan struct{} // when non-nil, InsertRecords waits for it to close
	fail        bool
	calls       int
}

func newMem() *memStore { return &memStore{recs: map[string]store.Record{}} }

func (m *memStore) InsertRecords(ctx context.Context, recs []store.Record) error {
	if m.gate != nil {
		<-m.gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.fail {
		return errors.New("disk full")
	}
	for _, r := range recs {
		if _, ok := m.recs[r.ID]; !ok {
			m.recs[r.ID] = r
		}
	}
	return nil
}
func (m *memStore) get(id string) (store.Record, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[id]
	return r, ok
}
func (m *memStore) n() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.recs) }
func (m *memStore) GetRecord(context.Context, string) (store.RecordWithFeedback, error) {
	return store.RecordWithFeedback{}, store.ErrNotFound
}
func (m *memStore) ListRecords(context.Context, store.Query) (store.Page, error) {
	return store.Page{}, nil
}
func (m *memStore) ScanRecords(context.Context, store.Query, func(store.RecordWithFeedback) error) error {
	return nil
}
func (m *memStore) CountRecords(context.Context, store.Query) (int64, error)      { return 0, nil }
func (m *memStore) DeleteRecordsBefore(context.Context, time.Time) (int64, error) { return 0, nil }
func (m *memStore) Usage(context.Context, store.Query, time.Duration) ([]store.UsageBucket, error) {
	return nil, nil
}
func (m *memStore) AddFeedback(context.Context, store.Feedback) error { return nil }
func (m *memStore) CreateKey(context.Context, store.Key) error        { return nil }
func (m *memStore) KeyByHash(context.Context, string) (store.Key, error) {
	return store.Key{}, store.ErrNotFound
}
func (m *memStore) ListKeys(context.Context, string) ([]store.Key, error) { return nil, nil }
func (m *memStore) RevokeKey(context.Context, string) error               { return nil }
func (m *memStore) TouchKey(context.Context, string, time.Time) error     { return nil }
func (m *memStore) Close() error                                          { return nil }

func chatCall(id string, usage *api.Usage) *provider.Call {
	req := &api.ChatRequest{Model: "gpt-4o-mini", Messages: []api.Message{{Role: "user", Content: api.TextContent("Hello there, how are you?")}}}
	return &provider.Call{ID: id, Start: time.Now(), Endpoint: "chat.completions", Route: "gpt-4o-mini", Provider: "openai", Model: "gpt-4o-mini",
		Chat: req, RawBody: []byte(`{"model":"gpt-4o-mini"}`), Status: 200, Latency: 3 * time.Millisecond, Tags: []string{"a"},
		ChatResponse: &api.ChatResponse{ID: "x", Choices: []api.Choice{{Message: api.Message{Role: "assistant", Content: api.TextContent("I am fine, thank you.")}}}, Usage: usage}}
}

func TestRecordsUsageCostAndEstimates(t *testing.T) {
	st := newMem()
	c := New(st, Options{SpillFile: filepath.Join(t.TempDir(), "spill.jsonl")})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.PostCall(context.Background(), chatCall("r1", &api.Usage{PromptTokens: 1000, CompletionTokens: 2000, TotalTokens: 3000}))
	c.PostCall(context.Background(), chatCall("r2", nil))
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r1, _ := st.get("r1")
	if r1.PromptTokens != 1000 || r1.UsageEstimated || fmt.Sprintf("%.6f", r1.CostUSD) != "0.001350" || string(r1.Request) != `{"model":"gpt-4o-mini"}` || len(r1.Response) == 0 {
		t.Fatalf("r1 = %+v", r1)
	}
	r2, _ := st.get("r2")
	// "Hello there, how are you?" is 7 o200k tokens + 3 + 3; "I am fine, thank you." is 7.
	if !r2.UsageEstimated || r2.PromptTokens != 13 || r2.CompletionTokens != 7 || r2.CostUSD == 0 {
		t.Fatalf("r2 = %+v", r2)
	}
}

func TestFullQueueSpillsAndReplays(t *testing.T) {
	spillPath := filepath.Join(t.TempDir(), "spill.jsonl")
	st := newMem()
	st.gate = make(chan struct{})
	c := New(st, Options{QueueSize: 2, BatchSize: 1, FullWait: time.Millisecond, SpillFile: spillPath})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := 0; i < n; i++ {
		c.PostCall(context.Background(), chatCall(fmt.Sprint("s", i), &api.Usage{}))
	}
	s := c.Stats()
	if s.Spilled < n-3 || s.Lost != 0 {
		t.Fatalf("stats %+v", s)
	}
	close(st.gate)
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := int64(st.n()); got+c.Stats().Spilled != n {
		t.Fatalf("stored %d + spilled %d != %d", got, c.Stats().Spilled, n)
	}
	// Next start replays the spill file; replaying twice is harmless.
	c2 := New(st, Options{SpillFile: spillPath})
	if err := c2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c2.Close(context.Background())
	if st.n() != n || c2.Stats().Replayed != s.Spilled {
		t.Fatalf("after replay: %d records, replayed %d", st.n(), c2.Stats().Replayed)
	}
}

func TestStoreFailureSpillsBatch(t *testing.T) {
	spillPath := filepath.Join(t.TempDir(), "spill.jsonl")
	st := newMem()
	st.fail = true
	c := New(st, Options{SpillFile: spillPath})
	c.Start(context.Background())
	c.PostCall(context.Background(), chatCall("f1", &api.Usage{}))
	c.Close(context.Background())
	if c.Stats().Spilled != 1 || c.Stats().Lost != 0 {
		t.Fatalf("stats %+v", c.Stats())
	}
	st.fail = false
	c2 := New(st, Options{SpillFile: spillPath})
	c2.Start(context.Background())
	c2.Close(context.Background())
	if _, ok := st.get("f1"); !ok {
		t.Fatal("spilled record not replayed")
	}
}

func TestFlush(t *testing.T) {
	st := newMem()
	c := New(st, Options{FlushInterval: time.Hour})
	c.Start(context.Background())
	defer c.Close(context.Background())
	c.PostCall(context.Background(), chatCall("x", &api.Usage{}))
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.get("x"); !ok {
		t.Fatal("flush did not write")
	}
}
