package resources

import (
	"encoding/json"
	"sort"
	"time"
)

// Aggregates are the running figures of the summary, over every sample of
// every attempt that reached a chunk. They are what the state section keeps,
// so a retried job continues them.
type Aggregates struct {
	Samples  int       `json:"samples"`
	Attempts []int     `json:"attempts,omitempty"`
	First    time.Time `json:"first,omitzero"`
	Last     time.Time `json:"last,omitzero"`
	// Seconds is the time the samples cover: the sum of their intervals.
	Seconds     float64 `json:"seconds"`
	CoreSeconds float64 `json:"core_seconds"`
	PeakCores   float64 `json:"peak_cores"`
	PeakRSS     float64 `json:"peak_rss"`
	PeakPSS     float64 `json:"peak_pss,omitempty"`

	CgroupPeak       float64   `json:"cgroup_peak,omitempty"`
	CgroupLimit      float64   `json:"cgroup_limit,omitempty"`
	ThrottledSeconds float64   `json:"throttled_seconds,omitempty"`
	ThrottledPeriods float64   `json:"throttled_periods,omitempty"`
	LimitHits        float64   `json:"limit_hits,omitempty"`
	OOMKills         float64   `json:"oom_kills,omitempty"`
	OOMLimit         float64   `json:"oom_limit,omitempty"`
	LastOOM          time.Time `json:"last_oom,omitzero"`

	GPUs map[string]*GPUAggregates `json:"gpus,omitempty"`

	ShmSize float64 `json:"shm_size,omitempty"`
	ShmPeak float64 `json:"shm_peak,omitempty"`

	// Container is the container measured through Docker's stats.
	Container *ContainerAggregates `json:"container,omitempty"`

	// Kubernetes are the job's containers from the pod's status.
	Kubernetes *PodAggregates `json:"kubernetes,omitempty"`
}

// ContainerAggregates are the running figures of a container measured
// through Docker's stats.
type ContainerAggregates struct {
	Name             string  `json:"name"`
	Seconds          float64 `json:"seconds"`
	CoreSeconds      float64 `json:"core_seconds"`
	PeakCores        float64 `json:"peak_cores"`
	PeakMemory       float64 `json:"peak_memory"`
	MemoryLimit      float64 `json:"memory_limit"`
	ThrottledSeconds float64 `json:"throttled_seconds"`
	PeakShm          float64 `json:"peak_shm,omitempty"`
}

// GPUAggregates are one device's running figures.
type GPUAggregates struct {
	GPUInfo
	UtilSamples int     `json:"util_samples"`
	UtilSum     float64 `json:"util_sum"`
	PeakUtil    float64 `json:"peak_util"`
	BusySeconds float64 `json:"busy_seconds"` // Σ util/100 × interval
	Seconds     float64 `json:"seconds"`      // Σ interval while the device was seen
	PeakMemory  float64 `json:"peak_memory"`
	MemoryTotal float64 `json:"memory_total,omitempty"`
	PeakJobMem  float64 `json:"peak_job_memory,omitempty"`
	PeakPower   float64 `json:"peak_power,omitempty"`
}

// Add counts one sample.
func (a *Aggregates) Add(s *Sample) {
	dt := s.Interval.Seconds()
	a.Samples++
	if a.First.IsZero() || s.Time.Before(a.First) {
		a.First = s.Time
	}
	if s.Time.After(a.Last) {
		a.Last = s.Time
	}
	if n := len(a.Attempts); n == 0 || a.Attempts[n-1] != s.Attempt {
		a.Attempts = append(a.Attempts, s.Attempt)
	}
	a.Seconds += dt
	var gpu map[string]*GPUAggregates
	for _, f := range s.Fields {
		v := f.Value
		switch f.Name {
		case "cpu_seconds":
			a.CoreSeconds += v
		case "cpu_cores":
			if _, counted := s.Value("cpu_seconds"); !counted {
				a.CoreSeconds += v * dt // a sample of a version before cpu_seconds
			}
			a.PeakCores = max(a.PeakCores, v)
		case "rss_bytes":
			a.PeakRSS = max(a.PeakRSS, v)
		case "pss_bytes":
			a.PeakPSS = max(a.PeakPSS, v)
		case "cgroup_memory_bytes", "cgroup_memory_peak_bytes":
			a.CgroupPeak = max(a.CgroupPeak, v)
		case "cgroup_memory_limit_bytes":
			a.CgroupLimit = v
		case "cgroup_throttled_seconds":
			a.ThrottledSeconds += v
		case "cgroup_throttled_periods":
			a.ThrottledPeriods += v
		case "cgroup_memory_limit_hits":
			a.LimitHits += v
		case "cgroup_oom_kills":
			if v > 0 {
				a.OOMKills += v
				a.LastOOM = s.Time
				a.OOMLimit, _ = s.Value("cgroup_memory_limit_bytes")
			}
		case "shm_size_bytes":
			a.ShmSize = v
		case "shm_used_bytes":
			a.ShmPeak = max(a.ShmPeak, v)
		case "docker_cpu_cores":
			c := a.container()
			c.Seconds += dt
			c.CoreSeconds += v * dt
			c.PeakCores = max(c.PeakCores, v)
		case "docker_memory_bytes":
			a.container().PeakMemory = max(a.container().PeakMemory, v)
		case "docker_memory_limit_bytes":
			a.container().MemoryLimit = v
		case "docker_throttled_seconds":
			a.container().ThrottledSeconds += v
		case "docker_shm_bytes":
			a.container().PeakShm = max(a.container().PeakShm, v)
		default:
			if a.addPod(s, f.Name, v) {
				continue
			}
			id, sfx, ok := splitGPUField(f.Name)
			if !ok {
				continue
			}
			if a.GPUs == nil {
				a.GPUs = map[string]*GPUAggregates{}
			}
			g := a.GPUs[id]
			if g == nil {
				g = &GPUAggregates{GPUInfo: GPUInfo{ID: id}}
				a.GPUs[id] = g
			}
			if gpu == nil {
				gpu = map[string]*GPUAggregates{}
			}
			if _, seen := gpu[id]; !seen {
				gpu[id] = g
				g.Seconds += dt
			}
			switch sfx {
			case "util_percent":
				g.UtilSamples++
				g.UtilSum += v
				g.PeakUtil = max(g.PeakUtil, v)
				g.BusySeconds += v / 100 * dt
			case "memory_used_bytes":
				g.PeakMemory = max(g.PeakMemory, v)
			case "memory_total_bytes":
				g.MemoryTotal = v
			case "job_memory_bytes":
				g.PeakJobMem = max(g.PeakJobMem, v)
			case "power_watts":
				g.PeakPower = max(g.PeakPower, v)
			}
		}
	}
}

// container returns the container's aggregates, made on first use.
func (a *Aggregates) container() *ContainerAggregates {
	if a.Container == nil {
		a.Container = &ContainerAggregates{}
	}
	return a.Container
}

// name records the devices' names and UUIDs, which the series does not hold.
func (a *Aggregates) name(infos []GPUInfo) {
	for _, i := range infos {
		if a.GPUs == nil {
			a.GPUs = map[string]*GPUAggregates{}
		}
		g := a.GPUs[i.ID]
		if g == nil {
			g = &GPUAggregates{}
			a.GPUs[i.ID] = g
		}
		g.GPUInfo = i
	}
}

// clone is a deep copy.
func (a *Aggregates) clone() Aggregates {
	c := *a
	c.Attempts = append([]int(nil), a.Attempts...)
	c.Kubernetes = a.Kubernetes.clone()
	if a.Container != nil {
		cc := *a.Container
		c.Container = &cc
	}
	if a.GPUs != nil {
		c.GPUs = make(map[string]*GPUAggregates, len(a.GPUs))
		for k, g := range a.GPUs {
			gc := *g
			c.GPUs[k] = &gc
		}
	}
	return c
}

// Summary is summary.json: the run's resource use in a few figures.
type Summary struct {
	Run      string    `json:"run"`
	Final    bool      `json:"final"`
	Updated  time.Time `json:"updated"`
	Attempts []int     `json:"attempts"`
	Samples  int       `json:"samples"`
	Start    time.Time `json:"start,omitzero"`
	End      time.Time `json:"end,omitzero"`
	// DurationSeconds is the time the samples cover, summed over attempts
	// (the gaps between attempts are not in it).
	DurationSeconds float64       `json:"duration_seconds"`
	CPU             SummaryCPU    `json:"cpu"`
	Memory          SummaryMemory `json:"memory"`
	GPUs            []SummaryGPU  `json:"gpus"`
	Shm             *SummaryShm   `json:"shm,omitempty"`
	// Container is the container measured through Docker's stats (the
	// docker plugin and --resources-container).
	Container *SummaryContainer `json:"container,omitempty"`
	// Kubernetes is the job's containers as the pod's status reported them
	// (a sidecar in Kubernetes): limits, restarts, exit code, OOM kills.
	Kubernetes *SummaryPod `json:"kubernetes,omitempty"`
}

// SummaryContainer is a container measured through Docker's stats.
type SummaryContainer struct {
	Name             string  `json:"name"`
	MeanCores        float64 `json:"mean_cores"`
	PeakCores        float64 `json:"peak_cores"`
	CoreSeconds      float64 `json:"core_seconds"`
	PeakMemoryBytes  float64 `json:"peak_memory_bytes"`
	MemoryLimitBytes float64 `json:"memory_limit_bytes"`
	ThrottledSeconds float64 `json:"throttled_seconds"`
	PeakShmBytes     float64 `json:"peak_shm_bytes,omitempty"`
}

// SummaryCPU is the CPU part of the summary.
type SummaryCPU struct {
	MeanCores        float64 `json:"mean_cores"`
	PeakCores        float64 `json:"peak_cores"`
	CoreSeconds      float64 `json:"core_seconds"`
	ThrottledSeconds float64 `json:"throttled_seconds"`
	ThrottledPeriods float64 `json:"throttled_periods"`
}

// SummaryMemory is the memory part of the summary.
type SummaryMemory struct {
	PeakRSSBytes      float64   `json:"peak_rss_bytes"`
	PeakPSSBytes      float64   `json:"peak_pss_bytes,omitempty"`
	CgroupPeakBytes   float64   `json:"cgroup_peak_bytes,omitempty"`
	CgroupLimitBytes  float64   `json:"cgroup_limit_bytes,omitempty"`
	CgroupPeakOfLimit float64   `json:"cgroup_peak_of_limit,omitempty"`
	CgroupLimitHits   float64   `json:"cgroup_limit_hits"`
	OOMKills          float64   `json:"oom_kills"`
	OOMKillLimitBytes float64   `json:"oom_kill_limit_bytes,omitempty"`
	LastOOMKill       time.Time `json:"last_oom_kill,omitzero"`
}

// SummaryGPU is one device in the summary.
type SummaryGPU struct {
	GPUInfo
	MeanUtilPercent  float64 `json:"mean_util_percent"`
	PeakUtilPercent  float64 `json:"peak_util_percent"`
	PeakMemoryBytes  float64 `json:"peak_memory_bytes"`
	MemoryTotalBytes float64 `json:"memory_total_bytes,omitempty"`
	PeakJobMemory    float64 `json:"peak_job_memory_bytes"`
	PeakPowerWatts   float64 `json:"peak_power_watts,omitempty"`
	GPUHours         float64 `json:"gpu_hours"`
	BusyGPUHours     float64 `json:"busy_gpu_hours"`
}

// SummaryShm is the shared memory part of the summary.
type SummaryShm struct {
	SizeBytes     float64 `json:"size_bytes"`
	PeakUsedBytes float64 `json:"peak_used_bytes"`
}

// Summary makes the summary of the aggregates.
func (a *Aggregates) Summary(run string, final bool, now time.Time) Summary {
	s := Summary{
		Run: run, Final: final, Updated: now.UTC(),
		Attempts: append([]int{}, a.Attempts...), Samples: a.Samples,
		Start: a.First.UTC(), End: a.Last.UTC(),
		DurationSeconds: round(a.Seconds, 3),
		CPU: SummaryCPU{
			PeakCores:        round(a.PeakCores, 3),
			CoreSeconds:      round(a.CoreSeconds, 3),
			ThrottledSeconds: round(a.ThrottledSeconds, 3),
			ThrottledPeriods: a.ThrottledPeriods,
		},
		Memory: SummaryMemory{
			PeakRSSBytes: a.PeakRSS, PeakPSSBytes: a.PeakPSS,
			CgroupPeakBytes: a.CgroupPeak, CgroupLimitBytes: a.CgroupLimit,
			CgroupLimitHits: a.LimitHits,
			OOMKills:        a.OOMKills, OOMKillLimitBytes: a.OOMLimit, LastOOMKill: a.LastOOM.UTC(),
		},
		GPUs: []SummaryGPU{},
	}
	if a.Seconds > 0 {
		s.CPU.MeanCores = round(a.CoreSeconds/a.Seconds, 3)
		// A run shorter than a rate's window has no rate: its peak is its
		// mean.
		s.CPU.PeakCores = max(s.CPU.PeakCores, s.CPU.MeanCores)
	}
	if a.CgroupLimit > 0 {
		s.Memory.CgroupPeakOfLimit = round(a.CgroupPeak/a.CgroupLimit, 4)
	}
	ids := make([]string, 0, len(a.GPUs))
	for id := range a.GPUs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g := a.GPUs[id]
		sg := SummaryGPU{
			GPUInfo:         g.GPUInfo,
			PeakUtilPercent: g.PeakUtil, PeakMemoryBytes: g.PeakMemory, MemoryTotalBytes: g.MemoryTotal,
			PeakJobMemory: g.PeakJobMem, PeakPowerWatts: g.PeakPower,
			GPUHours:     round(g.Seconds/3600, 6),
			BusyGPUHours: round(g.BusySeconds/3600, 6),
		}
		if g.UtilSamples > 0 {
			sg.MeanUtilPercent = round(g.UtilSum/float64(g.UtilSamples), 2)
		}
		s.GPUs = append(s.GPUs, sg)
	}
	s.Kubernetes = a.Kubernetes.summary()
	if a.ShmSize > 0 {
		s.Shm = &SummaryShm{SizeBytes: a.ShmSize, PeakUsedBytes: a.ShmPeak}
	}
	if c := a.Container; c != nil {
		s.Container = &SummaryContainer{
			Name: c.Name, PeakCores: round(c.PeakCores, 3), CoreSeconds: round(c.CoreSeconds, 3),
			PeakMemoryBytes: c.PeakMemory, MemoryLimitBytes: c.MemoryLimit,
			ThrottledSeconds: round(c.ThrottledSeconds, 3), PeakShmBytes: c.PeakShm,
		}
		if c.Seconds > 0 {
			s.Container.MeanCores = round(c.CoreSeconds/c.Seconds, 3)
		}
	}
	return s
}

// JSON is the summary as summary.json holds it.
func (s Summary) JSON() []byte {
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}
