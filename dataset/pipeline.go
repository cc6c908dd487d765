package dataset

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Stage is one step of a pipeline. Run reads examples from in until it is
// closed and passes each one on with out.Keep or removes it with out.Drop
// (with a short reason, which the funnel counts). Run must not return before
// in is closed unless it fails or ctx is done, and it must keep the order of
// the examples it keeps (a stage that works on several examples at once, such
// as a judge, reorders its results by Example.Seq before keeping them).
//
// Stages that need every row before deciding (Dedupe) spool rows to disk and
// keep them after in is closed.
type Stage interface {
	Name() string
	Run(ctx context.Context, in <-chan *Example, out *Out) error
}

// Source produces the examples a pipeline starts from, in a deterministic
// order. Unreadable rows are reported with out.Drop, never as errors; an error
// means the source as a whole failed (the store is unreachable, a file is missing).
type Source interface {
	Name() string
	Examples(ctx context.Context, out *Out) error
}

// Out is where a stage sends the examples it keeps and reports the ones it drops.
type Out struct {
	ch       chan<- *Example // nil for the last stage: keep calls sink
	sink     func(*Example) error
	rep      *StageReport
	mu       sync.Mutex // guards rep (a stage may drop from several goroutines)
	progress func(n int64)
	// filter, when set, may turn a Keep into a drop for the reason it returns
	// (Mix uses it to apply a source's weight).
	filter func(*Example) string
}

// Keep passes ex to the next stage.
func (o *Out) Keep(ctx context.Context, ex *Example) error {
	if o.filter != nil {
		if reason := o.filter(ex); reason != "" {
			o.drop(ex, reason, "", true)
			return nil
		}
	}
	o.mu.Lock()
	o.rep.Out++
	n := o.rep.Out + o.rep.dropped
	o.mu.Unlock()
	if o.progress != nil && n%1024 == 0 {
		o.progress(n)
	}
	if o.ch == nil {
		return o.sink(ex)
	}
	select {
	case o.ch <- ex:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxSamples is how many examples the funnel keeps per drop reason.
const maxSamples = 3

// Drop removes ex, counting it under reason; detail (the matched text, the
// parse error) is kept for the first few examples of each reason.
func (o *Out) Drop(ex *Example, reason, detail string) { o.drop(ex, reason, detail, true) }

// drop counts a dropped row, keeping it as a sample only when sample is set
// (and the reason has fewer than maxSamples).
func (o *Out) drop(ex *Example, reason, detail string, sample bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rep.dropped++
	if o.progress != nil && (o.rep.Out+o.rep.dropped)%1024 == 0 {
		o.progress(o.rep.Out + o.rep.dropped)
	}
	r := o.rep.reason(reason)
	r.Count++
	if sample && len(r.Samples) < maxSamples {
		s := Sample{Detail: truncate(detail, 200)}
		if ex != nil {
			s.ID, s.Source, s.Line = ex.Meta.ID, ex.Meta.Source, ex.Meta.Line
		}
		r.Samples = append(r.Samples, s)
	}
}

// Count adds n to one of the stage's own counters (PII found per type,
// examples per split...).
func (o *Out) Count(name string, n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rep.Counters == nil {
		o.rep.Counters = map[string]int64{}
	}
	o.rep.Counters[name] += n
}

// StageReport is one line of the funnel.
type StageReport struct {
	Stage    string           `json:"stage"`
	In       int64            `json:"in"`
	Out      int64            `json:"out"`
	Dropped  []*Reason        `json:"dropped,omitempty"` // most frequent first
	Counters map[string]int64 `json:"counters,omitempty"`
	dropped  int64
}

func (r *StageReport) reason(name string) *Reason {
	for _, x := range r.Dropped {
		if x.Reason == name {
			return x
		}
	}
	x := &Reason{Reason: name}
	r.Dropped = append(r.Dropped, x)
	return x
}

// DroppedFor returns how many rows the stage dropped for reason.
func (r *StageReport) DroppedFor(reason string) int64 {
	for _, x := range r.Dropped {
		if x.Reason == reason {
			return x.Count
		}
	}
	return 0
}

// Reason counts the rows a stage dropped for one reason, with a few examples.
type Reason struct {
	Reason  string   `json:"reason"`
	Count   int64    `json:"count"`
	Samples []Sample `json:"samples,omitempty"`
}

// Sample identifies one dropped row.
type Sample struct {
	ID     string `json:"id,omitempty"`
	Source string `json:"source,omitempty"`
	Line   int    `json:"line,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Funnel is the report of a pipeline run: the source first, then each stage.
type Funnel []*StageReport

// Stage returns the report of the named stage, or nil.
func (f Funnel) Stage(name string) *StageReport {
	for _, r := range f {
		if r.Stage == name {
			return r
		}
	}
	return nil
}

// Pipeline runs a Source through Stages into a sink, one goroutine per stage
// with small buffers between them, so memory is bounded by the buffers (and
// whatever state a stage chooses to keep).
type Pipeline struct {
	Source Source
	Stages []Stage
	// Progress, if set, is called every 1024 rows the source produces or drops.
	Progress func(rows int64)
	// Buffer is the channel capacity between stages (default 256).
	Buffer int
}

// Run runs the pipeline and calls sink for every example that comes out, in
// order, from a single goroutine. It returns the funnel even when it fails.
func (p *Pipeline) Run(ctx context.Context, sink func(*Example) error) (Funnel, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	buf := p.Buffer
	if buf <= 0 {
		buf = 256
	}
	funnel := make(Funnel, 0, len(p.Stages)+1)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		if err == nil {
			return
		}
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	// Wire back to front so each stage knows where its output goes.
	outs := make([]*Out, len(p.Stages)+1)
	ins := make([]chan *Example, len(p.Stages)+1) // ins[i] feeds stage i-1... see below
	for i := range outs {
		rep := &StageReport{}
		if i == 0 {
			rep.Stage = p.Source.Name()
		} else {
			rep.Stage = p.Stages[i-1].Name()
		}
		funnel = append(funnel, rep)
		outs[i] = &Out{rep: rep}
		if i < len(p.Stages) {
			ins[i] = make(chan *Example, buf)
			outs[i].ch = ins[i]
		} else {
			outs[i].sink = sink
		}
	}
	outs[0].progress = p.Progress
	wg.Add(1 + len(p.Stages))
	go func() {
		defer wg.Done()
		if len(p.Stages) > 0 {
			defer close(ins[0])
		}
		fail(p.Source.Examples(ctx, outs[0]))
	}()
	for i, st := range p.Stages {
		go func() {
			defer wg.Done()
			if i+1 < len(p.Stages) {
				defer close(ins[i+1])
			}
			err := st.Run(ctx, ins[i], outs[i+1])
			if err != nil {
				fail(fmt.Errorf("%s: %w", st.Name(), err))
			}
			// Drain so an upstream stage never blocks on a stage that gave up.
			for range ins[i] {
			}
		}()
	}
	wg.Wait()
	for i, rep := range funnel {
		if i == 0 {
			rep.In = rep.Out + rep.dropped
		} else {
			rep.In = funnel[i-1].Out
		}
		sort.SliceStable(rep.Dropped, func(a, b int) bool { return rep.Dropped[a].Count > rep.Dropped[b].Count })
	}
	if firstErr == nil {
		if err := ctx.Err(); err != nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		for _, rep := range funnel[1:] {
			if rep.In != rep.Out+rep.dropped {
				return funnel, fmt.Errorf("stage %s received %d rows but kept %d and dropped %d (a stage bug: rows must be kept or dropped)", rep.Stage, rep.In, rep.Out, rep.dropped)
			}
		}
	}
	return funnel, firstErr
}

// RowStage adapts a function deciding one example at a time into a Stage.
// decide returns "" to keep the example (possibly modified in place), or a
// drop reason and a detail.
type RowStage struct {
	StageName string
	Decide    func(ctx context.Context, ex *Example, out *Out) (reason, detail string, err error)
	// Workers, when above 1, runs Decide on that many goroutines at once
	// (Decide must then be safe for concurrent use); examples still leave
	// in the order they came.
	Workers int
	// Batch is how many examples a worker takes at once (default 64, which
	// keeps channel costs small for fast Decides). A Decide that calls a
	// model should set 1, so that Workers calls are in flight even for a
	// few rows.
	Batch int
}

// Name returns the stage's name.
func (s RowStage) Name() string { return s.StageName }

// Run applies Decide to every example.
func (s RowStage) Run(ctx context.Context, in <-chan *Example, out *Out) error {
	if s.Workers > 1 {
		type decided struct {
			ex             *Example
			reason, detail string
			err            error
		}
		return orderedMap(ctx, s.Workers, s.Batch, func(send func(*Example) error) error {
			for ex := range in {
				if err := send(ex); err != nil {
					return err
				}
			}
			return nil
		}, func(ex *Example) decided {
			r, d, err := s.Decide(ctx, ex, out)
			return decided{ex, r, d, err}
		}, func(d decided) error {
			if d.err != nil {
				return d.err
			}
			if d.reason != "" {
				out.Drop(d.ex, d.reason, d.detail)
				return nil
			}
			return out.Keep(ctx, d.ex)
		})
	}
	for ex := range in {
		reason, detail, err := s.Decide(ctx, ex, out)
		if err != nil {
			return err
		}
		if reason != "" {
			out.Drop(ex, reason, detail)
			continue
		}
		if err := out.Keep(ctx, ex); err != nil {
			return err
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
