// Command dataset measures the local curation stages — select, validate,
// dedupe, scrub, split — over synthetic captured calls in a SQLite store.
//
// For each size (default 100k and 1M records) it generates a store with
// batched InsertRecords (5% exact duplicates, 5% near duplicates, 10% rows
// with PII, 2% refusals, 1% upstream errors, 10% with feedback), then in
// fresh child processes:
//
//   - runs the whole build (dataset.Build, as foundry dataset build: the
//     streaming pipeline and the version written and hashed) -rounds times,
//     reporting records/s (records read from the store per wall-clock
//     second), the child's peak RSS (VmHWM) and the peaks of its RssAnon
//     (heap, stacks, anonymous mappings) and RssFile (resident pages of
//     mapped files, such as dedupe's index) sampled from /proc/PID/status
//     every 20ms, and the host's load average when it started;
//   - runs growing prefixes of the pipeline (select; +validate; +dedupe;
//     +scrub; +split; then the full build for "write") and reports each
//     stage's own cost as the CPU time it adds per record (user+sys).
//
// With -baseline, another build of this command (say, an older commit's:
// git worktree add /tmp/ds-old COMMIT && cd /tmp/ds-old && go build -o
// /tmp/bench-old ./bench/dataset) runs the same children under this
// harness, alternating with this build round by round, so that both see the
// same background load; the ratio of their median records/s is printed.
//
// CPU time per stage is the more robust number on a shared machine;
// wall-clock records/s moves with whatever else runs. The children run at
// GOGC 400, as foundry dataset build does (-gogc changes it). The selection
// is routes [support-bot, extract] with tag prod, so 95% of the records are read.
//
// Run: go run ./bench/dataset [-sizes 100000,1000000] [-rounds 3] [-baseline /tmp/bench-old]
// [-dir /tmp/foundry-bench-dataset] [-out bench/out/dataset.json]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
)

func main() {
	var (
		sizes = flag.String("sizes", "100000,1000000", "record counts to measure, comma-separated")
		dir   = flag.String("dir", filepath.Join(os.TempDir(), "foundry-bench-dataset"), "where the stores are generated (kept for reruns)")
		out   = flag.String("out", "", "also write the results as JSON here")
		mode  = flag.String("mode", "", "internal: gen, full or prefix (child processes)")
		n     = flag.Int("n", 0, "internal: record count")
		db    = flag.String("db", "", "internal: store path")
		depth = flag.Int("stages", 0, "internal: how many stages after select")
		prof  = flag.String("cpuprofile", "", "with -mode full: write a CPU profile here")
		gogc  = flag.Int("gogc", 400, "GC percent of the measuring processes (foundry dataset build uses 400)")
		base  = flag.String("baseline", "", "also measure this other build of bench/dataset (e.g. an older commit's), alternating with this one")
		round = flag.Int("rounds", 1, "full builds per binary and size (the median is reported)")
	)
	flag.Parse()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var err error
	switch *mode {
	case "gen":
		err = generate(ctx, *db, *n)
	case "full", "prefix":
		if *prof != "" {
			f, perr := os.Create(*prof)
			if perr != nil {
				err = perr
				break
			}
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		debug.SetGCPercent(*gogc)
		err = measure(ctx, *db, *mode, *depth)
	default:
		err = orchestrate(ctx, log, *sizes, *dir, *out, *gogc, *base, max(*round, 1))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// result is what a measuring child prints as JSON, and what the parent
// adds from sampling the child's /proc/PID/status.
type result struct {
	Mode       string           `json:"mode"`
	Stages     int              `json:"stages"`
	Records    int64            `json:"records"`
	Out        int64            `json:"out"`
	WallS      float64          `json:"wall_s"`
	CPUS       float64          `json:"cpu_s"`
	PeakRSSMiB float64          `json:"peak_rss_mib"` // the child's VmHWM
	Funnel     dataset.Funnel   `json:"funnel,omitempty"`
	Counters   map[string]int64 `json:"-"`

	// Sampled by the parent every 20ms (so a peak shorter than that can be missed).
	PeakAnonMiB float64 `json:"peak_rss_anon_mib"` // RssAnon: heap, stacks, anonymous mappings
	PeakFileMiB float64 `json:"peak_rss_file_mib"` // RssFile: mapped files (binary, dedupe index) resident
	Load1       float64 `json:"load1"`             // the host's 1-minute load average when the run started
}

var stageNames = []string{"select", "validate", "dedupe", "scrub", "split", "write"}

// run is one binary's measurements of one size.
type run struct {
	Binary       string             `json:"binary"`
	Full         []result           `json:"full"` // one per round
	StageRecPerS map[string]float64 `json:"stage_records_per_cpu_s"`
	StageCPUus   map[string]float64 `json:"stage_cpu_us_per_record"`
}

type sizeReport struct {
	Records   int     `json:"records"`
	GenerateS float64 `json:"generate_s,omitempty"`
	Runs      []*run  `json:"runs"` // this binary's, then the baseline's
}

func orchestrate(ctx context.Context, log *slog.Logger, sizes, dir, out string, gogc int, baseline string, rounds int) error {
	gc := strconv.Itoa(gogc)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bins := []string{self}
	if baseline != "" {
		bins = append(bins, baseline)
	}
	var reports []sizeReport
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-sizes: %w", err)
		}
		rep := sizeReport{Records: n}
		for _, b := range bins {
			rep.Runs = append(rep.Runs, &run{Binary: b, StageRecPerS: map[string]float64{}, StageCPUus: map[string]float64{}})
		}
		path := filepath.Join(dir, fmt.Sprintf("records-%d.db", n))
		if _, err := os.Stat(path); err != nil {
			log.Info("generating store", "records", n, "path", path)
			start := time.Now()
			if err := child(ctx, self, nil, "-mode", "gen", "-n", strconv.Itoa(n), "-db", path); err != nil {
				os.Remove(path)
				return err
			}
			rep.GenerateS = time.Since(start).Seconds()
			log.Info("generated", "records", n, "seconds", rep.GenerateS, "records/s", float64(n)/rep.GenerateS)
		}
		// Full builds, alternating the binaries (and which goes first) so
		// that both see the same background load.
		for round := range rounds {
			for k := range rep.Runs {
				r := rep.Runs[(k+round)%len(rep.Runs)]
				var res result
				if err := child(ctx, r.Binary, &res, "-mode", "full", "-db", path, "-stages", "4", "-gogc", gc); err != nil {
					return err
				}
				r.Full = append(r.Full, res)
				log.Info("full build", "binary", r.Binary, "records", n, "records/s", float64(res.Records)/res.WallS,
					"peak_rss_mib", res.PeakRSSMiB, "peak_rss_anon_mib", res.PeakAnonMiB, "load1", res.Load1)
			}
		}
		// Each stage's CPU time per record, from growing prefixes of the pipeline.
		for _, r := range rep.Runs {
			prev := 0.0
			for k := 0; k <= 4; k++ {
				var res result
				if err := child(ctx, r.Binary, &res, "-mode", "prefix", "-db", path, "-stages", strconv.Itoa(k), "-gogc", gc); err != nil {
					return err
				}
				per := (res.CPUS - prev) / float64(res.Records)
				prev = res.CPUS
				r.StageCPUus[stageNames[k]] = per * 1e6
				r.StageRecPerS[stageNames[k]] = 1 / per
			}
			full := median(r.Full, func(x result) float64 { return x.CPUS })
			per := (full - prev) / float64(r.Full[0].Records) // writing the version: the full build less the pipeline
			r.StageCPUus["write"], r.StageRecPerS["write"] = per*1e6, 1/per
		}
		reports = append(reports, rep)
	}
	fmt.Printf("\nhost: %d CPUs (GOMAXPROCS %d), %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	for i, b := range bins {
		fmt.Printf("binary %d: %s\n", i, b)
	}
	fmt.Printf("\nfull builds (records/s per round; peaks over the rounds; load: 1-minute load average at each start):\n")
	fmt.Printf("%-10s %-3s %-26s %10s %10s %10s %10s %10s  %s\n", "records", "bin", "records/s", "median", "peak RSS", "RssAnon", "RssFile", "kept rows", "load")
	for _, rep := range reports {
		for i, r := range rep.Runs {
			var rates, loads []string
			var rss, anon, file float64
			for _, f := range r.Full {
				rates = append(rates, fmt.Sprintf("%.0f", float64(f.Records)/f.WallS))
				loads = append(loads, fmt.Sprintf("%.1f", f.Load1))
				rss, anon, file = max(rss, f.PeakRSSMiB), max(anon, f.PeakAnonMiB), max(file, f.PeakFileMiB)
			}
			fmt.Printf("%-10d %-3d %-26s %10.0f %6.0f MiB %6.0f MiB %6.0f MiB %10d  %s\n", rep.Records, i, strings.Join(rates, " "),
				rate(r), rss, anon, file, r.Full[0].Out, strings.Join(loads, " "))
		}
		if len(rep.Runs) == 2 {
			fmt.Printf("%-10d ratio of medians (bin 0 / bin 1): %.2f\n", rep.Records, rate(rep.Runs[0])/rate(rep.Runs[1]))
		}
	}
	fmt.Printf("\nper stage (CPU time each stage adds per record, one run each):\n%-10s %-3s", "records", "bin")
	for _, s := range stageNames {
		fmt.Printf(" %9s", s)
	}
	fmt.Printf(" %9s\n", "total")
	for _, rep := range reports {
		for i, r := range rep.Runs {
			fmt.Printf("%-10d %-3d", rep.Records, i)
			total := 0.0
			for _, s := range stageNames {
				fmt.Printf(" %7.1fµs", r.StageCPUus[s])
				total += r.StageCPUus[s]
			}
			fmt.Printf(" %7.1fµs\n", total)
		}
	}
	fmt.Println("\ndedupe index (files in the build's temp dir):")
	for _, rep := range reports {
		for i, r := range rep.Runs {
			if d := r.Full[0].Funnel.Stage("dedupe"); d != nil && d.In > 0 {
				fmt.Printf("%-10d %-3d %6.1f MiB, %5.0f bytes per row in\n", rep.Records, i,
					float64(d.Counters["index bytes"])/(1<<20), float64(d.Counters["index bytes"])/float64(d.In))
			}
		}
	}
	if len(reports) > 0 {
		last := reports[len(reports)-1]
		fmt.Println("\nfunnel of the last size:")
		for _, st := range last.Runs[0].Full[0].Funnel {
			fmt.Printf("  %-9s in %9d out %9d", st.Stage, st.In, st.Out)
			for _, d := range st.Dropped {
				fmt.Printf("  %s: %d", d.Reason, d.Count)
			}
			if len(st.Counters) > 0 {
				fmt.Printf("  %v", st.Counters)
			}
			fmt.Println()
		}
	}
	if out != "" {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(reports, "", "  ")
		return os.WriteFile(out, b, 0o644)
	}
	return nil
}

// rate is the median records/s of r's full builds.
func rate(r *run) float64 {
	return median(r.Full, func(x result) float64 { return float64(x.Records) / x.WallS })
}

func median[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// child runs bin with args and, when into is set, decodes the JSON result it
// prints, adding its memory peaks sampled from /proc and the load average.
func child(ctx context.Context, bin string, into *result, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = os.Stderr
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	load := loadAverage()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var anon, file float64
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tick.C:
			st := procStatus(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
			anon, file = max(anon, st["RssAnon"]), max(file, st["RssFile"])
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
	}
	if into == nil {
		return nil
	}
	if err := json.Unmarshal(stdout.Bytes(), into); err != nil {
		return err
	}
	into.PeakAnonMiB, into.PeakFileMiB, into.Load1 = anon/1024, file/1024, load
	return nil
}

// procStatus reads the kB fields of a /proc/PID/status file.
func procStatus(path string) map[string]float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	m := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(v, " kB") {
			m[k], _ = strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(v, " kB")), 64)
		}
	}
	return m
}

func loadAverage() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// measure runs select and the first depth stages (all with -mode full) and
// prints a result.
func measure(ctx context.Context, path, mode string, depth int) error {
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	tmp, err := os.MkdirTemp("", "foundry-bench-spool-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	spec := &dataset.Spec{Name: "bench", Sources: []dataset.SourceSpec{{Store: &dataset.Selection{Routes: []string{"support-bot", "extract"}, Tags: []string{"prod"}}}},
		Validate: dataset.ValidateSpec{MinChars: 10, MaxTokens: 2000, MustNotMatch: []string{`As an AI (language )?model`}}}
	stages, err := spec.Stages(ctx, nil, tmp)
	if err != nil {
		return err
	}
	src, err := spec.Source(st)
	if err != nil {
		return err
	}
	start := time.Now()
	cpu0 := cpuSeconds()
	var kept int64
	var funnel dataset.Funnel
	if mode == "full" {
		// What foundry dataset build does: the pipeline, then the version written and hashed.
		b, err := dataset.Build(ctx, spec, dataset.BuildOptions{Store: st, DataDir: tmp})
		if err != nil {
			return err
		}
		funnel = b.Manifest.Funnel
		for _, n := range b.Manifest.Rows {
			kept += n
		}
	} else {
		p := &dataset.Pipeline{Source: src, Stages: stages[:depth]}
		if funnel, err = p.Run(ctx, func(*dataset.Example) error { kept++; return nil }); err != nil {
			return err
		}
	}
	r := result{Mode: mode, Stages: depth, Records: funnel[0].In, Out: kept, WallS: time.Since(start).Seconds(), CPUS: cpuSeconds() - cpu0, PeakRSSMiB: peakRSS()}
	if mode == "full" {
		r.Funnel = funnel
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// peakRSS reads VmHWM from /proc/self/status.
func peakRSS() float64 {
	if v, ok := procStatus("/proc/self/status")["VmHWM"]; ok {
		return v / 1024
	}
	return -1
}

// --- synthetic traffic

type gen struct {
	rng   *rand.Rand
	vocab []string
	ring  [][2]string // recent (user, answer) pairs, for duplicates
}

func (g *gen) words(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(g.vocab[g.rng.IntN(len(g.vocab))])
	}
	return b.String()
}

var systems = []string{
	"You are the support assistant for Acme Cloud. Answer politely and concisely, cite the relevant help-center article when one exists, and never promise refunds without a ticket number.",
	"You extract structured fields from customer emails. Reply with the fields the user asks for, one per line, and say 'unknown' when a field is missing.",
	"You are a friendly travel agent. Suggest at most three options, give prices in the customer's currency and mention visa requirements when relevant.",
}

var piiSnippets = []string{
	"my email is alex.morgan%d@example.com", "call me at +44 20 7946 %04d", "card 4111 1111 1111 1111 was charged",
	"IBAN DE89 3704 0044 0532 0130 00 please", "the server 10.%d.0.7 is down", "my key sk-proj-4fG7hJ2kL9mN3pQ8rS1tU6vW0x%dA leaked",
}

func (g *gen) record(i int, t0 time.Time) (store.Record, *float64) {
	user := g.words(40 + g.rng.IntN(40))
	answer := g.words(50 + g.rng.IntN(50))
	r := g.rng.Float64()
	var errMsg string
	switch {
	case r < 0.05 && len(g.ring) > 0: // exact duplicate after normalisation: recased
		p := g.ring[g.rng.IntN(len(g.ring))]
		user, answer = strings.ToUpper(p[0]), p[1]
	case r < 0.10 && len(g.ring) > 0: // near duplicate: one word of the question changed
		p := g.ring[g.rng.IntN(len(g.ring))]
		w := strings.Fields(p[0])
		w[g.rng.IntN(len(w))] = "changed"
		user, answer = strings.Join(w, " "), p[1]
	case r < 0.20:
		user += " " + fmt.Sprintf(piiSnippets[g.rng.IntN(len(piiSnippets))], i%250)
	case r < 0.22:
		answer = "I'm sorry, but I can't help with that request."
	case r < 0.23:
		errMsg = "stream broke: unexpected EOF"
	}
	if r >= 0.10 {
		if len(g.ring) < 1000 {
			g.ring = append(g.ring, [2]string{user, answer})
		} else {
			g.ring[g.rng.IntN(len(g.ring))] = [2]string{user, answer}
		}
	}
	route := "support-bot"
	if i%3 == 1 {
		route = "extract"
	}
	req, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{
		{"role": "system", "content": systems[i%len(systems)]}, {"role": "user", "content": user}}, "temperature": 0.2})
	resp, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("chatcmpl-%d", i), "object": "chat.completion", "created": t0.Unix(), "model": "gpt-4o-mini-2024-07-18",
		"choices": []map[string]any{{"index": 0, "message": map[string]any{"role": "assistant", "content": answer}, "finish_reason": "stop"}},
		"usage":   map[string]int{"prompt_tokens": 120, "completion_tokens": 90, "total_tokens": 210}})
	tags := []string{"prod"}
	if i%20 == 0 {
		tags = []string{"staging"}
	}
	rec := store.Record{ID: fmt.Sprintf("req_%09d", i), CreatedAt: t0.Add(time.Duration(i) * time.Second), Endpoint: "chat.completions",
		Route: route, Provider: "openai", Model: "gpt-4o-mini", Status: 200, Error: errMsg, Request: req, Response: resp,
		Latency: 800 * time.Millisecond, TTFT: 200 * time.Millisecond, PromptTokens: 120, CompletionTokens: 90, CostUSD: 0.0001,
		Tags: tags, Metadata: map[string]string{"team": []string{"billing", "tech", "sales"}[i%3]}, Attempts: 1}
	var score *float64
	if i%10 == 0 {
		s := float64(g.rng.IntN(5) + 1)
		score = &s
	}
	return rec, score
}

func generate(ctx context.Context, path string, n int) error {
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	g := &gen{rng: rand.New(rand.NewPCG(42, uint64(n)))}
	for i := range 5000 {
		g.vocab = append(g.vocab, fmt.Sprintf("%s%d", []string{"acct", "ship", "bill", "log", "net", "disk", "user", "plan", "fee", "tax"}[i%10], i))
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 2000
	recs := make([]store.Record, 0, batch)
	var fb []store.Feedback
	for i := 0; i < n; i++ {
		r, s := g.record(i, t0)
		recs = append(recs, r)
		if s != nil {
			fb = append(fb, store.Feedback{RequestID: r.ID, Score: s, CreatedAt: r.CreatedAt.Add(time.Minute)})
		}
		if len(recs) == batch || i == n-1 {
			if err := st.InsertRecords(ctx, recs); err != nil {
				return err
			}
			recs = recs[:0]
		}
	}
	for _, f := range fb {
		if err := st.AddFeedback(ctx, f); err != nil {
			return err
		}
	}
	return nil
}
