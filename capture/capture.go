// Package capture is the plugin around every provider call that records it:
// request, (reassembled) response, provider/model, status, latency, TTFT,
// token usage (counted locally when the upstream reports none), cost, and
// who asked. Records go through a bounded queue to a batch writer off the
// request path. When the queue is full a record waits briefly, then is
// spilled to a local JSONL file that is replayed into the store on the next
// start: nothing is dropped silently, and every loss is counted.
package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/store"
)

// Options tune a Capturer. Zero values mean the defaults in parentheses.
type Options struct {
	QueueSize     int           // records buffered in memory (8192)
	BatchSize     int           // records per store write (256)
	FlushInterval time.Duration // longest a record waits for its batch (100ms)
	FullWait      time.Duration // wait on a full queue before spilling (20ms)
	SpillFile     string        // JSONL overflow file; "" disables spilling (then full-queue records are lost, and counted)
	Prices        *pricing.Table
	// NoTokenCount disables local token counting when the upstream reports no usage.
	NoTokenCount bool
	Logger       *slog.Logger
}

// Stats are the capturer's counters, for metrics.
type Stats struct {
	Enqueued, Written, Spilled, Replayed, Lost, WriteErrors int64
	QueueDepth                                              int
	// Lag is how long the last written batch's oldest record waited.
	Lag time.Duration
}

// Capturer records calls into a store. It implements provider.Plugin.
type Capturer struct {
	st     store.Store
	opts   Options
	log    *slog.Logger
	q      chan item
	spill  *spill
	tokens *counter

	mu      sync.RWMutex // guards closed against concurrent enqueue
	closed  bool
	done    chan struct{}
	started bool

	enqueued, written, spilled, replayed, lost, writeErrs atomic.Int64
	lagNanos                                              atomic.Int64
}

type item struct {
	rec  store.Record
	resp any // marshalled into rec.Response by the writer when rec.Response is nil
	call *provider.Call
	at   time.Time
	// flush, when non-nil, is closed after everything queued before it is written.
	flush chan struct{}
}

// New returns a capturer writing to st. Call Start before use and Close at the end.
func New(st store.Store, opts Options) *Capturer {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8192
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 100 * time.Millisecond
	}
	if opts.FullWait <= 0 {
		opts.FullWait = 20 * time.Millisecond
	}
	if opts.Prices == nil {
		opts.Prices = pricing.New(nil)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Capturer{st: st, opts: opts, log: log, q: make(chan item, opts.QueueSize), done: make(chan struct{})}
	if opts.SpillFile != "" {
		c.spill = &spill{path: opts.SpillFile}
	}
	if !opts.NoTokenCount {
		c.tokens = &counter{}
	}
	return c
}

// Start replays records spilled by an earlier run, then starts the writer.
func (c *Capturer) Start(ctx context.Context) error {
	if c.spill != nil {
		n, bad, err := c.spill.replay(ctx, c.st, c.opts.BatchSize)
		c.replayed.Add(int64(n))
		c.lost.Add(int64(bad))
		if err != nil {
			return fmt.Errorf("replay spilled capture records from %s: %w (the file is kept; fix the store and restart)", c.spill.path, err)
		}
		if n > 0 || bad > 0 {
			c.log.Info("replayed spilled capture records", "records", n, "unreadable", bad, "file", c.spill.path)
		}
	}
	c.started = true
	go c.writer()
	return nil
}

// Stats returns the current counters.
func (c *Capturer) Stats() Stats {
	return Stats{Enqueued: c.enqueued.Load(), Written: c.written.Load(), Spilled: c.spilled.Load(), Replayed: c.replayed.Load(),
		Lost: c.lost.Load(), WriteErrors: c.writeErrs.Load(), QueueDepth: len(c.q), Lag: time.Duration(c.lagNanos.Load())}
}

// PreCall does nothing; capture happens after the call.
func (c *Capturer) PreCall(ctx context.Context, call *provider.Call) error { return nil }

// PostCall queues the finished call's record. It never blocks longer than FullWait.
func (c *Capturer) PostCall(ctx context.Context, call *provider.Call) {
	c.enqueue(item{call: call, at: time.Now()})
}

// Add queues a ready-made record (imports, tests, other entry points).
func (c *Capturer) Add(rec store.Record) {
	c.enqueue(item{rec: rec, at: time.Now()})
}

func (c *Capturer) enqueue(it item) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		// Late arrival after Close began draining: keep it on disk.
		c.spillItem(it)
		return
	}
	c.enqueued.Add(1)
	select {
	case c.q <- it:
		return
	default:
	}
	t := time.NewTimer(c.opts.FullWait)
	defer t.Stop()
	select {
	case c.q <- it:
	case <-t.C:
		c.spillItem(it)
	}
}

func (c *Capturer) spillItem(it item) {
	rec := c.build(it)
	if c.spill == nil {
		c.lost.Add(1)
		c.log.Error("capture queue full and no spill file configured: record lost", "id", rec.ID)
		return
	}
	if err := c.spill.write([]store.Record{rec}); err != nil {
		c.lost.Add(1)
		c.log.Error("capture spill failed: record lost", "id", rec.ID, "err", err)
		return
	}
	c.spilled.Add(1)
}

// Flush waits until everything queued so far is written (or spilled).
func (c *Capturer) Flush(ctx context.Context) error {
	ch := make(chan struct{})
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return nil
	}
	select {
	case c.q <- item{flush: ch}:
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	c.mu.RUnlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting records, writes everything queued, and returns when
// done or when ctx expires (then what remains is spilled to disk).
func (c *Capturer) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.q)
	c.mu.Unlock()
	if !c.started {
		go c.writer()
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush capture queue: %w (remaining records are spilled to %s by the writer)", ctx.Err(), c.opts.SpillFile)
	}
}

func (c *Capturer) writer() {
	defer close(c.done)
	batch := make([]store.Record, 0, c.opts.BatchSize)
	var oldest time.Time
	tick := time.NewTicker(c.opts.FlushInterval)
	defer tick.Stop()
	var flushes []chan struct{}
	flush := func() {
		if len(batch) > 0 {
			c.writeBatch(batch)
			c.lagNanos.Store(int64(time.Since(oldest)))
			batch = batch[:0]
		}
		for _, f := range flushes {
			close(f)
		}
		flushes = flushes[:0]
	}
	for {
		select {
		case it, ok := <-c.q:
			if !ok {
				flush()
				return
			}
			if it.flush != nil {
				flushes = append(flushes, it.flush)
				flush()
				continue
			}
			if len(batch) == 0 {
				oldest = it.at
			}
			batch = append(batch, c.build(it))
			if len(batch) >= c.opts.BatchSize {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// writeBatch inserts with a few retries; a batch the store keeps refusing is
// spilled so it is replayed later.
func (c *Capturer) writeBatch(batch []store.Record) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = c.st.InsertRecords(ctx, batch)
		cancel()
		if err == nil {
			c.written.Add(int64(len(batch)))
			return
		}
		c.writeErrs.Add(1)
		c.log.Warn("capture write failed, retrying", "records", len(batch), "attempt", attempt+1, "err", err)
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
	}
	if c.spill != nil {
		if serr := c.spill.write(batch); serr == nil {
			c.spilled.Add(int64(len(batch)))
			c.log.Error("capture store unavailable: batch spilled for replay on next start", "records", len(batch), "file", c.spill.path, "err", err)
			return
		} else {
			err = errors.Join(err, serr)
		}
	}
	c.lost.Add(int64(len(batch)))
	c.log.Error("capture batch lost", "records", len(batch), "err", err)
}

// build turns a queued item into a record: usage, estimation, cost, bodies.
func (c *Capturer) build(it item) store.Record {
	if it.call == nil {
		return it.rec
	}
	call := it.call
	rec := store.Record{
		ID: call.ID, CreatedAt: call.Start.UTC(), Project: call.Project, KeyID: call.KeyID,
		Endpoint: call.Endpoint, Route: call.Route, Provider: call.Provider, Model: call.Model,
		Stream: call.Stream, Status: call.Status, Latency: call.Latency, TTFT: call.TTFT,
		User: call.User, Tags: call.Tags, Metadata: call.Metadata, ParentID: call.ParentID, Attempts: call.Attempts,
		Request: json.RawMessage(call.RawBody),
	}
	if call.Err != nil {
		rec.Error = api.AsError(call.Err).Message
	}
	if len(call.ResponseBody) > 0 {
		rec.Response = json.RawMessage(call.ResponseBody)
	} else if call.ChatResponse != nil {
		rec.Response, _ = json.Marshal(call.ChatResponse)
	} else if call.EmbeddingResponse != nil {
		rec.Response, _ = json.Marshal(summarizeEmbeddings(call.EmbeddingResponse))
	}
	if len(rec.Request) > 0 && !json.Valid(rec.Request) {
		rec.Request, _ = json.Marshal(string(rec.Request))
	}
	model := call.Model
	if model == "" {
		model = call.Route
	}
	cached := 0
	switch {
	case call.ChatResponse != nil && call.ChatResponse.Usage != nil:
		u := call.ChatResponse.Usage
		rec.PromptTokens, rec.CompletionTokens = u.PromptTokens, u.CompletionTokens
		if u.PromptTokensDetails != nil {
			cached = u.PromptTokensDetails.CachedTokens
		}
	case call.EmbeddingResponse != nil && call.EmbeddingResponse.Usage != nil:
		rec.PromptTokens = call.EmbeddingResponse.Usage.PromptTokens
	case c.tokens != nil && call.Status < 400 && (call.ChatResponse != nil || call.EmbeddingResponse != nil):
		rec.PromptTokens, rec.CompletionTokens = c.tokens.estimate(model, call)
		rec.UsageEstimated = true
	}
	if cost, ok := c.opts.Prices.Cost(model, rec.PromptTokens, cached, rec.CompletionTokens); ok {
		rec.CostUSD = cost
	}
	call.PromptTokens, call.CompletionTokens, call.UsageEstimated, call.CostUSD = rec.PromptTokens, rec.CompletionTokens, rec.UsageEstimated, rec.CostUSD
	return rec
}

// summarizeEmbeddings drops the vectors: they are large and not training data.
func summarizeEmbeddings(r *api.EmbeddingResponse) any {
	return map[string]any{"object": r.Object, "model": r.Model, "usage": r.Usage, "data_count": len(r.Data)}
}
