package resources

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"time"
)

// rate turns a counter of CPU seconds into cores. A rate is only taken over
// a window of at least min: the kernel counts a process's CPU time in clock
// ticks (10 ms), so over a window of a few milliseconds one tick of each of
// a hundred processes reads as hundreds of cores. A sample that comes
// sooner (the first, right after the baseline; the last, right after a
// tick) gets no rate, and the window goes on to the next one. A rate is
// never above max, the cores the measured processes can run on.
type rate struct {
	min  time.Duration
	max  float64 // cores; 0: no bound
	base float64 // the counter at the start of the window
	at   time.Time
	set  bool
}

// start sets the counter at the start of the first window; its time is
// taken from the first sample (its time less its interval).
func (r *rate) start(counter float64) { r.base, r.at, r.set = counter, time.Time{}, true }

// observe returns the rate from the start of the window to now and starts
// a new window, or false when the window is shorter than min.
func (r *rate) observe(s *Sample, counter float64) (float64, bool) {
	if !r.set {
		r.start(counter)
		return 0, false
	}
	if r.at.IsZero() {
		r.at = s.Time.Add(-s.Interval)
	}
	window := s.Time.Sub(r.at)
	if window <= 0 || window < r.min {
		return 0, false
	}
	cores := max(0, counter-r.base) / window.Seconds()
	if r.max > 0 {
		cores = min(cores, r.max)
	}
	r.base, r.at = counter, s.Time
	return cores, true
}

// onlineCPUs counts the CPUs of procDir/stat ("cpu0", "cpu1"...: those
// online), else the CPUs the collector may run on.
func onlineCPUs(procDir string) float64 {
	data, err := os.ReadFile(procDir + "/stat")
	if err != nil {
		return float64(runtime.NumCPU())
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > 3 && bytes.HasPrefix(line, []byte("cpu")) && line[3] >= '0' && line[3] <= '9' {
			n++
		}
	}
	if n == 0 {
		return float64(runtime.NumCPU())
	}
	return float64(n)
}
