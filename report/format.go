package report

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// fmtBytes writes a size in binary units: 1.5 GiB.
func fmtBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", v)
	}
	return trimZeros(strconv.FormatFloat(v, 'f', 2, 64)) + " " + units[i]
}

// fmtValue writes a value in a plot's unit.
func fmtValue(u Unit, v float64) string {
	switch u {
	case Bytes:
		return fmtBytes(v)
	case Percent:
		return trimZeros(strconv.FormatFloat(v, 'f', 1, 64)) + " %"
	default:
		return trimZeros(strconv.FormatFloat(v, 'f', 2, 64)) + " cores"
	}
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// fmtDuration writes a duration to the second: 26h 3m 12s.
func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh %dm %ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

// fmtTime writes a time in UTC to the second.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// pathEscape escapes one segment of a link's path.
func pathEscape(s string) string { return url.PathEscape(s) }

// niceStep is a round step (1, 2 or 5 times a power of ten) that cuts
// [0, top] into at most n parts.
func niceStep(top float64, n int) float64 {
	if top <= 0 {
		return 1
	}
	raw := top / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// valueTicks are the ticks of a value axis and its top: round numbers, in
// binary units for bytes.
func valueTicks(u Unit, peak float64) (ticks []float64, top float64) {
	if u == Percent {
		return []float64{0, 25, 50, 75, 100}, 100
	}
	if peak <= 0 {
		peak = 1
	}
	scale := 1.0
	if u == Bytes {
		for scale*1024 <= peak {
			scale *= 1024
		}
	}
	step := niceStep(peak/scale, 4) * scale
	top = math.Ceil(peak/step) * step
	for v := 0.0; v <= top+step/2; v += step {
		ticks = append(ticks, v)
	}
	return ticks, top
}

// timeSteps are the steps a time axis may take.
var timeSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour,
}

// timeTicks are the ticks of the time axis over [t0, t1] (Unix ns), on
// round UTC times, with their labels.
func timeTicks(t0, t1 int64, n int) (ticks []int64, labels []string) {
	span := time.Duration(t1 - t0)
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= time.Duration(n) {
			step = s
			break
		}
	}
	layout := "15:04"
	switch {
	case step < time.Minute:
		layout = "15:04:05"
	case span > 24*time.Hour:
		layout = "Jan 2 15:04"
	}
	first := time.Unix(0, t0).UTC().Truncate(step)
	for t := first; t.UnixNano() <= t1; t = t.Add(step) {
		if t.UnixNano() < t0 {
			continue
		}
		ticks = append(ticks, t.UnixNano())
		labels = append(labels, t.Format(layout))
	}
	return ticks, labels
}
