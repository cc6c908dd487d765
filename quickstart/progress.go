package quickstart

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress is a bar with rate and ETA on a terminal, and a plain line per
// quarter otherwise.
type progress struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	w     io.Writer
	desc  string
	total int
	done  int
	last  int
	start time.Time
}

func newProgress(w io.Writer, total int, desc string) *progress {
	return newProgressOf(w, total, desc, "calls")
}

// newProgressOf is newProgress counting unit ("calls", "steps").
func newProgressOf(w io.Writer, total int, desc, unit string) *progress {
	p := &progress{w: w, desc: desc, total: total, last: -1, start: time.Now()}
	if w == nil {
		p.w = io.Discard
	}
	if isTerminal(w) {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("  "+desc),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish())
	}
	return p
}

func (p *progress) add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if p.bar != nil {
		_ = p.bar.Add(n)
		return
	}
	if q := p.done * 4 / max(p.total, 1); q != p.last {
		p.last = q
		fmt.Fprintf(p.w, "  %s %d/%d\n", p.desc, p.done, p.total)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// table writes rows as aligned columns with a rule under the header.
func table(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len([]rune(h))
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(width) && len([]rune(c)) > width[i] {
				width[i] = len([]rune(c))
			}
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("  ")
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := width[i] - len([]rune(c))
			if i == 0 {
				b.WriteString(c + strings.Repeat(" ", pad))
			} else {
				b.WriteString(strings.Repeat(" ", pad) + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(header)
	rule := make([]string, len(header))
	for i := range rule {
		rule[i] = strings.Repeat("─", width[i])
	}
	line(rule)
	for _, r := range rows {
		line(r)
	}
}

// section prints a numbered step header.
func section(w io.Writer, n int, title string) {
	fmt.Fprintf(w, "\n── %d. %s %s\n", n, title, strings.Repeat("─", max(0, 66-len(title))))
}
