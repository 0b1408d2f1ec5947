package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mlsidecar/collector/resources"
)

// Track is what a plotted line, a row of the timeline and a log line belong
// to: one attempt of one replica of the run. Replica is empty in a
// single-replica run.
type Track struct {
	Replica string
	Attempt int
}

// Label names the track for a person.
func (t Track) Label() string {
	if t.Replica == "" {
		return fmt.Sprintf("attempt %d", t.Attempt)
	}
	return fmt.Sprintf("%s · attempt %d", t.Replica, t.Attempt)
}

func (t Track) less(o Track) bool {
	if t.Replica != o.Replica {
		return t.Replica < o.Replica
	}
	return t.Attempt < o.Attempt
}

// Attempt is one attempt of the run as the report shows it.
type Attempt struct {
	Track
	// Start and End are the attempt's span: its record's, else its first
	// and last samples'; zero where unknown.
	Start, End time.Time
	// Record is the attempt's record; nil when it has none (it is running,
	// or ended before its final sync: killed, a lost node).
	Record *AttemptRecord
	// Ended says the attempt's final sync finished (resume's ended record).
	Ended bool
	// OOMKills are the times an OOM kill was seen in the attempt's
	// samples.
	OOMKills []time.Time
	// Preemption is the termination notice the attempt got, if any.
	Preemption *Preemption
	// Containers are the job's containers' last exit codes, as the pod's
	// status gave them (a sidecar in Kubernetes).
	Containers map[string]int
}

// Outcome says in a few words how the attempt ended.
func (a *Attempt) Outcome() string {
	var parts []string
	if r := a.Record; r != nil && r.ExitCode != nil {
		parts = append(parts, exitText(*r.ExitCode))
	}
	names := make([]string, 0, len(a.Containers))
	for n := range a.Containers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("container %s: %s", n, exitText(a.Containers[n])))
	}
	if len(a.OOMKills) > 0 {
		parts = append(parts, fmt.Sprintf("%d OOM kill(s)", len(a.OOMKills)))
	}
	if a.Preemption != nil {
		parts = append(parts, "preemption notice")
	}
	if a.Record != nil && a.Record.Error != "" {
		parts = append(parts, "collector failed: "+a.Record.Error)
	}
	switch {
	case len(parts) > 0:
	case a.Record != nil || a.Ended:
		parts = append(parts, "ended")
	default:
		parts = append(parts, "no end recorded (running, or stopped before its final sync)")
	}
	return strings.Join(parts, "; ")
}

// Failed says the attempt ended badly: a non-zero exit, an OOM kill, the
// collector's failure.
func (a *Attempt) Failed() bool {
	if r := a.Record; r != nil && ((r.ExitCode != nil && *r.ExitCode != 0) || r.Error != "") {
		return true
	}
	for _, c := range a.Containers {
		if c != 0 {
			return true
		}
	}
	return len(a.OOMKills) > 0
}

// exitText is an exit code in words.
func exitText(code int) string {
	if sig, ok := signalNames[code-128]; ok && code > 128 {
		return fmt.Sprintf("exit %d (%s)", code, sig)
	}
	return fmt.Sprintf("exit %d", code)
}

var signalNames = map[int]string{1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 15: "SIGTERM"}

// Plot is one chart: a measure over time, one line per track (and device).
type Plot struct {
	ID, Title string
	Unit      Unit
	Lines     []Line
	Limits    []Limit
	// Marks are events drawn across the plot (OOM kills on the memory plot).
	Marks []Mark
	// Max is the top of the value axis when fixed (100 for percentages).
	Max float64
}

// Line is one plotted series.
type Line struct {
	Track
	Label  string
	Color  string
	Points []Point
	Peak   float64
}

// Limit is a limit drawn across a track's span: a memory limit, the cores.
type Limit struct {
	Track
	Label      string
	Value      float64
	Start, End int64
}

// Mark is an event at one time.
type Mark struct {
	Track
	Label string
	T     int64
}

// Unit says how a plot's values read.
type Unit int

// The units of the plots.
const (
	Cores Unit = iota
	Bytes
	Percent
)

// Output is one object under outputs/.
type Output struct {
	Path    string // relative to the outputs folder
	Size    int64
	ModTime time.Time
	// URL is a signed link to the object, or a link relative to the
	// report; empty when there is neither.
	URL string
}

// LogLine is one of the log's last lines.
type LogLine struct {
	Time      time.Time
	Track     Track
	Container string
	Stream    string
	Text      string
	Error     bool // the line reads like an error
}

// Report is everything the page shows.
type Report struct {
	Run       string
	Store     string
	Generated time.Time
	Version   string
	Attempts  []Attempt
	// T0 and T1 bound the time axis shared by the timeline and plots.
	T0, T1  int64
	Plots   []Plot
	Summary *resources.Summary
	// Outputs are the first MaxOutputs objects under outputs/ by path; the
	// totals count them all.
	Outputs      []Output
	OutputsCount int
	OutputsBytes int64
	// OutputsMore says the listing stopped at maxListed objects: the totals
	// count those.
	OutputsMore bool
	Signed      bool // the links are signed URLs, valid until LinksExpire
	LinksExpire time.Time
	Log         []LogLine
	// Notes are what could not be read, for the reader to know.
	Notes []string
}
