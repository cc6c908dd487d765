package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/foundryhq/foundry/train/lora"
)

// Request is one generation: a tokenized prompt and how to continue it.
type Request struct {
	// Prompt is the token ids to continue (at least one, fewer than the context).
	Prompt []int32
	// MaxTokens caps the completion; 0 generates until a stop or the context is full.
	MaxTokens int
	// Sampling chooses the tokens; the zero value is greedy.
	Sampling Sampling
	// StopTokens end generation when sampled, in addition to the model's
	// end-of-sequence ids (unless IgnoreEOS).
	StopTokens []int32
	// IgnoreEOS keeps generating past the model's end-of-sequence ids.
	IgnoreEOS bool
	// Stop strings end generation when they appear in the decoded text,
	// which then ends before the first of them. They need Options.Detokenizer.
	Stop []string
	// Adapter is the index of the LoRA adapter to apply (from
	// Engine.LoadAdapter or Runner.LoadAdapter); 0 is the base model.
	Adapter int
}

// Token is one generated token as it streams out.
type Token struct {
	ID int32
	// Text is the text this token completes; it may be "" (part of a
	// character, a possible stop string held back, or an end token).
	Text string
	// Logprob and TopLogprobs are set when the request asked for them.
	Logprob     float32
	TopLogprobs []TokenLogprob
	// End marks an end token (end-of-sequence or a stop token id): the last
	// of a stream, counted in usage, with no text of its own.
	End bool
}

// FinishReason says why generation ended, as in OpenAI's finish_reason.
type FinishReason string

// Finish reasons.
const (
	FinishStop   FinishReason = "stop"   // an end token or a stop string
	FinishLength FinishReason = "length" // MaxTokens, or the context is full
)

// Usage counts a request's tokens. CompletionTokens includes an end token.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Result is a finished generation.
type Result struct {
	Tokens       []Token
	Text         string
	FinishReason FinishReason
	Usage        Usage
}

// IDs returns the generated token ids.
func (r *Result) IDs() []int32 {
	ids := make([]int32, len(r.Tokens))
	for i, t := range r.Tokens {
		ids[i] = t.ID
	}
	return ids
}

// Stream is a generation in progress.
type Stream struct {
	tokens chan Token
	done   chan struct{}
	result Result
	err    error
}

// Tokens delivers tokens as they are generated; it is closed when generation
// ends. Reading it is optional: the engine never waits for a reader.
func (s *Stream) Tokens() <-chan Token { return s.tokens }

// Wait blocks until generation ends and returns the result, or the error
// that ended it (then the result holds what was generated before).
func (s *Stream) Wait() (*Result, error) {
	<-s.done
	return &s.result, s.err
}

// Done is closed when generation has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// ErrClosed is returned for requests made to, or cut off by, a closed Engine.
var ErrClosed = errors.New("engine closed")

// Options configure an Engine.
type Options struct {
	// Detokenizer turns tokens into text for Token.Text, Result.Text and stop
	// strings; without one, text stays empty and stop strings are refused.
	Detokenizer Detokenizer
	// EOS are the end-of-sequence ids; nil means the model config's eos_token_id.
	EOS []int32
	// Logger receives scheduler events (default slog.Default()).
	Logger *slog.Logger
}

// Engine schedules requests on a Runner with continuous batching: one
// goroutine admits queued requests into free slots between decode steps
// (prefilling each), decodes one token for every active slot per step, and
// retires requests that finish, fail or are cancelled. Requests wait in
// arrival order while every slot is busy.
type Engine struct {
	r     *Runner
	detok Detokenizer
	eos   []int32
	log   *slog.Logger

	active, queued atomic.Int32 // for Stats

	mu      sync.Mutex
	queue   []*job
	unloads []unload // adapters to unload between steps
	closed  bool
	wake    chan struct{}
	stopped chan struct{}
}

// New starts an Engine on r. Close it to stop its scheduler.
func New(r *Runner, opts Options) *Engine {
	e := &Engine{r: r, detok: opts.Detokenizer, eos: opts.EOS, log: opts.Logger,
		wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	if e.eos == nil {
		for _, id := range r.Config().EOSTokenIDs {
			e.eos = append(e.eos, int32(id))
		}
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	go e.loop()
	return e
}

// Stats is a snapshot of the scheduler's load.
type Stats struct {
	Slots  int // decode slots
	Active int // requests in slots
	Queued int // requests waiting for a slot
}

// Stats reports the scheduler's load (as of its last step).
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	waiting := len(e.queue)
	e.mu.Unlock()
	return Stats{Slots: e.r.Slots(), Active: int(e.active.Load()), Queued: int(e.queued.Load()) + waiting}
}

// Runner is the engine's model runner.
func (e *Engine) Runner() *Runner { return e.r }

// Close fails queued and running requests with ErrClosed and stops the scheduler.
func (e *Engine) Close() error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		e.signal()
	}
	e.mu.Unlock()
	<-e.stopped
	return nil
}

func (e *Engine) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// job is a request in the queue or in a slot.
type job struct {
	ctx     context.Context
	req     Request
	stream  *Stream
	sampler *sampler
	text    *textStream
	stop    stopMatcher
	maxNew  int
	adapter int   // the LoRA adapter's index (0: the base model)
	pos     int32 // where the next fed token goes
	next    int32 // the token to feed at the next decode step
}

// Generate checks req and queues it; tokens arrive on the returned Stream.
// A request it refuses gives a *RequestError (a prompt too long for the
// context also matches *ContextError).
// Cancelling ctx ends the request (its Wait returns ctx's error) and frees its slot.
func (e *Engine) Generate(ctx context.Context, req Request) (*Stream, error) {
	if err := e.check(req); err != nil {
		return nil, err
	}
	maxNew := e.r.MaxContext() - len(req.Prompt)
	if req.MaxTokens > 0 {
		maxNew = min(maxNew, req.MaxTokens)
	}
	seed := rand.Uint64()
	if req.Sampling.Seed != nil {
		seed = *req.Sampling.Seed
	}
	j := &job{
		ctx: ctx, req: req, maxNew: maxNew, adapter: req.Adapter, pos: int32(len(req.Prompt)),
		stream:  &Stream{tokens: make(chan Token, maxNew+1), done: make(chan struct{})},
		sampler: newSampler(req.Sampling, seed),
		stop:    stopMatcher{stops: slices.DeleteFunc(slices.Clone(req.Stop), func(s string) bool { return s == "" })},
	}
	j.stream.result.Usage.PromptTokens = len(req.Prompt)
	if e.detok != nil {
		j.text = newTextStream(e.detok, req.Prompt)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	e.queue = append(e.queue, j)
	e.signal()
	return j.stream, nil
}

// RequestError is a request Generate refuses: the caller's mistake, not the engine's.
type RequestError struct{ Err error }

func (e *RequestError) Error() string { return e.Err.Error() }
func (e *RequestError) Unwrap() error { return e.Err }

func (e *Engine) check(req Request) error {
	if err := e.checkRequest(req); err != nil {
		return &RequestError{Err: err}
	}
	return nil
}

func (e *Engine) checkRequest(req Request) error {
	if len(req.Prompt) == 0 {
		return errors.New("generate: empty prompt (a prompt needs at least one token)")
	}
	if len(req.Prompt) >= e.r.MaxContext() {
		return fmt.Errorf("generate: %w", e.r.tooLong(len(req.Prompt)))
	}
	if err := e.r.checkIDs(req.Prompt); err != nil {
		return fmt.Errorf("generate: prompt %w", err)
	}
	if req.MaxTokens < 0 {
		return fmt.Errorf("generate: max tokens %d must be ≥ 0 (0 generates until a stop or the end of the context)", req.MaxTokens)
	}
	if err := req.Sampling.Validate(); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if len(req.Stop) > 0 && e.detok == nil {
		return errors.New("generate: stop strings need a detokenizer (load the model's tokenizer, or use stop token ids)")
	}
	if err := e.r.checkAdapter(req.Adapter); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	return nil
}

// LoadAdapter loads a LoRA adapter as Runner.LoadAdapter does; requests
// select it by the returned index. Running requests are not disturbed.
func (e *Engine) LoadAdapter(name string, a *lora.Adapter) (int, error) {
	return e.r.LoadAdapter(name, a)
}

// unload is an UnloadAdapter call waiting for the scheduler.
type unload struct {
	name string
	done chan error
}

// UnloadAdapter unloads the LoRA adapter loaded as name between two decode
// steps, first failing the requests queued or running on it.
func (e *Engine) UnloadAdapter(name string) error {
	if _, ok := e.r.Adapter(name); !ok {
		return fmt.Errorf("unload adapter %q: no adapter of that name is loaded", name)
	}
	u := unload{name: name, done: make(chan error, 1)}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return e.r.UnloadAdapter(name)
	}
	e.unloads = append(e.unloads, u)
	e.signal()
	e.mu.Unlock()
	return <-u.done
}

// unloadAdapters runs the waiting UnloadAdapter calls, failing their requests.
func (e *Engine) unloadAdapters(unloads []unload, slots []*job, pending *[]*job) {
	for _, u := range unloads {
		i, ok := e.r.Adapter(u.name)
		if !ok {
			u.done <- fmt.Errorf("unload adapter %q: no adapter of that name is loaded", u.name)
			continue
		}
		err := fmt.Errorf("adapter %q was unloaded", u.name)
		*pending = slices.DeleteFunc(*pending, func(j *job) bool {
			if j.adapter == i {
				e.finish(j, "", err)
				return true
			}
			return false
		})
		for s, j := range slots {
			if j != nil && j.adapter == i {
				e.finish(j, "", err)
				slots[s] = nil
			}
		}
		u.done <- e.r.UnloadAdapter(u.name)
	}
}

// loop is the scheduler.
func (e *Engine) loop() {
	defer close(e.stopped)
	slots := make([]*job, e.r.Slots())
	var pending []*job
	tokens, positions, active := make([]int32, len(slots)), make([]int32, len(slots)), make([]bool, len(slots))
	adapters := make([]int32, len(slots))
	for {
		busy := slices.ContainsFunc(slots, func(j *job) bool { return j != nil })
		if !busy && len(pending) == 0 {
			e.publish(slots, pending)
			<-e.wake
		}
		e.mu.Lock()
		closed := e.closed
		pending = append(pending, e.queue...)
		e.queue = nil
		unloads := e.unloads
		e.unloads = nil
		e.mu.Unlock()
		e.unloadAdapters(unloads, slots, &pending)
		if closed {
			for _, j := range append(pending, slots...) {
				if j != nil {
					e.finish(j, "", ErrClosed)
				}
			}
			return
		}
		// Retire cancelled requests, queued or running.
		pending = slices.DeleteFunc(pending, func(j *job) bool { return e.cancelled(j) })
		for s, j := range slots {
			if j != nil && e.cancelled(j) {
				slots[s] = nil
			}
		}
		// Admit queued requests into free slots.
		for s := range slots {
			if slots[s] != nil || len(pending) == 0 {
				continue
			}
			j := pending[0]
			pending = pending[1:]
			logits, err := e.r.Prefill(s, j.req.Prompt, j.adapter)
			if err != nil {
				e.log.Error("engine prefill failed; failing the requests in flight", "prompt_tokens", len(j.req.Prompt), "err", err)
				e.finish(j, "", err)
				e.failAll(slots, fmt.Errorf("another request's prefill failed and cleared the KV cache: %w", err))
				continue
			}
			if e.accept(j, logits) {
				slots[s] = j
			}
		}
		// One decode step for every active slot.
		e.publish(slots, pending)
		n := 0
		for s, j := range slots {
			active[s] = j != nil
			tokens[s], positions[s], adapters[s] = 0, 0, 0
			if j != nil {
				tokens[s], positions[s], adapters[s] = j.next, j.pos, int32(j.adapter)
				n++
			}
		}
		if n == 0 {
			continue
		}
		rows, err := e.r.Decode(tokens, positions, active, adapters)
		if err != nil {
			e.log.Error("engine decode step failed; failing the requests in flight", "slots", n, "err", err)
			e.failAll(slots, err)
			continue
		}
		for s, j := range slots {
			if j != nil {
				j.pos++
				if !e.accept(j, rows[s]) {
					slots[s] = nil
				}
			}
		}
		e.publish(slots, pending)
	}
}

// publish records the load for Stats.
func (e *Engine) publish(slots, pending []*job) {
	n := 0
	for _, j := range slots {
		if j != nil {
			n++
		}
	}
	e.active.Store(int32(n))
	e.queued.Store(int32(len(pending)))
}

func (e *Engine) failAll(slots []*job, err error) {
	for s, j := range slots {
		if j != nil {
			e.finish(j, "", err)
			slots[s] = nil
		}
	}
}

func (e *Engine) cancelled(j *job) bool {
	if err := j.ctx.Err(); err != nil {
		e.finish(j, "", fmt.Errorf("generation cancelled after %d tokens: %w", len(j.stream.result.Tokens), err))
		return true
	}
	return false
}

// accept samples the next token of j from its logits row, streams it and
// reports whether j goes on.
func (e *Engine) accept(j *job, logits []float32) bool {
	id, lp, top := j.sampler.sample(logits)
	tok := Token{ID: id, Logprob: lp, TopLogprobs: top}
	res := &j.stream.result
	res.Usage.CompletionTokens++
	var finish FinishReason
	byString := false
	if j.isStop(id, e.eos) {
		finish, tok.End = FinishStop, true
	} else if j.text != nil {
		piece, err := j.text.add(id)
		if err != nil {
			e.finish(j, "", fmt.Errorf("decode generated token %d to text: %w", id, err))
			return false
		}
		if tok.Text, byString = j.stop.push(piece); byString {
			finish = FinishStop
		}
	}
	if finish == "" && res.Usage.CompletionTokens >= j.maxNew {
		finish = FinishLength
	}
	// At the end, release text held back (an incomplete character, a
	// possible stop string) unless a stop string ended generation.
	if finish != "" && j.text != nil && !byString {
		tail, err := j.text.flush()
		if err != nil {
			e.finish(j, "", fmt.Errorf("decode generated text: %w", err))
			return false
		}
		out, stopped := j.stop.push(tail)
		tok.Text += out
		if stopped {
			finish = FinishStop
		} else {
			tok.Text += j.stop.flush()
		}
	}
	res.Tokens = append(res.Tokens, tok)
	res.Text += tok.Text
	j.stream.tokens <- tok // buffered for every token the request can make
	if finish != "" {
		e.finish(j, finish, nil)
		return false
	}
	j.next = id
	return true
}

func (j *job) isStop(id int32, eos []int32) bool {
	return (!j.req.IgnoreEOS && slices.Contains(eos, id)) || slices.Contains(j.req.StopTokens, id)
}

// finish ends j's stream, with err or a finish reason.
func (e *Engine) finish(j *job, reason FinishReason, err error) {
	j.stream.result.FinishReason = reason
	j.stream.err = err
	close(j.stream.tokens)
	close(j.stream.done)
}
