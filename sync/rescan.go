package sync

import (
	"time"
)

// The full scan of the folder is the safety net behind file system events:
// on a large tree it costs far more than the passes that sync what events
// marked. Its period is a matter of time (Config.RescanInterval), not of
// passes, stretched so that scans take at most 1/rescanShare of a core, and
// never longer than rescanLongest (or the interval asked for, if longer).
// The watcher's own requests (an overflow, a folder it cannot watch, one
// renamed) bring a scan at once, whatever the schedule.
const (
	rescanShare   = 100 // a scan may cost 1 % of a core
	rescanLongest = 5 * time.Minute
)

// rescans is when the last full scan ended and what it cost.
type rescans struct {
	period time.Duration // what the settings ask for (Config.rescanPeriod)
	last   time.Time     // when the last full scan ended; zero before
	cost   time.Duration // its CPU time, at most its wall time
}

// wait is the time from one full scan to the next.
func (r rescans) wait() time.Duration {
	longest := max(r.period, rescanLongest)
	return min(max(r.period, r.cost*rescanShare), longest)
}

// until is how long from now until the next full scan is due (<= 0: due).
func (r rescans) until(now time.Time) time.Duration {
	return r.last.Add(r.wait()).Sub(now)
}

// scanCost is what a scan that began at start (wall clock) with the process
// at cpu0 of CPU time cost: its share of the process's CPU time, which
// counts the garbage it leaves too, but never more than its wall time (the
// process's other goroutines ran meanwhile), nor less than nothing.
func scanCost(start, end time.Time, cpu0 time.Duration) time.Duration {
	wall := max(end.Sub(start), 0)
	cpu, ok := processCPU()
	if !ok {
		return wall
	}
	return min(max(cpu-cpu0, 0), wall)
}
