// Package eval runs candidate models over a test split and measures them:
// task metrics (exact match, JSON validity and per-field accuracy,
// ROUGE-L), a judge's pairwise win rate against a reference candidate with
// position swap, latency and cost, each mean with a seeded bootstrap 95%
// confidence interval.
//
// Candidates are model names behind an OpenAI-compatible endpoint — in
// Foundry the gateway, so eval calls are captured and priced like any
// other traffic, tagged "eval" with the eval's id in their metadata. An
// eval lives in its own directory (results.jsonl, judgements.jsonl,
// summary.json, report.md, report.html) and is resumable: answers and
// verdicts already there are not asked for again.
package eval

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/judge"
	"github.com/foundryhq/foundry/pricing"
)

// DefaultDir is where evals are stored unless Options.Dir says otherwise.
const DefaultDir = "foundry-data/evals"

// Files of an eval's directory.
const (
	ResultsFile    = "results.jsonl"    // one Result per line, appended as answers arrive
	JudgementsFile = "judgements.jsonl" // one Judgement per line
	SummaryFile    = "summary.json"
	MarkdownFile   = "report.md"
	HTMLFile       = "report.html"
)

// Example is one test case: the prompt is every message of a fine-tuning
// line before its last assistant message, the reference that message.
type Example struct {
	ID        string // content hash of the line, 16 hex digits: results are cached by it
	Prompt    []api.Message
	Tools     []api.Tool
	Reference api.Message
}

// NewExample splits a fine-tuning line into prompt and reference.
func NewExample(ft api.FineTuneExample) (Example, error) {
	last := -1
	for i, m := range ft.Messages {
		if m.Role == "assistant" {
			last = i
		}
	}
	if last < 0 {
		return Example{}, errors.New("no assistant message to use as the reference answer")
	}
	if last == 0 {
		return Example{}, errors.New("the reference (last assistant message) has no prompt before it")
	}
	b, err := json.Marshal(ft)
	if err != nil {
		return Example{}, err
	}
	sum := sha256.Sum256(b)
	return Example{ID: hex.EncodeToString(sum[:8]), Prompt: ft.Messages[:last], Tools: ft.Tools, Reference: ft.Messages[last]}, nil
}

// ReadExamples reads a JSONL file of OpenAI fine-tuning lines (a dataset's
// test.jsonl). Blank lines are skipped; a repeated line is kept once,
// since results are cached by content.
func ReadExamples(path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read test examples: %w", err)
	}
	defer f.Close()
	return DecodeExamples(f, path)
}

// DecodeExamples reads fine-tuning JSONL from r; name labels errors.
func DecodeExamples(r io.Reader, name string) ([]Example, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var out []Example
	seen := map[string]bool{}
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var ft api.FineTuneExample
		if err := json.Unmarshal(b, &ft); err != nil {
			return nil, fmt.Errorf("%s:%d: not an OpenAI fine-tuning line ({\"messages\": [...]}): %w", name, line, err)
		}
		ex, err := NewExample(ft)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if !seen[ex.ID] {
			seen[ex.ID] = true
			out = append(out, ex)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no examples", name)
	}
	return out, nil
}

// Text is a message's answer text: its content, or its tool calls as a JSON
// array of {"name", "arguments"} when it has no content.
func Text(m api.Message) string {
	if s := m.Content.String(); s != "" || len(m.ToolCalls) == 0 {
		return s
	}
	type call struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	calls := make([]call, 0, len(m.ToolCalls))
	for _, tc := range m.ToolCalls {
		args := json.RawMessage(tc.Function.Arguments)
		if !json.Valid(args) {
			args, _ = json.Marshal(tc.Function.Arguments)
		}
		calls = append(calls, call{tc.Function.Name, args})
	}
	b, _ := json.Marshal(calls)
	return string(b)
}

// Options configure Run. Chatter and Candidates are required.
type Options struct {
	// ID names the eval and its directory. "" derives it from the examples,
	// candidates, reference and judge, so that the same command resumes.
	ID  string
	Dir string // parent of evals' directories; "" is DefaultDir
	// Data describes where the examples came from (a path or dataset ref), for reports.
	Data string

	Chatter    judge.Chatter // where candidate calls go: NewHTTP(gatewayURL, key, "eval")
	Candidates []string      // model names, as the endpoint knows them
	// Reference is the candidate the others are judged against (e.g. the
	// teacher); it must be one of Candidates. Needed when Judge is set.
	Reference string
	Judge     *judge.Judge // nil: no win rates
	Rubric    string       // what a good answer is, for the judge; "" is the judge's generic rubric

	Concurrency int      // candidate calls in flight (default 8); the judge has its own limit
	MaxTokens   int      // max_tokens of candidate answers; 0 sends none
	Temperature *float64 // sent to candidates; nil sends none (the model's default)
	Seed        int64    // sent to candidates and seeds the bootstrap
	Resamples   int      // bootstrap resamples (default 1000)
	Samples     int      // answers shown side by side in the reports (default 8)

	Prices   *pricing.Table        // prices answers from their usage; nil is pricing.New(nil)
	Logger   *slog.Logger          // nil: slog.Default()
	Progress func(done, total int) // called after every answer and verdict; may be nil
}

// Result is one candidate's answer to one example, a line of results.jsonl.
type Result struct {
	Candidate        string    `json:"candidate"`
	Example          string    `json:"example"`
	Answer           string    `json:"answer"`
	Model            string    `json:"model,omitempty"` // the model the endpoint says answered
	Error            string    `json:"error,omitempty"`
	LatencyMS        float64   `json:"latency_ms"`
	PromptTokens     int       `json:"prompt_tokens"`
	CompletionTokens int       `json:"completion_tokens"`
	CostUSD          float64   `json:"cost_usd"`
	Priced           bool      `json:"priced"` // false: no price for the model (CostUSD is 0)
	Scores           Scores    `json:"scores"`
	At               time.Time `json:"at"`
}

// Judgement is a judge's pairwise preference between a candidate's answer
// and the reference candidate's, a line of judgements.jsonl.
type Judgement struct {
	Candidate  string `json:"candidate"`
	Reference  string `json:"reference"`
	Example    string `json:"example"`
	Judge      string `json:"judge"`
	Winner     string `json:"winner"` // "A": the candidate, "B": the reference, "tie"
	Consistent bool   `json:"consistent"`
	Reason     string `json:"reason,omitempty"`
	Error      string `json:"error,omitempty"` // the judge failed; asked again on a re-run
	// Pair is a hash of the two answers compared: a verdict on answers that
	// have since changed (a failed call answered on a re-run) is asked again.
	Pair    string    `json:"pair"`
	CostUSD float64   `json:"cost_usd"`
	At      time.Time `json:"at"`
}

func (j Judgement) preference() judge.Preference {
	return judge.Preference{Winner: j.Winner, Consistent: j.Consistent}
}

type key struct{ candidate, example string }

// Run evaluates every candidate on every example, resuming from what the
// eval's directory already holds, and writes the summary and the reports.
// Failed calls count as wrong answers and are asked again on a re-run. On
// cancellation the answers so far are kept and the error is returned.
func Run(ctx context.Context, examples []Example, o Options) (*Summary, error) {
	if err := o.defaults(examples); err != nil {
		return nil, err
	}
	dir := filepath.Join(o.Dir, o.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("eval %s: create its directory: %w", o.ID, err)
	}
	results, err := loadResults(filepath.Join(dir, ResultsFile))
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", o.ID, err)
	}
	judgements, err := loadJudgements(filepath.Join(dir, JudgementsFile))
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", o.ID, err)
	}
	ctx = withMetadata(ctx, map[string]string{"eval_id": o.ID})

	var answers []key
	for _, c := range o.Candidates {
		for _, ex := range examples {
			if r, ok := results[key{c, ex.ID}]; !ok || r.Error != "" {
				answers = append(answers, key{c, ex.ID})
			}
		}
	}
	byID := make(map[string]*Example, len(examples))
	for i := range examples {
		byID[examples[i].ID] = &examples[i]
	}
	total := len(answers)
	if o.Judge != nil {
		total += (len(o.Candidates) - 1) * len(examples)
	}
	prog := &progress{fn: o.Progress, total: total}
	o.Logger.InfoContext(ctx, "eval", "id", o.ID, "dir", dir, "examples", len(examples), "candidates", o.Candidates,
		"answers_cached", len(o.Candidates)*len(examples)-len(answers), "answers_to_ask", len(answers))

	rw, err := openAppend(filepath.Join(dir, ResultsFile))
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", o.ID, err)
	}
	var mu sync.Mutex
	failed, firstFailure := 0, ""
	runErr := parallel(ctx, o.Concurrency, len(answers), func(ctx context.Context, i int) error {
		k := answers[i]
		r := o.answer(ctx, byID[k.example], k.candidate)
		if ctx.Err() != nil {
			return ctx.Err() // an answer cut short by cancellation is not a result
		}
		if err := rw.write(r); err != nil {
			return fmt.Errorf("eval %s: save a result: %w", o.ID, err)
		}
		mu.Lock()
		results[k] = r
		if r.Error != "" {
			if failed++; firstFailure == "" {
				firstFailure = r.Error
			}
		}
		mu.Unlock()
		prog.add(1)
		return nil
	})
	if err := rw.close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("eval %s: save results: %w", o.ID, err)
	}

	if runErr == nil && len(answers) > 0 && failed == len(answers) {
		// Nothing answered: the endpoint is down or knows none of the
		// candidates. Still summarised, but not a result to read as one.
		runErr = fmt.Errorf("eval %s: all %d calls failed; the first: %s", o.ID, failed, firstFailure)
	}
	if runErr == nil && o.Judge != nil {
		runErr = o.judgeAll(ctx, dir, examples, results, judgements, prog)
	}

	s := summarize(o, examples, results, judgements)
	if err := WriteDir(dir, s); err != nil {
		return s, errors.Join(runErr, err)
	}
	return s, runErr
}

func (o *Options) defaults(examples []Example) error {
	if o.Chatter == nil {
		return errors.New("eval: Options.Chatter is required: use eval.NewHTTP(gatewayURL, apiKey, \"eval\")")
	}
	if len(examples) == 0 {
		return errors.New("eval: no examples to evaluate on")
	}
	if len(o.Candidates) == 0 {
		return errors.New("eval: no candidates: name at least one model, e.g. --candidates student,gpt-4o-mini")
	}
	seen := map[string]bool{}
	for _, c := range o.Candidates {
		if c == "" {
			return errors.New("eval: an empty candidate name")
		}
		if seen[c] {
			return fmt.Errorf("eval: candidate %q is listed twice", c)
		}
		seen[c] = true
	}
	if o.Reference != "" && !seen[o.Reference] {
		return fmt.Errorf("eval: the reference %q is not one of the candidates %v: add it to the candidates", o.Reference, o.Candidates)
	}
	if o.Judge != nil && o.Reference == "" {
		return errors.New("eval: a judge compares each candidate with a reference candidate: name one (e.g. the teacher)")
	}
	if o.Judge != nil && len(o.Candidates) < 2 {
		return errors.New("eval: a judge needs at least two candidates: the reference and one to compare with it")
	}
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Resamples <= 0 {
		o.Resamples = 1000
	}
	if o.Samples <= 0 {
		o.Samples = 8
	}
	if o.Prices == nil {
		o.Prices = pricing.New(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ID == "" {
		o.ID = DeriveID(examples, o.Candidates, o.Reference, o.judgeModel())
	}
	if strings.ContainsAny(o.ID, `/\`) || o.ID == "." || o.ID == ".." {
		return fmt.Errorf("eval: id %q cannot name a directory: use letters, digits, - and _", o.ID)
	}
	return nil
}

func (o *Options) judgeModel() string {
	if o.Judge == nil {
		return ""
	}
	return o.Judge.Model()
}

// DeriveID is the id an eval gets when none is given: a hash of what it
// measures, so that running the same eval again resumes it.
func DeriveID(examples []Example, candidates []string, reference, judgeModel string) string {
	h := sha256.New()
	for _, ex := range examples {
		h.Write([]byte(ex.ID))
	}
	cs := slices.Sorted(slices.Values(candidates))
	fmt.Fprintf(h, "\x00%s\x00%s\x00%s", strings.Join(cs, ","), reference, judgeModel)
	return "eval-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// answer asks one candidate for one example's answer and scores it.
func (o *Options) answer(ctx context.Context, ex *Example, candidate string) Result {
	r := Result{Candidate: candidate, Example: ex.ID}
	req := &api.ChatRequest{Model: candidate, Messages: ex.Prompt, Tools: ex.Tools, Temperature: o.Temperature}
	if o.MaxTokens > 0 {
		req.MaxTokens = api.Ptr(o.MaxTokens)
	}
	if o.Seed != 0 {
		req.Seed = api.Ptr(o.Seed)
	}
	ctx = withMetadata(ctx, map[string]string{"eval_candidate": candidate, "eval_example": ex.ID})
	start := time.Now()
	resp, err := o.Chatter.Chat(ctx, req)
	r.LatencyMS = float64(time.Since(start).Microseconds()) / 1e3
	r.At = time.Now().UTC()
	switch {
	case err != nil:
		r.Error = err.Error()
	case len(resp.Choices) == 0:
		r.Error = fmt.Sprintf("%s answered with no choices", candidate)
	default:
		r.Answer = Text(resp.Choices[0].Message)
		r.Model = resp.Model
	}
	if err == nil && resp.Usage != nil {
		u := resp.Usage
		r.PromptTokens, r.CompletionTokens = u.PromptTokens, u.CompletionTokens
		cached := 0
		if u.PromptTokensDetails != nil {
			cached = u.PromptTokensDetails.CachedTokens
		}
		r.CostUSD, r.Priced = o.Prices.Cost(resp.Model, u.PromptTokens, cached, u.CompletionTokens)
		if !r.Priced {
			r.CostUSD, r.Priced = o.Prices.Cost(candidate, u.PromptTokens, cached, u.CompletionTokens)
		}
	}
	r.Scores = Score(r.Answer, Text(ex.Reference))
	if r.Error != "" {
		o.Logger.WarnContext(ctx, "eval: candidate call failed; counted as a wrong answer, asked again on a re-run",
			"candidate", candidate, "example", ex.ID, "err", r.Error)
	}
	return r
}

// judgeAll asks the judge for every candidate's answer against the
// reference's that has no verdict yet.
func (o *Options) judgeAll(ctx context.Context, dir string, examples []Example, results map[key]Result, judgements map[key]Judgement, prog *progress) error {
	type job struct {
		ex        *Example
		candidate string
	}
	var jobs []job
	for _, c := range o.Candidates {
		if c == o.Reference {
			continue
		}
		for i := range examples {
			ex := &examples[i]
			j, ok := judgements[key{c, ex.ID}]
			if ok && j.Error == "" && j.Judge == o.Judge.Model() && j.Reference == o.Reference &&
				j.Pair == pairHash(results[key{c, ex.ID}], results[key{o.Reference, ex.ID}]) {
				prog.add(1)
				continue
			}
			jobs = append(jobs, job{ex, c})
		}
	}
	jw, err := openAppend(filepath.Join(dir, JudgementsFile))
	if err != nil {
		return fmt.Errorf("eval %s: %w", o.ID, err)
	}
	var mu sync.Mutex
	err = parallel(ctx, o.Concurrency, len(jobs), func(ctx context.Context, i int) error {
		jb := jobs[i]
		cand, ref := results[key{jb.candidate, jb.ex.ID}], results[key{o.Reference, jb.ex.ID}]
		if ref.Error != "" {
			prog.add(1) // nothing to compare with; not counted
			return nil
		}
		j := Judgement{Candidate: jb.candidate, Reference: o.Reference, Example: jb.ex.ID, Judge: o.Judge.Model(), Pair: pairHash(cand, ref)}
		if cand.Error != "" {
			// A failed call loses without asking the judge.
			j.Winner, j.Consistent, j.Reason = judge.WinnerB, true, "the candidate's call failed: "+cand.Error
		} else {
			ctx := withMetadata(ctx, map[string]string{"eval_candidate": jb.candidate, "eval_example": jb.ex.ID})
			p, err := o.Judge.Compare(ctx, jb.ex.Prompt, message(cand.Answer), message(ref.Answer), o.Rubric)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			j.CostUSD = p.Usage.CostUSD
			if p.Cached {
				j.CostUSD = 0 // paid for by an earlier run
			}
			if err != nil {
				j.Error = err.Error()
				o.Logger.WarnContext(ctx, "eval: judge failed; this comparison is left out and asked again on a re-run",
					"candidate", jb.candidate, "example", jb.ex.ID, "err", err)
			} else {
				j.Winner, j.Consistent, j.Reason = p.Winner, p.Consistent, p.Reason
			}
		}
		j.At = time.Now().UTC()
		if err := jw.write(j); err != nil {
			return fmt.Errorf("eval %s: save a judgement: %w", o.ID, err)
		}
		mu.Lock()
		judgements[key{jb.candidate, jb.ex.ID}] = j
		mu.Unlock()
		prog.add(1)
		return nil
	})
	if cerr := jw.close(); cerr != nil && err == nil {
		err = fmt.Errorf("eval %s: save judgements: %w", o.ID, cerr)
	}
	return err
}

func pairHash(cand, ref Result) string {
	h := sha256.New()
	if cand.Error != "" {
		h.Write([]byte("\x00failed"))
	} else {
		h.Write([]byte(cand.Answer))
	}
	h.Write([]byte{0})
	h.Write([]byte(ref.Answer))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func message(text string) api.Message {
	return api.Message{Role: "assistant", Content: api.TextContent(text)}
}

// parallel runs fn(0..n-1) on at most limit goroutines; the first error
// cancels the rest and is returned.
func parallel(ctx context.Context, limit, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(limit, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

type progress struct {
	mu          sync.Mutex
	fn          func(done, total int)
	done, total int
}

func (p *progress) add(n int) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.fn(p.done, p.total)
}

// lineWriter appends JSON lines to a file, one whole line per write.
type lineWriter struct {
	mu sync.Mutex
	f  *os.File
}

func openAppend(path string) (*lineWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &lineWriter{f: f}, nil
}

func (w *lineWriter) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.f.Write(append(b, '\n'))
	return err
}

func (w *lineWriter) close() error {
	return errors.Join(w.f.Sync(), w.f.Close())
}

// readLines decodes a JSONL file line by line; a missing file is empty. A
// torn last line (the process died while writing it) is skipped.
func readLines(path string, fn func(line []byte) error) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	lines := bytes.Split(b, []byte("\n"))
	for i, ln := range lines {
		ln = bytes.TrimSpace(ln)
		if len(ln) == 0 {
			continue
		}
		if err := fn(ln); err != nil {
			if i == len(lines)-1 {
				return nil // torn last line: its work is redone
			}
			return fmt.Errorf("%s:%d: %w (delete the line to redo it)", path, i+1, err)
		}
	}
	return nil
}

// loadResults reads results.jsonl; a later line for the same (candidate,
// example) replaces an earlier one.
func loadResults(path string) (map[key]Result, error) {
	out := map[key]Result{}
	err := readLines(path, func(ln []byte) error {
		var r Result
		if err := json.Unmarshal(ln, &r); err != nil {
			return err
		}
		out[key{r.Candidate, r.Example}] = r
		return nil
	})
	return out, err
}

func loadJudgements(path string) (map[key]Judgement, error) {
	out := map[key]Judgement{}
	err := readLines(path, func(ln []byte) error {
		var j Judgement
		if err := json.Unmarshal(ln, &j); err != nil {
			return err
		}
		out[key{j.Candidate, j.Example}] = j
		return nil
	})
	return out, err
}

// LoadResults returns an eval's results, ordered by candidate then example.
func LoadResults(dir string) ([]Result, error) {
	m, err := loadResults(filepath.Join(dir, ResultsFile))
	if err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Candidate != out[j].Candidate {
			return out[i].Candidate < out[j].Candidate
		}
		return out[i].Example < out[j].Example
	})
	return out, nil
}
