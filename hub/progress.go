package hub

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress aggregates the bytes of every file of one pull: one bar with rate
// and ETA on a terminal, otherwise a line per finished file and per 10%.
type progress struct {
	mu         sync.Mutex
	repo       string
	w          io.Writer
	bar        *progressbar.ProgressBar
	cb         func(done, total int64)
	done       int64
	total      int64
	files      int
	filesDone  int
	lastDecile int64
	start      time.Time
}

func (c *Client) newProgress(repo string, total int64, files int) *progress {
	p := &progress{repo: repo, w: c.opts.Progress, cb: c.opts.OnProgress, total: total, files: files, start: time.Now()}
	if p.w == nil {
		return p
	}
	if isTerminal(p.w) {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("pull "+repo),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
		)
	} else {
		fmt.Fprintf(p.w, "pull %s: downloading %d file(s), %s\n", repo, files, humanize.Bytes(uint64(max(total, 0))))
	}
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (p *progress) add(n int64) {
	if p == nil || n == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if p.cb != nil {
		p.cb(p.done, p.total)
	}
	if p.bar != nil {
		p.bar.Set64(min(max(p.done, 0), p.total))
		return
	}
	if p.w != nil && p.total > 0 {
		if d := p.done * 10 / p.total; d > p.lastDecile && d < 10 {
			p.lastDecile = d
			fmt.Fprintf(p.w, "pull %s: %d%% (%s of %s)\n", p.repo, d*10, humanize.Bytes(uint64(max(p.done, 0))), humanize.Bytes(uint64(p.total)))
		}
	}
}

func (p *progress) fileDone(name string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.filesDone++
	if p.w != nil && p.bar == nil {
		fmt.Fprintf(p.w, "pull %s: %s done (%d/%d files)\n", p.repo, name, p.filesDone, p.files)
	}
}

func (p *progress) finish(err error) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		if err == nil {
			p.bar.Finish()
		} else {
			p.bar.Exit()
			fmt.Fprintln(p.w)
		}
		return
	}
	if err == nil {
		fmt.Fprintf(p.w, "pull %s: %d file(s), %s in %s\n", p.repo, p.files, humanize.Bytes(uint64(max(p.done, 0))), time.Since(p.start).Round(time.Millisecond))
	}
}
