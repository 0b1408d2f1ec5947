package report

import (
	"regexp"
	"sort"
	"strings"

	"github.com/mlsidecar/collector/resources"
)

// The plots, in the page's order, and the measures that may draw a track's
// line on each: the first a track has is drawn (a track has several when
// more than one source measured it). GPU plots draw one line per device.
var plotOrder = []struct {
	id, title string
	unit      Unit
	measures  []string
}{
	{"cpu", "CPU", Cores, []string{"processes", "cgroup", "container"}},
	{"memory", "Memory", Bytes, []string{"cgroup", "container", "processes (RSS)"}},
	{"gpu_util", "GPU utilisation", Percent, nil},
	{"gpu_mem", "GPU memory", Bytes, nil},
	{"shm", "Shared memory (/dev/shm)", Bytes, []string{"used", "container"}},
}

// palette colours the lines: a track keeps its colour on every plot and in
// the timeline. Red is kept for OOM kills and failures.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"}

type lineKey struct {
	plot    string
	track   Track
	measure string // the measure, or the GPU's id on a GPU plot
}

type limitKey struct {
	plot  string
	track Track
	label string
}

// sampledTrack is what the samples say of one track besides its lines.
type sampledTrack struct {
	first, last int64
	ooms        []int64
	exits       map[string]int
}

// sampled turns the resource series, sample by sample, into the plots'
// downsampled lines, the limits and the events.
type sampled struct {
	first, last int64
	lines       map[lineKey]*series
	limits      map[limitKey]float64
	tracks      map[Track]*sampledTrack
	// replica is the replica whose series add is given (Collect reads one
	// replica's after another's).
	replica string
}

func newSampled() *sampled {
	return &sampled{lines: map[lineKey]*series{}, limits: map[limitKey]float64{}, tracks: map[Track]*sampledTrack{}}
}

var (
	gpuField = regexp.MustCompile(`^gpu([0-9]+(?:_mig[0-9]+)?)_(util_percent|memory_used_bytes|memory_total_bytes)$`)
	k8sField = regexp.MustCompile(`^k8s_([a-z0-9_]+)_(memory_limit_bytes|cpu_limit_cores|exit_code|oom_kills)$`)
)

// trackOf is the track of a sample: of the replica whose series is being
// read (replicas/<name>/resources/), none in a single-replica run.
func (sp *sampled) trackOf(s *resources.Sample) Track {
	return Track{Replica: sp.replica, Attempt: s.Attempt}
}

func (sp *sampled) add(s *resources.Sample) error {
	t := s.Time.UnixNano()
	tr := sp.trackOf(s)
	st := sp.tracks[tr]
	if st == nil {
		st = &sampledTrack{first: t, last: t}
		sp.tracks[tr] = st
	}
	st.first, st.last = min(st.first, t), max(st.last, t)
	if sp.first == 0 || t < sp.first {
		sp.first = t
	}
	sp.last = max(sp.last, t)
	line := func(plot, measure string, v float64) {
		k := lineKey{plot, tr, measure}
		l := sp.lines[k]
		if l == nil {
			l = &series{}
			sp.lines[k] = l
		}
		l.add(t, v)
	}
	limit := func(plot, label string, v float64) {
		if v > 0 {
			sp.limits[limitKey{plot, tr, label}] = v
		}
	}
	for _, f := range s.Fields {
		v := f.Value
		switch f.Name {
		case "cpu_cores":
			line("cpu", "processes", v)
		case "cgroup_cpu_cores":
			line("cpu", "cgroup", v)
		case "docker_cpu_cores":
			line("cpu", "container", v)
		case "cgroup_cpu_limit_cores":
			limit("cpu", "cgroup CPU limit", v)
		case "rss_bytes":
			line("memory", "processes (RSS)", v)
		case "cgroup_memory_bytes":
			line("memory", "cgroup", v)
		case "docker_memory_bytes":
			line("memory", "container", v)
		case "cgroup_memory_limit_bytes":
			limit("memory", "cgroup limit", v)
		case "docker_memory_limit_bytes":
			limit("memory", "container limit", v)
		case "shm_used_bytes":
			line("shm", "used", v)
		case "docker_shm_bytes":
			line("shm", "container", v)
		case "shm_size_bytes":
			limit("shm", "size", v)
		case "cgroup_oom_kills":
			if v > 0 {
				st.ooms = append(st.ooms, t)
			}
		default:
			if m := gpuField.FindStringSubmatch(f.Name); m != nil {
				switch m[2] {
				case "util_percent":
					line("gpu_util", m[1], v)
				case "memory_used_bytes":
					line("gpu_mem", m[1], v)
				case "memory_total_bytes":
					limit("gpu_mem", "gpu"+m[1]+" total", v)
				}
			} else if m := k8sField.FindStringSubmatch(f.Name); m != nil {
				switch m[2] {
				case "memory_limit_bytes":
					limit("memory", "container "+m[1]+" limit", v)
				case "cpu_limit_cores":
					limit("cpu", "container "+m[1]+" CPU limit", v)
				case "exit_code":
					if st.exits == nil {
						st.exits = map[string]int{}
					}
					st.exits[m[1]] = int(v)
				case "oom_kills":
					if v > 0 {
						st.ooms = append(st.ooms, t)
					}
				}
			}
		}
	}
	return nil
}

// Geometry of a plot's drawing area, in SVG units (= CSS pixels at the
// page's width).
const (
	plotWidth  = 1100
	plotLeft   = 70
	plotRight  = 16
	plotCols   = plotWidth - plotLeft - plotRight
	maxPoints  = 64000 // over every line of the page: bounds the page's size
	minColumns = 64
)

// plots makes the plots of the lines read, over [t0, t1].
func (sp *sampled) plots(t0, t1 int64, attempts []Attempt) []Plot {
	trackIndex := map[Track]int{}
	for i, a := range attempts {
		trackIndex[a.Track] = i
	}
	// The measure drawn for each plot and track, and the GPUs seen.
	chosen := map[lineKey]bool{}
	var gpus []string
	seenGPU := map[string]bool{}
	for k := range sp.lines {
		if strings.HasPrefix(k.plot, "gpu_") {
			chosen[k] = true
			if !seenGPU[k.measure] {
				seenGPU[k.measure] = true
				gpus = append(gpus, k.measure)
			}
		}
	}
	sort.Slice(gpus, func(i, j int) bool { return gpuLess(gpus[i], gpus[j]) })
	gpuIndex := map[string]int{}
	for i, g := range gpus {
		gpuIndex[g] = i
	}
	for _, p := range plotOrder {
		for tr := range sp.tracks {
			for _, m := range p.measures {
				if sp.lines[lineKey{p.id, tr, m}] != nil {
					chosen[lineKey{p.id, tr, m}] = true
					break
				}
			}
		}
	}
	cols := plotCols
	if n := len(chosen); n > 0 {
		cols = min(plotCols, max(minColumns, maxPoints/2/n))
	}

	var out []Plot
	for _, p := range plotOrder {
		plot := Plot{ID: p.id, Title: p.title, Unit: p.unit}
		if p.unit == Percent {
			plot.Max = 100
		}
		var keys []lineKey
		for k := range chosen {
			if k.plot == p.id {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			continue
		}
		sort.Slice(keys, func(i, j int) bool {
			if keys[i].track != keys[j].track {
				return keys[i].track.less(keys[j].track)
			}
			return gpuLess(keys[i].measure, keys[j].measure)
		})
		for _, k := range keys {
			s := sp.lines[k]
			c := trackIndex[k.track]
			label := k.track.Label()
			if p.measures == nil { // a device
				c = c*len(gpus) + gpuIndex[k.measure]
				label += " · gpu" + k.measure
			} else {
				label += " · " + k.measure
			}
			plot.Lines = append(plot.Lines, Line{
				Track: k.track, Label: label, Color: palette[c%len(palette)],
				Points: s.columns(t0, t1, cols), Peak: s.peak,
			})
		}
		for k, v := range sp.limits {
			if k.plot != p.id {
				continue
			}
			st := sp.tracks[k.track]
			plot.Limits = append(plot.Limits, Limit{Track: k.track, Label: k.label, Value: v, Start: st.first, End: st.last})
		}
		if p.id == "cpu" {
			for _, a := range attempts {
				if a.Record != nil && a.Record.NodeCPUs > 0 && !a.Start.IsZero() {
					plot.Limits = append(plot.Limits, Limit{Track: a.Track, Label: "cores of the node", Value: float64(a.Record.NodeCPUs),
						Start: a.Start.UnixNano(), End: a.End.UnixNano()})
				}
			}
		}
		sort.Slice(plot.Limits, func(i, j int) bool {
			a, b := plot.Limits[i], plot.Limits[j]
			if a.Track != b.Track {
				return a.Track.less(b.Track)
			}
			return a.Label < b.Label
		})
		plot.Limits = mergeLimits(plot.Limits)
		if p.id == "memory" {
			for tr, st := range sp.tracks {
				for _, t := range st.ooms {
					plot.Marks = append(plot.Marks, Mark{Track: tr, Label: "OOM kill", T: t})
				}
			}
			sort.Slice(plot.Marks, func(i, j int) bool { return plot.Marks[i].T < plot.Marks[j].T })
		}
		out = append(out, plot)
	}
	return out
}

// gpuLess orders GPU ids as numbers: 2 before 10, 0 before 0_mig1.
func gpuLess(a, b string) bool {
	if len(a) != len(b) && !strings.Contains(a+b, "_") {
		return len(a) < len(b)
	}
	return a < b
}

// mergeLimits draws limits of one track and value once, their labels
// joined (two GPUs of the same size).
func mergeLimits(ls []Limit) []Limit {
	var out []Limit
	for _, l := range ls {
		if n := len(out); n > 0 && out[n-1].Track == l.Track && out[n-1].Value == l.Value {
			out[n-1].Label += ", " + l.Label
			continue
		}
		out = append(out, l)
	}
	return out
}
