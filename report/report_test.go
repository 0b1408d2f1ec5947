package report

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"golang.org/x/net/html"

	"github.com/mlsidecar/collector/resources"
	"github.com/mlsidecar/collector/spool"
)

func TestColumnsKeepPeaks(t *testing.T) {
	// A day at 1 s with one spike and one dip: both survive the reduction
	// to a plot's columns, which stay within two points each.
	var s series
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	n := 86400
	for k := range n {
		v := 50.0
		switch k {
		case 40000:
			v = 99
		case 70001:
			v = 1
		}
		s.add(t0+int64(k)*int64(time.Second), v)
	}
	if got := len(s.buckets); got > maxBuckets {
		t.Fatalf("%d buckets held while reading; want at most %d", got, maxBuckets)
	}
	cols := 1000
	pts := s.columns(t0, t0+int64(n)*int64(time.Second), cols)
	if len(pts) > 2*cols {
		t.Fatalf("%d points for %d columns", len(pts), cols)
	}
	var hi, lo bool
	for i, p := range pts {
		hi = hi || p.V == 99
		lo = lo || p.V == 1
		if i > 0 && p.T < pts[i-1].T {
			t.Fatalf("points out of time order at %d", i)
		}
	}
	if !hi || !lo {
		t.Fatalf("spike kept %v, dip kept %v; want both", hi, lo)
	}
}

// page is what a test reads of a rendered report.
type page struct {
	html    string
	tags    map[string]int
	attrs   []html.Attribute // every src and href
	paths   map[string][]int // the points of each path, by the id of the plot it is in
	styleOK bool
}

func parsePage(t *testing.T, doc []byte) page {
	t.Helper()
	p := page{html: string(doc), tags: map[string]int{}, paths: map[string][]int{}, styleOK: true}
	z := html.NewTokenizer(bytes.NewReader(doc))
	figure := ""
	inStyle := false
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatalf("HTML: %v", z.Err())
			}
			return p
		case html.TextToken:
			if inStyle && (strings.Contains(string(z.Text()), "@import") || strings.Contains(string(z.Text()), "url(")) {
				p.styleOK = false
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if string(name) == "style" {
				inStyle = false
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, more := z.TagName()
			tag := string(name)
			p.tags[tag]++
			inStyle = tag == "style"
			var attrs []html.Attribute
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				attrs = append(attrs, html.Attribute{Key: string(k), Val: string(v)})
			}
			for _, a := range attrs {
				switch {
				case a.Key == "src" || a.Key == "href" || a.Key == "xlink:href" || a.Key == "srcset" || a.Key == "action":
					p.attrs = append(p.attrs, a)
				case tag == "figure" && a.Key == "id":
					figure = a.Val
				case tag == "path" && a.Key == "d":
					p.paths[figure] = append(p.paths[figure], strings.Count(a.Val, ",")) // one comma per point
				case a.Key == "style" && strings.Contains(a.Val, "url("):
					p.styleOK = false
				}
			}
		}
	}
}

func TestDayLongRun(t *testing.T) {
	sr := dayRun()
	rep, page, samples, took := dayReport(t)
	doc := bytes.NewBuffer(page)
	t.Logf("%d samples (24 h at 1 s, %d GPUs), %d log lines: report of %d bytes (%.0f KiB) in %v",
		samples, sr.gpus, 2*sr.logLines, doc.Len(), float64(doc.Len())/1024, took.Round(time.Millisecond))

	// The page's size does not grow with the run's length.
	if max := 1 << 20; doc.Len() > max {
		t.Errorf("report is %d bytes; want at most %d", doc.Len(), max)
	}
	p := parsePage(t, doc.Bytes())
	for _, tag := range []string{"script", "link", "img", "iframe", "object", "embed", "base", "form", "audio", "video"} {
		if p.tags[tag] > 0 {
			t.Errorf("<%s> in the page: want none", tag)
		}
	}
	if !p.styleOK {
		t.Error("the CSS refers to something outside the page (url( or @import)")
	}
	if !strings.Contains(p.html, `http-equiv="Content-Security-Policy" content="default-src 'none'`) {
		t.Error("no Content-Security-Policy meta forbidding loads")
	}
	for _, a := range p.attrs {
		// file:// cannot sign: links are relative to <run>/report.html.
		if a.Key != "href" || !strings.HasPrefix(a.Val, "./outputs/") {
			t.Errorf("%s=%q: want only relative links to the run's outputs", a.Key, a.Val)
		}
	}
	if got, want := len(p.attrs), len(sr.outputs); got != want {
		t.Errorf("%d links; want one per output, %d", got, want)
	}
	if !strings.Contains(p.html, `href="./outputs/a%20b/%3Codd%3E%20&amp;%20name.txt"`) {
		t.Error("the output with an odd name is not linked, escaped, as ./outputs/a%20b/%3Codd%3E%20&amp;%20name.txt")
	}

	wantPlots := []string{"plot-cpu", "plot-memory", "plot-gpu_util", "plot-gpu_mem", "plot-shm"}
	if got := p.tags["svg"]; got != len(wantPlots)+1 {
		t.Errorf("%d <svg>; want %d plots and the timeline", got, len(wantPlots))
	}
	for _, id := range wantPlots {
		lines := p.paths[id]
		wantLines := 2 // one per attempt
		if strings.HasPrefix(id, "plot-gpu") {
			wantLines = 2 * sr.gpus
		}
		if len(lines) != wantLines {
			t.Errorf("%s: %d paths; want %d", id, len(lines), wantLines)
		}
		for _, n := range lines {
			if n < 100 || n > 2*plotCols {
				t.Errorf("%s: a path of %d points; want 100 to %d", id, n, 2*plotCols)
			}
		}
	}
	for _, want := range []string{
		"exit 137 (SIGKILL)", "OOM killed", "exit 0", // the timeline
		"cgroup limit 8 GiB", "cores of the node 16 cores", "cgroup CPU limit 12 cores", "gpu0 total, gpu1 total 80 GiB", "size 1 GiB", // limits
		"peak 15 cores", // the spike
		"Traceback (most recent call last):", "RuntimeError: CUDA out of memory &lt;b&gt;",
		"<span class=\"se err\">", // stderr and an error
		"attempts</span><b>2 (1 failed)</b>",
		"3 files",
	} {
		if !strings.Contains(p.html, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	log := p.html[strings.Index(p.html, `<pre class="log">`):]
	if got := strings.Count(log, "<span class=\""); got != DefaultLogLines {
		t.Errorf("%d log lines shown; want the last %d", got, DefaultLogLines)
	}
	if len(rep.Notes) > 0 {
		t.Errorf("notes: %q; want none", rep.Notes)
	}
}

func TestAttemptsWithoutRecords(t *testing.T) {
	// An attempt killed before its final sync has no record: it is shown
	// from its samples, as not ended; an attempt that left nothing at all
	// is still listed.
	run := fileStore(t, "r")
	sr := synthRun{start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), attempts: []time.Duration{time.Minute}, interval: time.Second}
	sr.write(t, run)
	if err := run.Delete(context.Background(), AttemptKey("", 1)); err != nil {
		t.Fatal(err)
	}
	put(t, run, ".collector/ended.json", []byte(`{"attempt":3,"preemption":{"cloud":"aws","action":"terminate","noticed":"2026-03-01T00:00:30Z"}}`))
	rep, err := Collect(context.Background(), run, Options{Run: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(rep.Attempts); got != 3 {
		t.Fatalf("%d attempts; want 3", got)
	}
	a1, a2, a3 := rep.Attempts[0], rep.Attempts[1], rep.Attempts[2]
	if a1.Record != nil || a1.Ended || a1.Start.IsZero() || a1.End.Sub(a1.Start) != 59*time.Second {
		t.Errorf("attempt 1: record %v, ended %v, span %v to %v; want no record, not ended, its samples' span", a1.Record, a1.Ended, a1.Start, a1.End)
	}
	if len(a1.OOMKills) != 1 {
		t.Errorf("attempt 1: %d OOM kills; want 1", len(a1.OOMKills))
	}
	if !a2.Start.IsZero() || a2.Outcome() != "no end recorded (running, or stopped before its final sync)" {
		t.Errorf("attempt 2: start %v, outcome %q", a2.Start, a2.Outcome())
	}
	if !a3.Ended || a3.Preemption == nil || a3.Preemption.Cloud != "aws" {
		t.Errorf("attempt 3: ended %v, preemption %+v; want ended, the notice of ended.json", a3.Ended, a3.Preemption)
	}
	var doc bytes.Buffer
	if err := rep.Write(&doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc.String(), "notice aws terminate at 2026-03-01 00:00:30 UTC") {
		t.Error("the page does not show the preemption notice")
	}
}

func TestNoRun(t *testing.T) {
	run := fileStore(t, "none")
	if _, err := Collect(context.Background(), run, Options{Run: "none"}); !errors.Is(err, ErrNoRun) {
		t.Fatalf("err %v; want ErrNoRun", err)
	}
}

func TestAttemptKeys(t *testing.T) {
	for _, tc := range []struct {
		replica string
		attempt int
		key     string
	}{
		{"", 1, ".collector/attempts/000001.json"},
		{"worker-3", 12, ".collector/attempts/worker-3.000012.json"},
	} {
		if got := AttemptKey(tc.replica, tc.attempt); got != tc.key {
			t.Errorf("AttemptKey(%q, %d) = %q; want %q", tc.replica, tc.attempt, got, tc.key)
		}
		r, a, ok := parseAttemptKey(strings.TrimPrefix(tc.key, AttemptsPrefix))
		if !ok || r != tc.replica || a != tc.attempt {
			t.Errorf("parseAttemptKey(%q) = %q, %d, %v", tc.key, r, a, ok)
		}
	}
}

func TestValueTicks(t *testing.T) {
	ticks, top := valueTicks(Bytes, 7.5*(1<<30))
	if top < 7.5*(1<<30) || len(ticks) < 3 || len(ticks) > 7 || math.Mod(ticks[1], 1<<30) != 0 {
		t.Errorf("ticks %v, top %v", ticks, top)
	}
}

func TestPreemptionInTheRecord(t *testing.T) {
	run := fileStore(t, "p")
	sr := synthRun{start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), attempts: []time.Duration{time.Minute}, interval: time.Second}
	sr.write(t, run)
	code := 143
	deadline := sr.start.Add(50 * time.Second)
	rec := AttemptRecord{Attempt: 1, Mode: "wrapper", Started: sr.start, Ended: sr.start.Add(time.Minute), ExitCode: &code,
		Preemption: &Preemption{Cloud: "aws", Action: "interruption", Deadline: deadline}}
	if err := PutAttempt(context.Background(), run, rec); err != nil {
		t.Fatal(err)
	}
	rep, err := Collect(context.Background(), run, Options{Run: "p"})
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if err := rep.Write(&doc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"exit 143 (SIGTERM), OOM killed, preempted", "▼<title>preemption notice: notice aws interruption, deadline 2026-03-01 00:00:50 UTC</title>"} {
		if !strings.Contains(doc.String(), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// TestKubernetesLimits: a sidecar in Kubernetes measures the pod's
// processes and reads the job's containers' limits from the pod
// (k8s_<container>_memory_limit_bytes, k8s_<container>_cpu_limit_cores).
// The memory and CPU plots draw each as a dashed line over the attempt
// that ran under it: a retry given more memory shows its own limit.
func TestKubernetesLimits(t *testing.T) {
	run := fileStore(t, "k")
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	memLimit := map[int]float64{1: 4 << 30, 2: 8 << 30}
	for attempt := 1; attempt <= 2; attempt++ {
		var chunk bytes.Buffer
		start := t0.Add(time.Duration(attempt-1) * 10 * time.Minute)
		for k := range 120 {
			s := resources.Sample{Time: start.Add(time.Duration(k) * time.Second), Attempt: attempt, Interval: time.Second}
			s.Add("cpu_cores", 1.5)
			s.Add("rss_bytes", float64(k)*(16<<20))
			s.Add("k8s_train_job_memory_limit_bytes", memLimit[attempt])
			s.Add("k8s_train_job_cpu_limit_cores", 3)
			s.Add("k8s_train_job_restarts", 0)
			chunk.Write(sampleLine(&s))
		}
		put(t, run, resources.Folder+"/"+spool.ChunkName(resources.Series, attempt, 0), gz(t, chunk.Bytes()))
	}
	rep, err := Collect(context.Background(), run, Options{Run: "k"})
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if err := rep.Write(&doc); err != nil {
		t.Fatal(err)
	}
	limits := dashedLines(t, doc.Bytes())
	want := map[string][]string{
		"plot-memory": {"container train_job limit " + fmtValue(Bytes, 4<<30), "container train_job limit " + fmtValue(Bytes, 8<<30)},
		"plot-cpu":    {"container train_job CPU limit " + fmtValue(Cores, 3), "container train_job CPU limit " + fmtValue(Cores, 3)},
	}
	for fig, titles := range want {
		got := limits[fig]
		var gotTitles []string
		for _, l := range got {
			gotTitles = append(gotTitles, l.title)
		}
		if !slices.Equal(gotTitles, titles) {
			t.Errorf("%s: dashed lines %q; want %q", fig, gotTitles, titles)
			continue
		}
		// Each over its own attempt: the first ends before the second starts.
		if a, b := got[0], got[1]; a.x2 >= b.x1 || a.x1 >= a.x2 || b.x1 >= b.x2 {
			t.Errorf("%s: limits span x %v–%v and %v–%v; want each over its attempt, in order", fig, a.x1, a.x2, b.x1, b.x2)
		}
	}
	// The 8 GiB limit is drawn above the 4 GiB one (SVG's y grows downwards).
	if m := limits["plot-memory"]; len(m) == 2 && m[1].y >= m[0].y {
		t.Errorf("memory limits at y %v (4 GiB) and %v (8 GiB); want 8 GiB higher", m[0].y, m[1].y)
	}
}

// dashedLine is a limit as the page draws it.
type dashedLine struct {
	title     string
	x1, x2, y float64
}

// dashedLines returns the dashed lines of each figure (by its id), with
// their titles, in the page's order.
func dashedLines(t *testing.T, doc []byte) map[string][]dashedLine {
	t.Helper()
	out := map[string][]dashedLine{}
	z := html.NewTokenizer(bytes.NewReader(doc))
	figure := ""
	var open *dashedLine
	inTitle := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatalf("HTML: %v", z.Err())
			}
			return out
		case html.TextToken:
			if inTitle && open != nil {
				open.title += string(z.Text())
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "title":
				inTitle = false
			case "line":
				if open != nil {
					out[figure] = append(out[figure], *open)
					open = nil
				}
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, more := z.TagName()
			attrs := map[string]string{}
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				attrs[string(k)] = string(v)
			}
			switch string(name) {
			case "figure":
				figure = attrs["id"]
			case "title":
				inTitle = true
			case "line":
				if attrs["stroke-dasharray"] != "" {
					num := func(k string) float64 {
						v, err := strconv.ParseFloat(attrs[k], 64)
						if err != nil {
							t.Fatalf("line %s=%q: %v", k, attrs[k], err)
						}
						return v
					}
					open = &dashedLine{x1: num("x1"), x2: num("x2"), y: num("y1")}
				}
			}
		}
	}
}

// TestReplicaSeries: each replica's resource series is its own track, and
// reading them leaves the run's bucket usable (wrapping it in a view of a
// replica's folder would mark it closed for every part read beside).
func TestReplicaSeries(t *testing.T) {
	ctx := context.Background()
	run := fileStore(t, "r")
	sr := synthRun{start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), attempts: []time.Duration{time.Minute}, interval: time.Second}
	sr.write(t, run)
	it := run.List(&blob.ListOptions{Prefix: resources.Folder + "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := run.ReadAll(ctx, obj.Key)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"w0", "w1"} {
			put(t, run, "replicas/"+name+"/"+obj.Key, b)
		}
	}
	rep, err := Collect(ctx, run, Options{Run: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Notes) > 0 {
		t.Errorf("notes: %q; want none", rep.Notes)
	}
	var tracks []string
	for _, a := range rep.Attempts {
		tracks = append(tracks, a.Label())
	}
	if want := []string{"attempt 1", "w0 · attempt 1", "w1 · attempt 1"}; !slices.Equal(tracks, want) {
		t.Errorf("tracks %q; want %q", tracks, want)
	}
	if _, err := run.List(nil).Next(ctx); err != nil {
		t.Errorf("the run's bucket after Collect: %v", err)
	}
}
