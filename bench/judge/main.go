// Command judge measures whether a dataset build's judge stage is limited
// by the upstream's concurrency and latency or by Foundry.
//
// It serves a local OpenAI-compatible judge that answers every call after
// a fixed latency (a verdict of 8, usage priced as gpt-4o-mini), writes
// -rows synthetic conversations to a JSONL file, and for each -concurrency
// builds a dataset from it with judge: {model: gpt-4o-mini, min_score: 7,
// concurrency: C} through dataset.Build (as foundry dataset build does; a
// fresh judge cache each time, so every row is a call). A stage that only
// waits on the upstream runs at C / latency rows per second; the report
// gives the measured rate against that bound, the most calls the judge
// server saw in flight at once, the TCP connections it accepted, and the CPU time per row (Foundry's and the
// local judge server's: they share the process).
//
// Run: go run ./bench/judge [-rows 2000] [-latency 100ms] [-concurrency 8,32,128]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/dataset/judgestage"
)

func main() {
	var (
		rows    = flag.Int("rows", 2000, "conversations to judge per build")
		latency = flag.Duration("latency", 100*time.Millisecond, "the judge server's latency per call")
		conc    = flag.String("concurrency", "8,32,128", "judge concurrency settings to measure, comma-separated")
	)
	flag.Parse()
	if err := run(context.Background(), *rows, *latency, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// judgeServer answers chat completions with a fixed verdict after latency,
// counting the calls in flight.
type judgeServer struct {
	latency       time.Duration
	inFlight, max atomic.Int64
	calls, conns  atomic.Int64
}

func (s *judgeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/chat/completions" || r.Method != http.MethodPost {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.max.Load(); n > m && !s.max.CompareAndSwap(m, n); m = s.max.Load() {
	}
	s.calls.Add(1)
	io.Copy(io.Discard, r.Body)
	time.Sleep(s.latency) // the upstream's latency: what the stage should be waiting on
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"id":"chatcmpl-bench","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini",`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":"{\"score\": 8, \"reason\": \"correct and brief\"}"},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":180,"completion_tokens":12,"total_tokens":192}}`)
}

func run(ctx context.Context, rows int, latency time.Duration, concs string) error {
	srv := &judgeServer{latency: latency}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			srv.conns.Add(1)
		}
	}}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String() + "/v1"

	dir, err := os.MkdirTemp("", "foundry-bench-judge-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "rows.jsonl")
	if err := writeRows(src, rows); err != nil {
		return err
	}

	fmt.Printf("host: %d CPUs, judge latency %v, %d rows per build\n\n", runtime.NumCPU(), latency, rows)
	fmt.Printf("%-12s %10s %12s %10s %12s %12s %12s %12s\n", "concurrency", "rows/s", "bound C/lat", "of bound", "max inflight", "CPU µs/row", "judge calls", "connections")
	for _, f := range strings.Split(concs, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			return fmt.Errorf("-concurrency: %q is not a positive number", f)
		}
		srv.max.Store(0)
		calls0, conns0 := srv.calls.Load(), srv.conns.Load()
		data := filepath.Join(dir, fmt.Sprintf("data-%d", c)) // a fresh judge cache: every row is a call
		spec := &dataset.Spec{Name: "judgebench", Sources: []dataset.SourceSpec{{File: src}},
			Judge: map[string]any{"model": "gpt-4o-mini", "min_score": 7, "concurrency": c}}
		plugins := judgestage.Plugins(judgestage.Options{BaseURL: base, DataDir: data, Logger: slog.New(slog.DiscardHandler)})
		cpu0, start := cpuSeconds(), time.Now()
		b, err := dataset.Build(ctx, spec, dataset.BuildOptions{DataDir: data, Plugins: plugins})
		if err != nil {
			return fmt.Errorf("build at concurrency %d: %w", c, err)
		}
		wall, cpu := time.Since(start).Seconds(), cpuSeconds()-cpu0
		var kept int64
		for _, n := range b.Manifest.Rows {
			kept += n
		}
		if kept != int64(rows) {
			return fmt.Errorf("concurrency %d: kept %d rows of %d (every verdict is 8, min_score 7)", c, kept, rows)
		}
		bound := float64(c) / latency.Seconds()
		fmt.Printf("%-12d %10.0f %12.0f %9.0f%% %12d %12.0f %12d %12d\n", c, float64(rows)/wall, bound,
			100*float64(rows)/wall/bound, srv.max.Load(), cpu/float64(rows)*1e6, srv.calls.Load()-calls0, srv.conns.Load()-conns0)
	}
	return nil
}

// writeRows writes n distinct two-message conversations as OpenAI JSONL.
func writeRows(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	for i := range n {
		row := struct {
			Messages []msg `json:"messages"`
		}{[]msg{
			{"user", fmt.Sprintf("Ticket %d: my invoice for order %d shows the wrong VAT rate; can you fix it and resend it?", i, 90000+i)},
			{"assistant", fmt.Sprintf("I have corrected the VAT rate on the invoice for order %d and sent a new copy to the address on the account (ticket %d).", 90000+i, i)},
		}}
		if err := enc.Encode(row); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
