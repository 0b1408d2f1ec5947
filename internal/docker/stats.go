package docker

import (
	"context"
	"net/url"
	"time"
)

// Stats is one sample of a container's resource usage, as the engine
// measures it from the container's cgroup (GET /containers/{id}/stats with
// stream=false). The engine reads the counters twice, about a second apart,
// so that one sample is enough for a CPU rate: CPU holds the counters at
// Read, PreCPU those at PreRead. A stopped container's sample is all zero.
type Stats struct {
	Read    time.Time // when the engine read CPU, Memory and the rest
	PreRead time.Time // when it read PreCPU; zero when it had no earlier reading
	CPU     CPUStats
	PreCPU  CPUStats
	Memory  MemoryStats
	// PIDs is the number of processes and threads in the container.
	PIDs uint64
	// Networks is the traffic of each of the container's interfaces
	// (none on the host network).
	Networks map[string]NetworkStats
	// BlockRead and BlockWrite are the bytes the container read from and
	// wrote to block devices since it started (all devices).
	BlockRead, BlockWrite uint64
}

// CPUStats are cumulative CPU counters, in nanoseconds.
type CPUStats struct {
	// Total is the CPU time the container's processes used, over all CPUs.
	Total uint64
	// Kernel and User split Total by mode.
	Kernel, User uint64
	// System is the host's CPU time, over all CPUs, at the same moment
	// (the denominator of the docker stats CPU %). Zero on Windows.
	System uint64
	// OnlineCPUs is the number of CPUs the host has online.
	OnlineCPUs uint32
	// ThrottledPeriods and ThrottledTime (ns) count the periods in which
	// the CPU quota throttled the container, and for how long.
	ThrottledPeriods, ThrottledTime uint64
}

// MemoryStats is the container's memory cgroup.
type MemoryStats struct {
	// Usage is the memory the cgroup charges, in bytes, page cache
	// included (memory.current on cgroup v2).
	Usage uint64
	// MaxUsage is the peak of Usage (cgroup v1 only; zero on v2).
	MaxUsage uint64
	// Limit is the container's memory limit in bytes; the host's memory
	// when it has none.
	Limit uint64
	// Failcnt counts the times Usage hit Limit (cgroup v1 only).
	Failcnt uint64
	// Stat is the cgroup's memory.stat as the engine copies it: on cgroup
	// v2 anon, file, shmem, inactive_file, ...; on v1 cache, rss,
	// total_inactive_file, ...
	Stat map[string]uint64
}

// NetworkStats is one interface's traffic since the container started.
type NetworkStats struct {
	RxBytes, TxBytes     uint64
	RxPackets, TxPackets uint64
	RxDropped, TxDropped uint64
}

// WorkingSet is the memory `docker stats` shows: Usage less the inactive
// page cache (inactive_file on cgroup v2, total_inactive_file on v1), the
// part the kernel cannot reclaim without swapping.
func (m MemoryStats) WorkingSet() uint64 {
	inactive, ok := m.Stat["inactive_file"]
	if !ok {
		inactive = m.Stat["total_inactive_file"]
	}
	if inactive > m.Usage {
		return 0
	}
	return m.Usage - inactive
}

// CPUPercent is the container's CPU use between PreRead and Read as
// `docker stats` shows it: 100 per fully used CPU (400 for four). It is 0
// when the sample holds no earlier reading.
func (s Stats) CPUPercent() float64 {
	if s.PreRead.IsZero() || s.CPU.System <= s.PreCPU.System || s.CPU.Total < s.PreCPU.Total {
		return 0
	}
	cpus := float64(s.CPU.OnlineCPUs)
	if cpus == 0 {
		cpus = 1
	}
	return float64(s.CPU.Total-s.PreCPU.Total) / float64(s.CPU.System-s.PreCPU.System) * cpus * 100
}

// Stats returns one sample of a container's resource usage. The engine
// takes about a second to answer: it reads the counters twice.
func (c *Client) Stats(ctx context.Context, container string) (Stats, error) {
	var raw struct {
		Read      time.Time `json:"read"`
		PreRead   time.Time `json:"preread"`
		PidsStats struct {
			Current uint64 `json:"current"`
		} `json:"pids_stats"`
		CPUStats    rawCPU `json:"cpu_stats"`
		PreCPUStats rawCPU `json:"precpu_stats"`
		MemoryStats struct {
			Usage    uint64            `json:"usage"`
			MaxUsage uint64            `json:"max_usage"`
			Limit    uint64            `json:"limit"`
			Failcnt  uint64            `json:"failcnt"`
			Stats    map[string]uint64 `json:"stats"`
		} `json:"memory_stats"`
		Networks map[string]struct {
			RxBytes   uint64 `json:"rx_bytes"`
			RxPackets uint64 `json:"rx_packets"`
			RxDropped uint64 `json:"rx_dropped"`
			TxBytes   uint64 `json:"tx_bytes"`
			TxPackets uint64 `json:"tx_packets"`
			TxDropped uint64 `json:"tx_dropped"`
		} `json:"networks"`
		BlkioStats struct {
			IOServiceBytesRecursive []struct {
				Op    string `json:"op"`
				Value uint64 `json:"value"`
			} `json:"io_service_bytes_recursive"`
		} `json:"blkio_stats"`
	}
	q := url.Values{"stream": {"false"}}
	if err := c.getJSON(ctx, "stats", containerPath(container, "stats"), q, &raw); err != nil {
		return Stats{}, err
	}
	s := Stats{
		Read:    raw.Read,
		PreRead: raw.PreRead,
		CPU:     raw.CPUStats.stats(),
		PreCPU:  raw.PreCPUStats.stats(),
		Memory: MemoryStats{
			Usage:    raw.MemoryStats.Usage,
			MaxUsage: raw.MemoryStats.MaxUsage,
			Limit:    raw.MemoryStats.Limit,
			Failcnt:  raw.MemoryStats.Failcnt,
			Stat:     raw.MemoryStats.Stats,
		},
		PIDs: raw.PidsStats.Current,
	}
	// The engine writes "0001-01-01T00:00:00Z" for a reading it does not have.
	if s.PreRead.Year() <= 1 {
		s.PreRead = time.Time{}
	}
	if s.Read.Year() <= 1 {
		s.Read = time.Time{}
	}
	if len(raw.Networks) > 0 {
		s.Networks = make(map[string]NetworkStats, len(raw.Networks))
		for name, n := range raw.Networks {
			s.Networks[name] = NetworkStats{
				RxBytes: n.RxBytes, TxBytes: n.TxBytes,
				RxPackets: n.RxPackets, TxPackets: n.TxPackets,
				RxDropped: n.RxDropped, TxDropped: n.TxDropped,
			}
		}
	}
	for _, e := range raw.BlkioStats.IOServiceBytesRecursive {
		switch e.Op {
		case "read", "Read":
			s.BlockRead += e.Value
		case "write", "Write":
			s.BlockWrite += e.Value
		}
	}
	return s, nil
}

type rawCPU struct {
	CPUUsage struct {
		TotalUsage        uint64 `json:"total_usage"`
		UsageInKernelmode uint64 `json:"usage_in_kernelmode"`
		UsageInUsermode   uint64 `json:"usage_in_usermode"`
	} `json:"cpu_usage"`
	SystemCPUUsage uint64 `json:"system_cpu_usage"`
	OnlineCPUs     uint32 `json:"online_cpus"`
	ThrottlingData struct {
		ThrottledPeriods uint64 `json:"throttled_periods"`
		ThrottledTime    uint64 `json:"throttled_time"`
	} `json:"throttling_data"`
}

func (r rawCPU) stats() CPUStats {
	return CPUStats{
		Total:            r.CPUUsage.TotalUsage,
		Kernel:           r.CPUUsage.UsageInKernelmode,
		User:             r.CPUUsage.UsageInUsermode,
		System:           r.SystemCPUUsage,
		OnlineCPUs:       r.OnlineCPUs,
		ThrottledPeriods: r.ThrottlingData.ThrottledPeriods,
		ThrottledTime:    r.ThrottlingData.ThrottledTime,
	}
}
