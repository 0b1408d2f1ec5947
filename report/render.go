package report

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"strconv"
	"strings"
	"time"
)

// The page's colours that tests and readers rely on: the plots' drawing
// area, limits, OOM kills and failures, preemption notices.
const (
	PlotBackground = "#f7f9fc"
	limitColor     = "#444444"
	failColor      = "#d62728"
	noticeColor    = "#ff9800"
)

// Geometry of a plot, in SVG units.
const (
	plotHeight = 210
	plotTop    = 10
	plotBottom = 26
	plotArea   = plotHeight - plotTop - plotBottom
	rowHeight  = 24
)

const css = `*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1140px;padding:12px 16px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:4px 0}h2{font-size:16px;margin:18px 0 6px;border-bottom:1px solid #e3e6ec;padding-bottom:2px}
.sub{color:#5b6170;margin:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:6px}
.card{border:1px solid #e3e6ec;border-radius:6px;padding:4px 8px}.card span{color:#5b6170;font-size:12px}.card b{display:block;font-size:15px}
svg{display:block;width:100%;height:auto}svg text{font:11px system-ui,sans-serif;fill:#5b6170}
figure{margin:6px 0 10px}figcaption{font-weight:600}
.legend{font-size:12px;color:#5b6170}.legend i{display:inline-block;width:14px;height:3px;vertical-align:middle;margin:0 4px 0 10px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:2px 8px 2px 0;border-bottom:1px solid #eef0f4;vertical-align:top}
td.n{text-align:right;white-space:nowrap}.fail{color:#d62728;font-weight:600}
pre.log{font:12px/1.35 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#fafbfc;border:1px solid #e3e6ec;padding:6px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.log span{display:block}.log .se{border-left:3px solid #ff9800;padding-left:4px}.log .err{background:#fde8e8;color:#8a1212}.log u{text-decoration:none;color:#8a8f9c}
.notes li{color:#8a1212}footer{color:#8a8f9c;font-size:12px;margin-top:24px}`

// Write renders the report as one HTML page: inline CSS and SVG, no script,
// nothing loaded from elsewhere (its Content-Security-Policy says so too).
func (r *Report) Write(w io.Writer) error {
	b := bufio.NewWriterSize(w, 64<<10)
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	e := html.EscapeString

	p("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
	p("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n")
	p("<meta name=\"referrer\" content=\"no-referrer\"><meta name=\"viewport\" content=\"width=device-width\">\n")
	p("<title>Run %s: collector report</title>\n<style>%s</style></head>\n<body>\n", e(r.Run), css)
	p("<header><h1>Run %s</h1><p class=\"sub\">%s · generated %s</p></header>\n", e(r.Run), e(r.Store), fmtTime(r.Generated))

	r.writeSummary(p)
	p("<section id=\"attempts\"><h2>Attempts</h2>\n")
	r.writeTimeline(b)
	p("</section>\n<section id=\"resources\"><h2>Resources</h2>\n")
	if len(r.Plots) == 0 {
		p("<p>No resource samples in the store (resource collection off, or none stored yet).</p>\n")
	}
	for i := range r.Plots {
		r.writePlot(b, &r.Plots[i])
	}
	p("</section>\n")
	r.writeAttemptsTable(p)
	r.writeOutputs(p)
	r.writeLog(p)
	if len(r.Notes) > 0 {
		p("<section id=\"notes\"><h2>Not read</h2><ul class=\"notes\">\n")
		for _, n := range r.Notes {
			p("<li>%s</li>\n", e(n))
		}
		p("</ul></section>\n")
	}
	p("<footer>collector %s · one self-contained page: no script, nothing loaded from the network.</footer>\n</body></html>\n", e(r.Version))
	return b.Flush()
}

type printer func(format string, args ...any)

func (r *Report) writeSummary(p printer) {
	e := html.EscapeString
	card := func(label, value string) { p("<div class=\"card\"><span>%s</span><b>%s</b></div>", e(label), e(value)) }
	p("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">\n")
	failed := 0
	for i := range r.Attempts {
		if r.Attempts[i].Failed() {
			failed++
		}
	}
	card("attempts", fmt.Sprintf("%d (%d failed)", len(r.Attempts), failed))
	if s := r.Summary; s != nil {
		state := "final"
		if !s.Final {
			state = "running"
		}
		card("duration sampled", fmt.Sprintf("%s (%s)", fmtDuration(time.Duration(s.DurationSeconds*float64(time.Second))), state))
		card("CPU mean / peak", fmt.Sprintf("%s / %s cores", trimZeros(strconv.FormatFloat(s.CPU.MeanCores, 'f', 2, 64)), trimZeros(strconv.FormatFloat(s.CPU.PeakCores, 'f', 2, 64))))
		card("CPU core-hours", trimZeros(strconv.FormatFloat(s.CPU.CoreSeconds/3600, 'f', 2, 64)))
		if s.CPU.ThrottledSeconds > 0 {
			card("CPU throttled", fmtDuration(time.Duration(s.CPU.ThrottledSeconds*float64(time.Second))))
		}
		card("peak RSS", fmtBytes(s.Memory.PeakRSSBytes))
		if s.Memory.CgroupLimitBytes > 0 {
			card("cgroup peak / limit", fmt.Sprintf("%s / %s (%.0f%%)", fmtBytes(s.Memory.CgroupPeakBytes), fmtBytes(s.Memory.CgroupLimitBytes), 100*s.Memory.CgroupPeakOfLimit))
		} else if s.Memory.CgroupPeakBytes > 0 {
			card("cgroup peak", fmtBytes(s.Memory.CgroupPeakBytes))
		}
		card("OOM kills", strconv.FormatFloat(s.Memory.OOMKills, 'f', -1, 64))
		for _, g := range s.GPUs {
			name := "gpu" + g.ID
			if g.Name != "" {
				name += " " + g.Name
			}
			card(name+" util mean / peak", fmt.Sprintf("%.0f%% / %.0f%%", g.MeanUtilPercent, g.PeakUtilPercent))
			mem := fmtBytes(g.PeakMemoryBytes)
			if g.MemoryTotalBytes > 0 {
				mem += " / " + fmtBytes(g.MemoryTotalBytes)
			}
			card(name+" memory peak", mem)
			card(name+" GPU-hours (busy)", fmt.Sprintf("%.2f (%.2f)", g.GPUHours, g.BusyGPUHours))
		}
		if s.Shm != nil {
			card("shm peak / size", fmt.Sprintf("%s / %s", fmtBytes(s.Shm.PeakUsedBytes), fmtBytes(s.Shm.SizeBytes)))
		}
		if c := s.Container; c != nil {
			card("container "+c.Name+" peak memory", fmtBytes(c.PeakMemoryBytes))
		}
	}
	card("outputs", r.outputsTotal())
	p("</div></section>\n")
}

// x maps a time to the plots' horizontal axis.
func (r *Report) x(t int64) float64 {
	span := max(r.T1-r.T0, 1)
	return plotLeft + float64(t-r.T0)/float64(span)*plotCols
}

// colorOf is the track's colour (the timeline's, and its lines' on plots
// with one line per track).
func (r *Report) colorOf(i int) string { return palette[i%len(palette)] }

func (r *Report) writeTimeline(w io.Writer) {
	e := html.EscapeString
	h := plotTop + len(r.Attempts)*rowHeight + plotBottom
	fmt.Fprintf(w, "<svg class=\"timeline\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"attempts on a timeline\">\n", plotWidth, h, plotWidth, h)
	r.writeTimeAxis(w, plotTop+len(r.Attempts)*rowHeight)
	for i := range r.Attempts {
		a := &r.Attempts[i]
		y := plotTop + i*rowHeight
		label := a.Label()
		if len(label) > 12 {
			label = "#" + strconv.Itoa(a.Attempt)
		}
		fmt.Fprintf(w, "<text x=\"4\" y=\"%d\">%s</text>", y+15, e(label))
		if a.Start.IsZero() || r.T1 == 0 {
			fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\">%s</text>\n", plotLeft, y+15, e(a.Outcome()))
			continue
		}
		x0, x1 := r.x(a.Start.UnixNano()), r.x(a.End.UnixNano())
		stroke := ""
		if a.Failed() {
			stroke = fmt.Sprintf(" stroke=\"%s\" stroke-width=\"2\"", failColor)
		}
		fmt.Fprintf(w, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"16\" rx=\"3\" fill=\"%s\" fill-opacity=\"0.85\"%s><title>%s: %s to %s, %s</title></rect>",
			x0, y+3, max(x1-x0, 2), r.colorOf(i), stroke, e(a.Label()), fmtTime(a.Start), fmtTime(a.End), e(a.Outcome()))
		for _, t := range a.OOMKills {
			fmt.Fprintf(w, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" style=\"fill:%s;font-weight:700\">✕<title>OOM kill %s</title></text>", r.x(t.UnixNano()), y+15, failColor, fmtTime(t))
		}
		if n := a.Preemption; n != nil && !n.at().IsZero() {
			fmt.Fprintf(w, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" style=\"fill:%s;font-weight:700\">▼<title>preemption notice: %s</title></text>",
				r.x(n.at().UnixNano()), y+12, noticeColor, e(noticeText(n)))
		}
		// The outcome inside a wide bar, else beside it where there is room.
		tx, anchor, style := x1+6, "start", ""
		switch {
		case x1-x0 > 220:
			tx, style = x0+6, " style=\"fill:#fff;font-weight:600\""
		case x1 > plotWidth-220:
			tx, anchor = x0-6, "end"
		}
		fmt.Fprintf(w, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\"%s>%s</text>\n", tx, y+15, anchor, style, e(shortOutcome(a)))
	}
	fmt.Fprintln(w, "</svg>")
}

// shortOutcome is the outcome in a few characters, for the timeline.
func shortOutcome(a *Attempt) string {
	var parts []string
	if r := a.Record; r != nil && r.ExitCode != nil {
		parts = append(parts, exitText(*r.ExitCode))
	}
	if len(a.OOMKills) > 0 {
		parts = append(parts, "OOM killed")
	}
	if a.Preemption != nil {
		parts = append(parts, "preempted")
	}
	if len(parts) == 0 {
		if a.Record == nil && !a.Ended {
			return "no end recorded"
		}
		return "ended"
	}
	return strings.Join(parts, ", ")
}

// writeTimeAxis draws the time axis's ticks and grid down to y.
func (r *Report) writeTimeAxis(w io.Writer, y int) {
	if r.T1 <= r.T0 {
		return
	}
	ticks, labels := timeTicks(r.T0, r.T1, 10)
	for i, t := range ticks {
		x := r.x(t)
		anchor := "middle"
		if x > plotWidth-40 {
			anchor = "end" // the last label stays on the page
		}
		fmt.Fprintf(w, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e3e6ec\"/><text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">%s</text>",
			x, plotTop, x, y, x, y+16, anchor, labels[i])
	}
	fmt.Fprintln(w)
}

func (r *Report) writePlot(w io.Writer, pl *Plot) {
	e := html.EscapeString
	peak := pl.Max
	for _, l := range pl.Lines {
		peak = max(peak, l.Peak)
	}
	for _, l := range pl.Limits {
		peak = max(peak, l.Value)
	}
	ticks, top := valueTicks(pl.Unit, peak)
	if pl.Max > 0 {
		top = pl.Max
	}
	y := func(v float64) float64 { return plotTop + plotArea - v/top*plotArea }
	fmt.Fprintf(w, "<figure id=\"plot-%s\"><figcaption>%s</figcaption>\n", pl.ID, e(pl.Title))
	fmt.Fprintf(w, "<svg class=\"plot\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"%s over time\">\n", plotWidth, plotHeight, plotWidth, plotHeight, e(pl.Title))
	fmt.Fprintf(w, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n", plotLeft, plotTop, plotCols, plotArea, PlotBackground)
	for _, v := range ticks {
		fmt.Fprintf(w, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e3e6ec\"/><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
			plotLeft, y(v), plotLeft+plotCols, y(v), plotLeft-4, y(v)+4, e(fmtValue(pl.Unit, v)))
	}
	fmt.Fprintln(w)
	r.writeTimeAxis(w, plotTop+plotArea)
	for _, l := range pl.Limits {
		x0, x1, ly := r.x(l.Start), r.x(l.End), y(l.Value)
		if x1-x0 < 2 {
			x0, x1 = plotLeft, plotLeft+plotCols
		}
		fmt.Fprintf(w, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"6 4\"><title>%s %s</title></line>",
			x0, ly, x1, ly, limitColor, e(l.Label), e(fmtValue(pl.Unit, l.Value)))
		fmt.Fprintf(w, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s %s</text>\n", x1-2, ly-3, e(l.Label), e(fmtValue(pl.Unit, l.Value)))
	}
	for _, m := range pl.Marks {
		x := r.x(m.T)
		fmt.Fprintf(w, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" stroke-width=\"1.5\"><title>%s, %s</title></line>",
			x, plotTop, x, plotTop+plotArea, failColor, e(m.Label), fmtTime(time.Unix(0, m.T)))
		fmt.Fprintf(w, "<text x=\"%.1f\" y=\"%d\" style=\"fill:%s\">%s</text>\n", x+3, plotTop+11, failColor, e(m.Label))
	}
	var d strings.Builder
	for _, l := range pl.Lines {
		d.Reset()
		for i, pt := range l.Points {
			if i == 0 {
				d.WriteByte('M')
			} else if i == 1 {
				d.WriteByte('L')
			} else {
				d.WriteByte(' ')
			}
			d.WriteString(coord(r.x(pt.T)))
			d.WriteByte(',')
			d.WriteString(coord(y(pt.V)))
		}
		if len(l.Points) == 1 {
			fmt.Fprintf(w, "<circle cx=\"%s\" cy=\"%s\" r=\"2.5\" fill=\"%s\"/>", coord(r.x(l.Points[0].T)), coord(y(l.Points[0].V)), l.Color)
		}
		fmt.Fprintf(w, "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" stroke-linejoin=\"round\"><title>%s, peak %s</title></path>\n",
			d.String(), l.Color, e(l.Label), e(fmtValue(pl.Unit, l.Peak)))
	}
	fmt.Fprintln(w, "</svg>")
	fmt.Fprint(w, "<div class=\"legend\">")
	for _, l := range pl.Lines {
		fmt.Fprintf(w, "<i style=\"background:%s\"></i>%s (peak %s)", l.Color, e(l.Label), e(fmtValue(pl.Unit, l.Peak)))
	}
	if len(pl.Limits) > 0 {
		fmt.Fprintf(w, "<i style=\"background:%s;height:1px\"></i>limits, dashed", limitColor)
	}
	fmt.Fprintln(w, "</div></figure>")
}

// coord writes a coordinate to a tenth of a unit.
func coord(v float64) string {
	return strconv.FormatFloat(float64(int64(v*10+0.5))/10, 'f', -1, 64)
}

func (r *Report) writeAttemptsTable(p printer) {
	e := html.EscapeString
	p("<section id=\"attempt-list\"><h2>Attempts in detail</h2><table><tr><th>attempt</th><th>mode</th><th>start</th><th>end</th><th>duration</th><th>outcome</th></tr>\n")
	for i := range r.Attempts {
		a := &r.Attempts[i]
		mode, dur := "–", "–"
		if a.Record != nil && a.Record.Mode != "" {
			mode = a.Record.Mode
		}
		if !a.Start.IsZero() && !a.End.IsZero() {
			dur = fmtDuration(a.End.Sub(a.Start))
		}
		class := ""
		if a.Failed() {
			class = " class=\"fail\""
		}
		outcome := a.Outcome()
		if n := a.Preemption; n != nil {
			outcome += " (" + noticeText(n) + ")"
		}
		p("<tr><td><i style=\"display:inline-block;width:10px;height:10px;background:%s\"></i> %s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td%s>%s</td></tr>\n",
			r.colorOf(i), e(a.Label()), e(mode), fmtTime(a.Start), fmtTime(a.End), dur, class, e(outcome))
	}
	p("</table></section>\n")
}

func (r *Report) writeOutputs(p printer) {
	e := html.EscapeString
	p("<section id=\"outputs\"><h2>Outputs</h2>\n")
	switch {
	case r.OutputsCount == 0:
		p("<p>No outputs in the store.</p></section>\n")
		return
	case r.Signed:
		p("<p class=\"sub\">%s. The links are signed by the store and valid until %s; <code>collector report</code> makes fresh ones.</p>\n",
			e(r.outputsTotal()), fmtTime(r.LinksExpire))
	default:
		p("<p class=\"sub\">%s, under <code>%s/outputs/</code> in the store.</p>\n", e(r.outputsTotal()), e(r.Run))
	}
	p("<table><tr><th>path</th><th class=\"n\">size</th><th>modified</th></tr>\n")
	for _, o := range r.Outputs {
		name := e(o.Path)
		if o.URL != "" {
			name = fmt.Sprintf("<a href=\"%s\">%s</a>", e(o.URL), name)
		}
		p("<tr><td>%s</td><td class=\"n\">%s</td><td>%s</td></tr>\n", name, fmtBytes(float64(o.Size)), fmtTime(o.ModTime))
	}
	p("</table>\n")
	if more := r.OutputsCount - len(r.Outputs); more > 0 || r.OutputsMore {
		n := strconv.Itoa(more)
		if r.OutputsMore {
			n = "more than " + n
		}
		p("<p class=\"sub\">and %s more, not listed here (<code>collector restore</code> brings them all back).</p>\n", n)
	}
	p("</section>\n")
}

func (r *Report) writeLog(p printer) {
	e := html.EscapeString
	errs := 0
	for _, l := range r.Log {
		if l.Error {
			errs++
		}
	}
	p("<section id=\"log\"><h2>Log: the last %d lines", len(r.Log))
	if errs > 0 {
		p(", <span class=\"fail\">%d read like errors</span>", errs)
	}
	p("</h2>\n")
	if len(r.Log) == 0 {
		p("<p>No log lines in the store (log collection off, or none stored yet).</p></section>\n")
		return
	}
	p("<p class=\"sub\">stderr lines are marked on the left; lines that read like errors (error, exception, traceback, fatal, panic) in red. <code>collector logs --store … --run %s</code> prints them all.</p>\n<pre class=\"log\">", e(r.Run))
	for _, l := range r.Log {
		var class []string
		if l.Stream == "stderr" {
			class = append(class, "se")
		}
		if l.Error {
			class = append(class, "err")
		}
		p("<span class=\"%s\"><u>%s a%d %s/%s</u> %s</span>", strings.Join(class, " "), l.Time.Format("01-02 15:04:05.000"), l.Track.Attempt, e(l.Container), e(l.Stream), e(l.Text))
	}
	p("</pre></section>\n")
}

// outputsTotal is the outputs' count and size, in words.
func (r *Report) outputsTotal() string {
	if r.OutputsMore {
		return fmt.Sprintf("more than %d files, more than %s", r.OutputsCount, fmtBytes(float64(r.OutputsBytes)))
	}
	return fmt.Sprintf("%d files, %s", r.OutputsCount, fmtBytes(float64(r.OutputsBytes)))
}

// noticeText is a preemption notice in words.
func noticeText(n *Preemption) string {
	parts := []string{"notice"}
	for _, w := range []string{n.Cloud, n.Action} {
		if w != "" {
			parts = append(parts, w)
		}
	}
	if !n.Noticed.IsZero() {
		parts = append(parts, "at "+fmtTime(n.Noticed))
	}
	s := strings.Join(parts, " ")
	if !n.Deadline.IsZero() {
		s += ", deadline " + fmtTime(n.Deadline)
	}
	return s
}
