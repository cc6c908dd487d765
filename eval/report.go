package eval

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strings"
)

func fmtStat(s *Stat) string {
	if s == nil {
		return "–"
	}
	if s.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f [%.3f, %.3f]", s.Mean, s.Lo, s.Hi)
}

func fmtCost(c CandidateSummary) string {
	if c.CostPer1K.N == 0 {
		if c.Unpriced > 0 {
			return "unpriced"
		}
		return "–"
	}
	s := fmt.Sprintf("$%.4g", c.CostPer1K.Mean)
	if c.Unpriced > 0 {
		s += fmt.Sprintf(" (%d unpriced)", c.Unpriced)
	}
	return s
}

// cell makes text safe in a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

// fence returns a code fence longer than any backtick run in s.
func fence(s string) string {
	n, run := 3, 0
	for _, r := range s {
		if r == '`' {
			run++
			n = max(n, run+1)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", n)
}

// WriteMarkdown writes the eval's report in Markdown.
func WriteMarkdown(w io.Writer, s *Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Eval %s\n\n", s.ID)
	fmt.Fprintf(&b, "%s\n\n", s.describe())
	metrics := s.presentMetrics()
	b.WriteString("## Metrics\n\nMeans with bootstrap 95% confidence intervals; failed calls count as wrong answers.\n\n")
	b.WriteString("| candidate | requests | errors |")
	for _, m := range metrics {
		fmt.Fprintf(&b, " %s |", s.metricTitle(m))
	}
	b.WriteString(" p50 ms | p95 ms | cost / 1k requests |\n|---|---:|---:|")
	b.WriteString(strings.Repeat("---|", len(metrics)))
	b.WriteString("---:|---:|---:|\n")
	for _, c := range s.Candidates {
		name := cell(c.Name)
		if c.Name == s.Reference {
			name += " (reference)"
		}
		fmt.Fprintf(&b, "| %s | %d | %d |", name, c.Requests, c.Errors)
		for _, m := range metrics {
			fmt.Fprintf(&b, " %s |", fmtStat(c.metric(m)))
		}
		fmt.Fprintf(&b, " %.1f | %.1f | %s |\n", c.LatencyP50MS, c.LatencyP95MS, fmtCost(c))
	}
	if s.Judge != "" {
		fmt.Fprintf(&b, "\n## Judge: %s against %s\n\nEach pair judged twice with the answers' positions swapped; a disagreement is a tie. Judge cost $%.4f.\n\n",
			cell(s.Judge), cell(s.Reference), s.JudgeCostUSD)
		b.WriteString("| candidate | wins | losses | ties | of which inconsistent | judge errors | win rate |\n|---|---:|---:|---:|---:|---:|---|\n")
		for _, c := range s.Candidates {
			if c.Tally == nil {
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s |\n", cell(c.Name), c.Tally.Wins, c.Tally.Losses, c.Tally.Ties,
				c.Tally.Inconsistent, c.JudgeErrors, fmtStat(c.WinRate))
		}
	}
	if fields := s.fieldNames(); len(fields) > 0 {
		b.WriteString("\n## Per-field accuracy\n\nFor JSON-object references: how often each top-level field's value was matched.\n\n| field |")
		for _, c := range s.Candidates {
			fmt.Fprintf(&b, " %s |", cell(c.Name))
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(s.Candidates)) + "\n")
		for _, f := range fields {
			fmt.Fprintf(&b, "| %s |", cell(f))
			for _, c := range s.Candidates {
				st, ok := c.Fields[f]
				if !ok {
					b.WriteString(" – |")
					continue
				}
				fmt.Fprintf(&b, " %s |", fmtStat(&st))
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n## Cost and latency\n\n| candidate | prompt tokens | completion tokens | cost | latency mean ms |\n|---|---:|---:|---:|---:|\n")
	for _, c := range s.Candidates {
		fmt.Fprintf(&b, "| %s | %d | %d | $%.6f | %.1f |\n", cell(c.Name), c.PromptTokens, c.CompletionTokens, c.CostUSD, c.LatencyMeanMS)
	}
	if len(s.Samples) > 0 {
		b.WriteString("\n## Samples\n\nExamples some candidate did not match exactly come first.\n")
		for _, sm := range s.Samples {
			fmt.Fprintf(&b, "\n### Example %s\n\n**Prompt**\n\n%s\n%s\n%s\n\n**Reference**\n\n%s\n%s\n%s\n", sm.Example,
				fence(sm.Prompt), sm.Prompt, fence(sm.Prompt), fence(sm.Reference), sm.Reference, fence(sm.Reference))
			for _, c := range s.Candidates {
				a, ok := sm.Answers[c.Name]
				if !ok {
					continue
				}
				fmt.Fprintf(&b, "\n**%s**\n\n%s\n%s\n%s\n", c.Name, fence(a), a, fence(a))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (s *Summary) metricTitle(m string) string {
	if m == "win_rate" && s.Reference != "" {
		return "win rate vs " + cell(s.Reference)
	}
	return metricTitles[m]
}

func (s *Summary) describe() string {
	parts := []string{}
	if s.Data != "" {
		parts = append(parts, "data "+s.Data)
	}
	parts = append(parts, fmt.Sprintf("%d examples", s.Examples))
	if s.Reference != "" {
		parts = append(parts, "reference "+s.Reference)
	}
	if s.Judge != "" {
		parts = append(parts, "judge "+s.Judge)
	}
	parts = append(parts, fmt.Sprintf("seed %d, %d bootstrap resamples", s.Seed, s.Resamples), "updated "+s.Updated.Format("2006-01-02 15:04 UTC"))
	return strings.Join(parts, " · ")
}

// Compare writes a Markdown comparison of two evals: each metric of each
// candidate in either, with the change from a to b. A change whose
// intervals do not overlap is marked "*".
func Compare(w io.Writer, a, b *Summary) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Eval %s → %s\n\n- %s: %s\n- %s: %s\n\nA change marked * has non-overlapping 95%% intervals.\n\n", a.ID, b.ID, a.ID, a.describe(), b.ID, b.describe())
	names := []string{}
	seen := map[string]bool{}
	for _, s := range []*Summary{a, b} {
		for _, c := range s.Candidates {
			if !seen[c.Name] {
				seen[c.Name] = true
				names = append(names, c.Name)
			}
		}
	}
	sb.WriteString("| candidate | metric | " + cell(a.ID) + " | " + cell(b.ID) + " | change |\n|---|---|---|---|---:|\n")
	for _, n := range names {
		ca, cb := a.Candidate(n), b.Candidate(n)
		for _, m := range metricNames {
			var sa, sbb *Stat
			if ca != nil {
				sa = ca.metric(m)
			}
			if cb != nil {
				sbb = cb.metric(m)
			}
			if sa == nil && sbb == nil {
				continue
			}
			change := "–"
			if sa != nil && sbb != nil && sa.N > 0 && sbb.N > 0 {
				change = fmt.Sprintf("%+.3f", sbb.Mean-sa.Mean)
				if sbb.Lo > sa.Hi || sbb.Hi < sa.Lo {
					change += " *"
				}
			}
			fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", cell(n), metricTitles[m], fmtStat(sa), fmtStat(sbb), change)
		}
		num := func(c *CandidateSummary, f func(*CandidateSummary) float64) string {
			if c == nil {
				return "–"
			}
			return fmt.Sprintf("%.4g", f(c))
		}
		for _, row := range []struct {
			name string
			f    func(*CandidateSummary) float64
		}{
			{"p50 ms", func(c *CandidateSummary) float64 { return c.LatencyP50MS }},
			{"p95 ms", func(c *CandidateSummary) float64 { return c.LatencyP95MS }},
			{"$ / 1k requests", func(c *CandidateSummary) float64 { return c.CostPer1K.Mean }},
			{"errors", func(c *CandidateSummary) float64 { return float64(c.Errors) }},
		} {
			change := "–"
			if ca != nil && cb != nil {
				change = fmt.Sprintf("%+.4g", row.f(cb)-row.f(ca))
			}
			fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", cell(n), row.name, num(ca, row.f), num(cb, row.f), change)
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"}

func color(i int) string { return palette[i%len(palette)] }

// metricsChart is a grouped bar chart: one group per metric, one bar per
// candidate, with whiskers at the 95% interval.
func metricsChart(s *Summary) string {
	metrics := s.presentMetrics()
	nc := len(s.Candidates)
	const barW, gap, h, top, left = 22.0, 28.0, 220.0, 20.0, 40.0
	groupW := float64(nc)*barW + gap
	width := left + float64(len(metrics))*groupW + 10
	height := top + h + 50 + float64(nc)*18
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="metrics with 95%% intervals">`, width, height, width, height)
	y := func(v float64) float64 { return top + h - math.Max(0, math.Min(1, v))*h }
	for _, t := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" font-size="10" text-anchor="end">%.2f</text>`,
			left, width-10, y(t), y(t), left-4, y(t)+3, t)
	}
	for gi, m := range metrics {
		x0 := left + float64(gi)*groupW + gap/2
		for ci := range s.Candidates {
			st := s.Candidates[ci].metric(m)
			if st == nil || st.N == 0 {
				continue
			}
			x := x0 + float64(ci)*barW
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.3f [%.3f, %.3f]</title></rect>`,
				x+2, y(st.Mean), barW-4, top+h-y(st.Mean), color(ci), html.EscapeString(s.Candidates[ci].Name), metricTitles[m], st.Mean, st.Lo, st.Hi)
			cx := x + barW/2
			fmt.Fprintf(&b, `<line class="whisker" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/><line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/><line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/>`,
				cx, cx, y(st.Lo), y(st.Hi), cx-4, cx+4, y(st.Lo), y(st.Lo), cx-4, cx+4, y(st.Hi), y(st.Hi))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%s</text>`, x0+float64(nc)*barW/2, top+h+16, html.EscapeString(metricTitles[m]))
	}
	legend(&b, s, top+h+34)
	b.WriteString(`</svg>`)
	return b.String()
}

func legend(b *strings.Builder, s *Summary, y float64) {
	for ci, c := range s.Candidates {
		fmt.Fprintf(b, `<rect x="40" y="%.1f" width="12" height="12" fill="%s"/><text x="58" y="%.1f" font-size="11">%s</text>`,
			y+float64(ci)*18, color(ci), y+float64(ci)*18+10, html.EscapeString(c.Name))
	}
}

// latencyChart is horizontal bars of p50 and p95 latency per candidate.
func latencyChart(s *Summary) string {
	const left, barH, width = 160.0, 14.0, 640.0
	maxv := 0.0
	for _, c := range s.Candidates {
		maxv = math.Max(maxv, c.LatencyP95MS)
	}
	if maxv == 0 {
		maxv = 1
	}
	height := 20 + float64(len(s.Candidates))*(2*barH+14)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="latency p50 and p95">`, width, height, width, height)
	scale := (width - left - 90) / maxv
	for ci, c := range s.Candidates {
		y := 10 + float64(ci)*(2*barH+14)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="11" text-anchor="end">%s</text>`, left-8, y+barH+4, html.EscapeString(c.Name))
		for k, v := range []float64{c.LatencyP50MS, c.LatencyP95MS} {
			op, label := "1", "p50"
			if k == 1 {
				op, label = "0.55", "p95"
			}
			fmt.Fprintf(&b, `<rect x="%.0f" y="%.1f" width="%.1f" height="%.0f" fill="%s" opacity="%s"><title>%s %s %.1f ms</title></rect><text x="%.1f" y="%.1f" font-size="10">%s %.1f ms</text>`,
				left, y+float64(k)*barH, v*scale, barH-2, color(ci), op, html.EscapeString(c.Name), label, v, left+v*scale+4, y+float64(k)*barH+10, label, v)
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// diffHTML renders answer against reference word by word: words only in
// the reference struck out, words only in the answer highlighted.
func diffHTML(answer, reference string) template.HTML {
	a, r := strings.Fields(answer), strings.Fields(reference)
	if len(a)*len(r) > 4_000_000 {
		return template.HTML(html.EscapeString(answer)) // too long to diff here
	}
	// LCS table from the end, so the walk below is forwards.
	dp := make([][]int32, len(r)+1)
	for i := range dp {
		dp[i] = make([]int32, len(a)+1)
	}
	for i := len(r) - 1; i >= 0; i-- {
		for j := len(a) - 1; j >= 0; j-- {
			if r[i] == a[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	var b strings.Builder
	i, j := 0, 0
	for i < len(r) || j < len(a) {
		switch {
		case i < len(r) && j < len(a) && r[i] == a[j]:
			b.WriteString(html.EscapeString(a[j]))
			i, j = i+1, j+1
		case i < len(r) && (j == len(a) || dp[i+1][j] >= dp[i][j+1]):
			b.WriteString("<del>" + html.EscapeString(r[i]) + "</del>")
			i++
		default:
			b.WriteString("<ins>" + html.EscapeString(a[j]) + "</ins>")
			j++
		}
		b.WriteByte(' ')
	}
	return template.HTML(b.String())
}

type htmlAnswer struct {
	Name string
	Diff template.HTML
}

type htmlSample struct {
	Sample
	Cols []htmlAnswer
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{"stat": fmtStat, "cost": fmtCost}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Eval {{.S.ID}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{white-space:pre-wrap;margin:0;font:12px/1.4 ui-monospace,monospace}
ins{background:#d7f5d7;text-decoration:none}del{background:#f8d4d4}
.meta{color:#666}.chart{display:block;margin:1em 0}
</style></head><body>
<h1>Eval {{.S.ID}}</h1>
<p class="meta">{{.Desc}}</p>
<h2>Metrics</h2>
<p>Means with bootstrap 95% confidence intervals (whiskers); failed calls count as wrong answers.</p>
{{.Chart}}
<table><tr><th>candidate</th><th>requests</th><th>errors</th>{{range .Metrics}}<th>{{.}}</th>{{end}}<th>p50 ms</th><th>p95 ms</th><th>cost / 1k requests</th></tr>
{{range .Rows}}<tr><td>{{.Name}}</td><td class="num">{{.C.Requests}}</td><td class="num">{{.C.Errors}}</td>{{range .Stats}}<td class="num">{{.}}</td>{{end}}<td class="num">{{printf "%.1f" .C.LatencyP50MS}}</td><td class="num">{{printf "%.1f" .C.LatencyP95MS}}</td><td class="num">{{cost .C}}</td></tr>
{{end}}</table>
{{if .S.Judge}}<h2>Judge: {{.S.Judge}} against {{.S.Reference}}</h2>
<p>Each pair judged twice with positions swapped; a disagreement is a tie. Judge cost ${{printf "%.4f" .S.JudgeCostUSD}}.</p>
<table><tr><th>candidate</th><th>wins</th><th>losses</th><th>ties</th><th>inconsistent</th><th>judge errors</th><th>win rate</th></tr>
{{range .S.Candidates}}{{if .Tally}}<tr><td>{{.Name}}</td><td class="num">{{.Tally.Wins}}</td><td class="num">{{.Tally.Losses}}</td><td class="num">{{.Tally.Ties}}</td><td class="num">{{.Tally.Inconsistent}}</td><td class="num">{{.JudgeErrors}}</td><td class="num">{{stat .WinRate}}</td></tr>{{end}}
{{end}}</table>{{end}}
{{if .Fields}}<h2>Per-field accuracy</h2><table><tr><th>field</th>{{range .S.Candidates}}<th>{{.Name}}</th>{{end}}</tr>
{{range .Fields}}<tr><td>{{.Name}}</td>{{range .Stats}}<td class="num">{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}
<h2>Latency</h2>
{{.Latency}}
{{if .Samples}}<h2>Samples</h2><p>Answers beside the reference: <ins>added</ins> and <del>missing</del> words. Examples some candidate did not match exactly come first.</p>
{{range .Samples}}<h3>Example {{.Example}}</h3><p><b>Prompt</b></p><pre>{{.Prompt}}</pre>
<table><tr><th>reference</th>{{range .Cols}}<th>{{.Name}}</th>{{end}}</tr><tr><td><pre>{{.Reference}}</pre></td>{{range .Cols}}<td><pre>{{.Diff}}</pre></td>{{end}}</tr></table>
{{end}}{{end}}
</body></html>
`))

// WriteHTML writes the eval's report as one self-contained HTML page with
// inline SVG charts.
func WriteHTML(w io.Writer, s *Summary) error {
	type row struct {
		Name  string
		C     CandidateSummary
		Stats []string
	}
	type fieldRow struct {
		Name  string
		Stats []string
	}
	data := struct {
		S              *Summary
		Desc           string
		Chart, Latency template.HTML
		Metrics        []string
		Rows           []row
		Fields         []fieldRow
		Samples        []htmlSample
	}{S: s, Desc: s.describe(), Chart: template.HTML(metricsChart(s)), Latency: template.HTML(latencyChart(s))}
	metrics := s.presentMetrics()
	for _, m := range metrics {
		data.Metrics = append(data.Metrics, s.metricTitle(m))
	}
	for _, c := range s.Candidates {
		r := row{Name: c.Name, C: c}
		if c.Name == s.Reference {
			r.Name += " (reference)"
		}
		for _, m := range metrics {
			r.Stats = append(r.Stats, fmtStat(c.metric(m)))
		}
		data.Rows = append(data.Rows, r)
	}
	for _, f := range s.fieldNames() {
		fr := fieldRow{Name: f}
		for _, c := range s.Candidates {
			st, ok := c.Fields[f]
			if !ok {
				fr.Stats = append(fr.Stats, "–")
				continue
			}
			fr.Stats = append(fr.Stats, fmtStat(&st))
		}
		data.Fields = append(data.Fields, fr)
	}
	for _, sm := range s.Samples {
		hs := htmlSample{Sample: sm}
		for _, c := range s.Candidates {
			if a, ok := sm.Answers[c.Name]; ok {
				hs.Cols = append(hs.Cols, htmlAnswer{Name: c.Name, Diff: diffHTML(a, sm.Reference)})
			}
		}
		data.Samples = append(data.Samples, hs)
	}
	return reportTmpl.Execute(w, data)
}
