package resources

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// v1Unlimited is the smallest limit_in_bytes cgroup v1 reports for "no
// limit" (PAGE_COUNTER_MAX pages, rounded to the page: 9223372036854771712
// on 4 KiB pages).
const v1Unlimited = 1 << 62

// CgroupPaths are the folders of one cgroup's files: one folder for v2, the
// memory and CPU controllers' folders for v1.
type CgroupPaths struct {
	Version int    // 1 or 2
	Memory  string // v2: the cgroup's folder
	CPU     string // v1: cpu.stat (throttling); v2: unused
	CPUAcct string // v1: cpuacct.usage; v2: unused
}

// FindCgroup finds the collector's own cgroup under root ("/sys/fs/cgroup"):
// v2 when root is the unified hierarchy, else the v1 memory, cpu and
// cpuacct controllers. Its path comes from /proc/self/cgroup; a path that is
// not under the mount (a cgroup namespace) is the mount itself.
func FindCgroup(root, selfCgroup string) (CgroupPaths, error) {
	data, err := os.ReadFile(selfCgroup)
	if err != nil {
		return CgroupPaths{}, fmt.Errorf("no cgroup: %w", err)
	}
	paths := map[string]string{} // controller -> path
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			paths[""] = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			paths[c] = parts[2]
		}
	}
	within := func(mount, path string) string {
		// A namespace's own cgroup outside its root reads "/../..": not
		// a folder under the mount, however it resolves.
		if rel := strings.TrimPrefix(path, "/"); filepath.IsLocal(rel) {
			if dir := filepath.Join(mount, rel); isDir(dir) {
				return dir
			}
		}
		return mount
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		p, ok := paths[""]
		if !ok {
			return CgroupPaths{}, fmt.Errorf("no cgroup: %s has no v2 entry", selfCgroup)
		}
		dir := within(root, p)
		if _, err := os.Stat(filepath.Join(dir, "memory.current")); err != nil {
			return CgroupPaths{}, fmt.Errorf("no cgroup: the memory controller is not enabled in %s", dir)
		}
		return CgroupPaths{Version: 2, Memory: dir}, nil
	}
	mem := v1Mount(root, "memory")
	if mem == "" {
		return CgroupPaths{}, fmt.Errorf("no cgroup: neither v2 nor a v1 memory controller under %s", root)
	}
	p := CgroupPaths{Version: 1, Memory: within(mem, paths["memory"])}
	if cpu := v1Mount(root, "cpu", "cpu,cpuacct", "cpuacct,cpu"); cpu != "" {
		p.CPU = within(cpu, paths["cpu"])
	}
	if acct := v1Mount(root, "cpuacct", "cpu,cpuacct", "cpuacct,cpu"); acct != "" {
		p.CPUAcct = within(acct, paths["cpuacct"])
	}
	return p, nil
}

// v1Mount returns the first of the v1 controller folders names under root
// that is there, or "".
func v1Mount(root string, names ...string) string {
	for _, n := range names {
		if dir := filepath.Join(root, n); isDir(dir) {
			return dir
		}
	}
	return ""
}

// JobCgroup finds the cgroup path names under root ("/sys/fs/cgroup"): a
// cgroup as /proc/<pid>/cgroup names it (/kubepods/pod1/c1,
// /system.slice/job.service), or its folder under root (v1: a folder of
// the memory controller's). In v1 the cpu and cpuacct controllers' folders
// of the same path are used where they are there.
func JobCgroup(root, path string) (CgroupPaths, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return CgroupPaths{}, fmt.Errorf("%q is not a clean absolute path", path)
	}
	v2 := isFile(filepath.Join(root, "cgroup.controllers"))
	rel := path
	if r, ok := strings.CutPrefix(path, root+"/"); ok {
		rel = "/" + r
		if !v2 {
			// The folder of a controller: the path after its mount.
			_, after, _ := strings.Cut(r, "/")
			rel = "/" + after
		}
	}
	if v2 {
		dir := filepath.Join(root, rel)
		if !isFile(filepath.Join(dir, "cgroup.procs")) {
			return CgroupPaths{}, fmt.Errorf("%s: no such cgroup (%s has no cgroup.procs)", path, dir)
		}
		if !isFile(filepath.Join(dir, "memory.current")) {
			return CgroupPaths{}, fmt.Errorf("%s: the memory controller is not enabled in %s", path, dir)
		}
		return CgroupPaths{Version: 2, Memory: dir}, nil
	}
	mem := v1Mount(root, "memory")
	if mem == "" {
		return CgroupPaths{}, fmt.Errorf("%s: neither v2 nor a v1 memory controller under %s", path, root)
	}
	p := CgroupPaths{Version: 1, Memory: filepath.Join(mem, rel)}
	if !isFile(filepath.Join(p.Memory, "cgroup.procs")) {
		return CgroupPaths{}, fmt.Errorf("%s: no such cgroup (%s has no cgroup.procs)", path, p.Memory)
	}
	if cpu := v1Mount(root, "cpu", "cpu,cpuacct", "cpuacct,cpu"); cpu != "" && isDir(filepath.Join(cpu, rel)) {
		p.CPU = filepath.Join(cpu, rel)
	}
	if acct := v1Mount(root, "cpuacct", "cpu,cpuacct", "cpuacct,cpu"); acct != "" && isDir(filepath.Join(acct, rel)) {
		p.CPUAcct = filepath.Join(acct, rel)
	}
	return p, nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Cgroup measures one cgroup: CPU usage and throttling, memory use, limit
// and peak, and OOM kills, so that a kill is recorded with the limit it hit.
type Cgroup struct {
	paths   CgroupPaths
	prev    cgroupCounters
	started bool
	cpu     rate
}

// cgroupCounters are a cgroup's counters, in seconds and counts.
type cgroupCounters struct {
	cpu              float64 // CPU seconds used
	periods          float64 // CFS periods throttled
	throttled        float64 // seconds throttled
	oomKills         float64 // processes killed by the OOM killer
	limitHits        float64 // times usage hit the limit (v1 failcnt, v2 events max)
	hasCPU, hasThrot bool
}

// CgroupReading is one reading of a cgroup's files.
type CgroupReading struct {
	counters cgroupCounters
	Memory   uint64 // bytes in use now
	Limit    uint64 // bytes; 0 when unlimited
	Peak     uint64 // the cgroup's peak use, bytes; 0 when the kernel keeps none
	OOMKills uint64 // since the cgroup was made
	// CPULimit is the cgroup's CPU quota in cores (cpu.max, v1
	// cpu.cfs_quota_us over cpu.cfs_period_us); 0 when it has none.
	CPULimit float64
}

// NewCgroup measures the cgroup of paths and reads it once as the baseline.
func NewCgroup(paths CgroupPaths) (*Cgroup, error) {
	c := &Cgroup{paths: paths}
	r, err := ReadCgroup(paths)
	if err != nil {
		return nil, fmt.Errorf("no cgroup: %w", err)
	}
	c.prev, c.started = r.counters, true
	c.cpu.start(r.counters.cpu)
	c.cpu.max = r.CPULimit
	return c, nil
}

// rateWindow sets the shortest window a rate is taken over, and bounds the
// rate by cpus, or by the cgroup's quota when it is less.
func (c *Cgroup) rateWindow(window time.Duration, cpus float64) {
	c.cpu.min = window
	if c.cpu.max == 0 || cpus < c.cpu.max {
		c.cpu.max = cpus
	}
}

// Name implements Source.
func (c *Cgroup) Name() string { return "cgroup" }

// Sample implements Source: cgroup_cpu_cores (when the window since the
// last rate is long enough: see rate), cgroup_cpu_limit_cores (when it has
// a quota), cgroup_throttled_periods and
// cgroup_throttled_seconds, cgroup_memory_bytes, cgroup_memory_limit_bytes
// (when limited), cgroup_memory_peak_bytes (when the kernel keeps it),
// cgroup_memory_limit_hits and cgroup_oom_kills over the interval.
func (c *Cgroup) Sample(s *Sample) error {
	r, err := ReadCgroup(c.paths)
	if err != nil {
		return err
	}
	d := func(now, prev float64) float64 { return max(0, now-prev) }
	cur, prev := r.counters, c.prev
	c.prev = cur
	if cur.hasCPU {
		if cores, ok := c.cpu.observe(s, cur.cpu); ok {
			s.Add("cgroup_cpu_cores", round(cores, 4))
		}
	}
	if r.CPULimit > 0 {
		s.Add("cgroup_cpu_limit_cores", round(r.CPULimit, 3))
	}
	if cur.hasThrot {
		s.Add("cgroup_throttled_periods", d(cur.periods, prev.periods))
		s.Add("cgroup_throttled_seconds", round(d(cur.throttled, prev.throttled), 6))
	}
	s.Add("cgroup_memory_bytes", float64(r.Memory))
	if r.Limit > 0 {
		s.Add("cgroup_memory_limit_bytes", float64(r.Limit))
	}
	if r.Peak > 0 {
		s.Add("cgroup_memory_peak_bytes", float64(r.Peak))
	}
	s.Add("cgroup_memory_limit_hits", d(cur.limitHits, prev.limitHits))
	s.Add("cgroup_oom_kills", d(cur.oomKills, prev.oomKills))
	return nil
}

// ReadCgroup reads the files of a cgroup. Memory use is required; the rest
// is read where the kernel has it.
func ReadCgroup(p CgroupPaths) (CgroupReading, error) {
	var r CgroupReading
	var err error
	if p.Version == 2 {
		if r.Memory, err = readUint(filepath.Join(p.Memory, "memory.current")); err != nil {
			return r, err
		}
		if max, err := os.ReadFile(filepath.Join(p.Memory, "memory.max")); err == nil && strings.TrimSpace(string(max)) != "max" {
			r.Limit, _ = strconv.ParseUint(strings.TrimSpace(string(max)), 10, 64)
		}
		r.Peak, _ = readUint(filepath.Join(p.Memory, "memory.peak"))
		if ev, err := readKeyed(filepath.Join(p.Memory, "memory.events")); err == nil {
			r.counters.oomKills = float64(ev["oom_kill"])
			r.counters.limitHits = float64(ev["max"])
		}
		if st, err := readKeyed(filepath.Join(p.Memory, "cpu.stat")); err == nil {
			r.counters.cpu, r.counters.hasCPU = float64(st["usage_usec"])/1e6, true
			if _, ok := st["nr_throttled"]; ok {
				r.counters.periods = float64(st["nr_throttled"])
				r.counters.throttled = float64(st["throttled_usec"]) / 1e6
				r.counters.hasThrot = true
			}
		}
		// "max 100000" is no quota.
		if b, err := os.ReadFile(filepath.Join(p.Memory, "cpu.max")); err == nil {
			quota, period, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
			q, err1 := strconv.ParseFloat(quota, 64)
			per, err2 := strconv.ParseFloat(period, 64)
			if err1 == nil && err2 == nil && q > 0 && per > 0 {
				r.CPULimit = q / per
			}
		}
	} else {
		if r.Memory, err = readUint(filepath.Join(p.Memory, "memory.usage_in_bytes")); err != nil {
			return r, err
		}
		if l, err := readUint(filepath.Join(p.Memory, "memory.limit_in_bytes")); err == nil && l < v1Unlimited {
			r.Limit = l
		}
		r.Peak, _ = readUint(filepath.Join(p.Memory, "memory.max_usage_in_bytes"))
		if n, err := readUint(filepath.Join(p.Memory, "memory.failcnt")); err == nil {
			r.counters.limitHits = float64(n)
		}
		// oom_kill is in oom_control since Linux 4.13; before it, under_oom
		// says only that the cgroup is out of memory now.
		if oc, err := readKeyed(filepath.Join(p.Memory, "memory.oom_control")); err == nil {
			if n, ok := oc["oom_kill"]; ok {
				r.counters.oomKills = float64(n)
			} else {
				r.counters.oomKills = float64(oc["under_oom"])
			}
		}
		if p.CPUAcct != "" {
			if ns, err := readUint(filepath.Join(p.CPUAcct, "cpuacct.usage")); err == nil {
				r.counters.cpu, r.counters.hasCPU = float64(ns)/1e9, true
			}
		}
		if p.CPU != "" {
			if st, err := readKeyed(filepath.Join(p.CPU, "cpu.stat")); err == nil {
				r.counters.periods = float64(st["nr_throttled"])
				r.counters.throttled = float64(st["throttled_time"]) / 1e9
				r.counters.hasThrot = true
			}
			// A quota of -1 is none.
			q, err1 := readInt(filepath.Join(p.CPU, "cpu.cfs_quota_us"))
			per, err2 := readInt(filepath.Join(p.CPU, "cpu.cfs_period_us"))
			if err1 == nil && err2 == nil && q > 0 && per > 0 {
				r.CPULimit = float64(q) / float64(per)
			}
		}
	}
	r.OOMKills = uint64(r.counters.oomKills)
	return r, nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
}

// readKeyed reads a file of "key value" lines (cpu.stat, memory.events,
// memory.oom_control).
func readKeyed(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	return m, sc.Err()
}
