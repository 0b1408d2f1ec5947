package resources

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// fakeProc is a /proc of n processes (pids 100...), each with cpu ticks of
// CPU time, on a machine of cpus CPUs; kthreadd makes it the host's.
type fakeProc struct {
	dir string
}

func newFakeProc(t *testing.T, n, cpus int, kthreadd bool) *fakeProc {
	t.Helper()
	p := &fakeProc{dir: t.TempDir()}
	var stat strings.Builder
	stat.WriteString("cpu  100 0 100 1000 0 0 0 0 0 0\n")
	for i := range cpus {
		fmt.Fprintf(&stat, "cpu%d 50 0 50 500 0 0 0 0 0 0\n", i)
	}
	stat.WriteString("intr 0\nctxt 0\n")
	p.write(t, "stat", stat.String())
	p.write(t, "self/stat", procStat(os.Getpid(), "collector", 1, 0, 0))
	if kthreadd {
		p.write(t, "2/stat", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 24 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
	}
	for i := range n {
		p.set(t, 100+i, 0)
	}
	return p
}

// procStat is a /proc/<pid>/stat line: utime ticks, 1 thread, rss pages.
func procStat(pid int, comm string, ppid, utime int, flags uint64) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 %d 0 0 0 0 %d 0 0 0 20 0 1 0 %d 1000000 25 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
		pid, comm, ppid, pid, pid, flags, utime, 1000+pid)
}

func (p *fakeProc) write(t *testing.T, name, data string) {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// set gives process pid ticks of CPU time.
func (p *fakeProc) set(t *testing.T, pid, ticks int) {
	p.write(t, strconv.Itoa(pid)+"/stat", procStat(pid, "job", 1, ticks, 0))
}

// TestNoRateFromAShortWindow: a hundred processes that each gain one clock
// tick (10 ms) between the baseline and a sample taken 1 ms after it read,
// as a rate over that millisecond, a thousand cores (a sidecar recorded
// 15.5, 359.8 and 456 on a machine of 2). A rate is taken over half an
// interval at least, and is never more than the machine's CPUs.
func TestNoRateFromAShortWindow(t *testing.T) {
	p := newFakeProc(t, 100, 2, false)
	tree, err := NewProcessTree(p.dir, Scope{})
	if err != nil {
		t.Fatal(err)
	}
	tree.rateWindow(5*time.Second, 0)
	base := time.Now()
	tick := func(ticks int) {
		for i := range 100 {
			p.set(t, 100+i, ticks)
		}
	}
	sample := func(at, interval time.Duration) Sample {
		s := Sample{Time: base.Add(at), Attempt: 1, Interval: interval}
		if err := tree.Sample(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	tick(1)
	s := sample(time.Millisecond, time.Millisecond)
	if v, ok := s.Value("cpu_cores"); ok {
		t.Errorf("1 ms after the baseline: cpu_cores = %v, want none", v)
	}
	if v, _ := s.Value("cpu_seconds"); v != 1 {
		t.Errorf("cpu_seconds = %v, want the 100 ticks counted: 1", v)
	}
	// The next sample's rate is over the window from the baseline: 10 s.
	tick(11)
	s = sample(10*time.Second+time.Millisecond, 10*time.Second)
	if v, ok := s.Value("cpu_cores"); !ok || v != round(11.0/10.001, 4) {
		t.Errorf("10 s on: cpu_cores = %v, %v; want %v", v, ok, round(11.0/10.001, 4))
	}
	// 100 busy processes on 2 CPUs cannot use more than 2 cores, however
	// their ticks fall.
	tick(1101)
	s = sample(15*time.Second+time.Millisecond, 5*time.Second)
	if v, _ := s.Value("cpu_cores"); v != 2 {
		t.Errorf("cpu_cores = %v over 5 s for 10 s of ticks on a machine of 2 CPUs, want 2", v)
	}
	// The last sample, 20 ms after a tick: no rate; its CPU time is counted.
	tick(1102)
	s = sample(15*time.Second+21*time.Millisecond, 20*time.Millisecond)
	if v, ok := s.Value("cpu_cores"); ok {
		t.Errorf("20 ms after the one before: cpu_cores = %v, want none", v)
	}
	if v, _ := s.Value("cpu_seconds"); v != 1 {
		t.Errorf("cpu_seconds = %v, want 1", v)
	}
}

// TestShortJobPeak: a wrapped `sleep 2`, sampled every 10 s, has a peak of
// about nothing (it recorded up to 0.78 cores from its first sample, taken
// milliseconds after its exec); a busy loop's peak is within the cores the
// machine has, and its core-seconds are what the kernel counted.
func TestShortJobPeak(t *testing.T) {
	t.Run("sleep", func(t *testing.T) {
		r := newRig(t, newStore(t), t.TempDir(), &memState{}, Config{Wrapper: true, Interval: 10 * time.Second})
		stop := r.start()
		startHelper(t, "sleep", "2s").Wait()
		stop()
		s := r.summary()
		t.Logf("peak %.3f cores, mean %.3f, %d samples", s.CPU.PeakCores, s.CPU.MeanCores, s.Samples)
		if s.CPU.PeakCores > 0.05 {
			t.Errorf("peak_cores = %.3f for a sleep, want about 0", s.CPU.PeakCores)
		}
	})
	t.Run("busy", func(t *testing.T) {
		r := newRig(t, newStore(t), t.TempDir(), &memState{}, Config{Wrapper: true, Interval: 300 * time.Millisecond})
		stop := r.start()
		burner := startHelper(t, "burn", "1500ms")
		burner.Wait()
		stop()
		s := r.summary()
		cpus := onlineCPUs("/proc")
		t.Logf("peak %.3f cores, mean %.3f, %.3f core-seconds; the kernel counted %.3f", s.CPU.PeakCores, s.CPU.MeanCores, s.CPU.CoreSeconds, cpuOf(burner))
		if s.CPU.PeakCores > cpus || s.CPU.PeakCores < s.CPU.MeanCores {
			t.Errorf("peak_cores = %.3f, want between the mean %.3f and the machine's %v CPUs", s.CPU.PeakCores, s.CPU.MeanCores, cpus)
		}
		if !within(s.CPU.CoreSeconds, cpuOf(burner), 0.15) {
			t.Errorf("core_seconds = %.3f, want the kernel's %.3f ± 15%%", s.CPU.CoreSeconds, cpuOf(burner))
		}
	})
}

// TestHostPIDNamespace tells the host's process namespace (kthreadd, a
// kernel thread, is pid 2) from a container's (pid 2 is a process of it).
func TestHostPIDNamespace(t *testing.T) {
	if !hostPIDNamespace(newFakeProc(t, 1, 1, true).dir) {
		t.Error("kthreadd visible: not taken as the host's")
	}
	c := newFakeProc(t, 1, 1, false)
	c.write(t, "2/stat", procStat(2, "kthreadd", 1, 0, 0x400100)) // a process named so, not a kernel thread
	if hostPIDNamespace(c.dir) {
		t.Error("a container's pid 2 taken as the host's kthreadd")
	}
	if hostPIDNamespace(newFakeProc(t, 1, 1, false).dir) {
		t.Error("no pid 2: taken as the host's")
	}
}

// sidecarRig runs a sidecar's sampler over procDir for a few samples and
// returns the log and the series.
func sidecarRig(t *testing.T, cfg Config) (string, []map[string]any) {
	t.Helper()
	cfg.Interval = 50 * time.Millisecond
	var log string
	var series []map[string]any
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, newStore(t), t.TempDir(), &memState{}, cfg)
		stop := r.start()
		time.Sleep(200 * time.Millisecond) // on the bubble's clock
		stop()
		log, series = r.logs.String(), r.series()
	})
	return log, series
}

// jobLine is what the start's log line says is measured.
func jobLine(t *testing.T, log string) string {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="sampling resources"`) {
			_, job, _ := strings.Cut(line, "job=")
			return job
		}
	}
	t.Fatalf("no \"sampling resources\" line in the log:\n%s", log)
	return ""
}

// TestSidecarScope: what a sidecar measures, and says it measures, at
// start. Outside a container it sees the host's processes (a sidecar on
// this machine counted 89 to 122 processes, 1 to 2 GB, as the job):
// nothing is measured, and the line says how to name the job. In a
// container's process namespace, every process but its own.
func TestSidecarScope(t *testing.T) {
	t.Run("host", func(t *testing.T) {
		p := newFakeProc(t, 50, 2, true)
		log, recs := sidecarRig(t, Config{ProcDir: p.dir})
		if job := jobLine(t, log); !strings.Contains(job, "no process: the collector sees the host's processes") || !strings.Contains(job, "--resources-pid") {
			t.Errorf("job=%s", job)
		}
		for i, rec := range recs {
			if _, ok := rec["processes"]; ok {
				t.Fatalf("record %d measures processes on the host: %v", i, rec)
			}
		}
	})
	t.Run("this machine", func(t *testing.T) {
		if !hostPIDNamespace("/proc") {
			t.Skip("this machine's tests run in a container's process namespace")
		}
		log, recs := sidecarRig(t, Config{})
		if job := jobLine(t, log); !strings.HasPrefix(job, `"no process: the collector sees the host's processes`) {
			t.Errorf("job=%s", job)
		}
		if _, ok := recs[0]["processes"]; ok {
			t.Errorf("the host's processes measured: %v", recs[0])
		}
	})
	t.Run("a pid not running", func(t *testing.T) {
		log, recs := sidecarRig(t, Config{PIDs: []int{4194305}}) // above any pid_max
		if job := jobLine(t, log); !strings.HasPrefix(job, `"processes 4194305 and their descendants"`) || !strings.Contains(log, `msg="a process named by --resources-pid is not running; it is measured if it starts" component=resources pid=4194305`) {
			t.Errorf("job=%s; the log does not say the process is not running:\n%s", job, log)
		}
		if n := recs[0]["processes"]; n != 0.0 {
			t.Errorf("processes = %v, want 0", n)
		}
	})
	t.Run("container", func(t *testing.T) {
		p := newFakeProc(t, 5, 2, false)
		log, recs := sidecarRig(t, Config{ProcDir: p.dir})
		if job := jobLine(t, log); !strings.Contains(job, "every process of this container's process namespace but the collector") {
			t.Errorf("job=%s", job)
		}
		if n := recs[0]["processes"]; n != 5.0 {
			t.Errorf("processes = %v, want the container's 5", n)
		}
	})
}

// TestResourcesPID: --resources-pid measures that process and its
// descendants, and no other.
func TestResourcesPID(t *testing.T) {
	job := startHelperLine(t, "fork", "300ms") // its 3 children started
	other := startHelper(t, "sleep", "10s")
	tree, err := NewProcessTree("/proc", Scope{PIDs: []int{job.Process.Pid}})
	if err != nil {
		t.Fatal(err)
	}
	s := Sample{Time: time.Now(), Attempt: 1, Interval: time.Second}
	if err := tree.Sample(&s); err != nil {
		t.Fatal(err)
	}
	if !tree.isMember(job.Process.Pid) || tree.isMember(other.Process.Pid) || tree.isMember(os.Getpid()) {
		t.Errorf("member: the job %v, another process %v, the collector %v; want true, false, false",
			tree.isMember(job.Process.Pid), tree.isMember(other.Process.Pid), tree.isMember(os.Getpid()))
	}
	if n, _ := s.Value("processes"); n != 4 {
		t.Errorf("processes = %v, want the job and its 3 children", n)
	}
	job.Wait()
	s = Sample{Time: time.Now(), Attempt: 1, Interval: time.Second}
	tree.Sample(&s)
	if n, _ := s.Value("processes"); n != 0 {
		t.Errorf("processes = %v once the job has exited, want 0", n)
	}
}

// cgroupRoot lays out a cgroup hierarchy under a temporary root, v1 (the
// memory controller and cpu,cpuacct mounted together) or v2, with the job's
// cgroup at path made of the real files of testdata/cgroup-v1 or -v2, its
// cgroup.procs listing pids, and a CPU quota of 1.5 cores.
func cgroupRoot(t *testing.T, version int, path string, pids ...int) string {
	t.Helper()
	root := t.TempDir()
	var procs strings.Builder
	for _, p := range pids {
		fmt.Fprintln(&procs, p)
	}
	put := func(dir, from string, extra map[string]string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if from != "" {
			entries, _ := os.ReadDir(from)
			for _, e := range entries {
				b, _ := os.ReadFile(filepath.Join(from, e.Name()))
				os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
			}
		}
		for k, v := range extra {
			os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644)
		}
	}
	if version == 2 {
		put(root, "", map[string]string{"cgroup.controllers": "cpuset cpu io memory pids\n", "cgroup.procs": "1\n"})
		put(filepath.Join(root, path), "testdata/cgroup-v2", map[string]string{"cgroup.procs": procs.String(), "cpu.max": "150000 100000\n"})
		return root
	}
	put(filepath.Join(root, "memory", path), "testdata/cgroup-v1", map[string]string{"cgroup.procs": procs.String()})
	put(filepath.Join(root, "cpu,cpuacct", path), "testdata/cgroup-v1", map[string]string{
		"cgroup.procs": procs.String(), "cpu.cfs_quota_us": "150000\n", "cpu.cfs_period_us": "100000\n"})
	return root
}

// TestJobCgroup finds a named cgroup, v1 or v2, given as /proc/<pid>/cgroup
// names it or as its folder, and refuses one that is not there.
func TestJobCgroup(t *testing.T) {
	const path = "/system.slice/job.service"
	for _, v := range []int{1, 2} {
		root := cgroupRoot(t, v, path, 1)
		want := CgroupPaths{Version: 2, Memory: filepath.Join(root, path)}
		folder := filepath.Join(root, path)
		if v == 1 {
			acct := filepath.Join(root, "cpu,cpuacct", path)
			want = CgroupPaths{Version: 1, Memory: filepath.Join(root, "memory", path), CPU: acct, CPUAcct: acct}
			folder = filepath.Join(root, "memory", path)
		}
		for _, given := range []string{path, folder} {
			got, err := JobCgroup(root, given)
			if err != nil || got != want {
				t.Errorf("v%d %s: got %+v, %v; want %+v", v, given, got, err, want)
			}
		}
		r, err := ReadCgroup(want)
		if err != nil || r.CPULimit != 1.5 {
			t.Errorf("v%d: CPU limit %v, %v; want 1.5 cores", v, r.CPULimit, err)
		}
		for given, msg := range map[string]string{
			"/system.slice/other.service": "no such cgroup",
			"system.slice/job.service":    "not a clean absolute path",
			"/system.slice/../job":        "not a clean absolute path",
		} {
			if _, err := JobCgroup(root, given); err == nil || !strings.Contains(err.Error(), msg) {
				t.Errorf("v%d %s: err = %v, want %q", v, given, err, msg)
			}
		}
	}
}

// TestResourcesCgroup: --resources-cgroup measures that cgroup's figures
// and its processes, v1 and v2, and no other process.
func TestResourcesCgroup(t *testing.T) {
	for _, v := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			job := startHelper(t, "sleep", "10s")
			other := startHelper(t, "sleep", "10s")
			root := cgroupRoot(t, v, "/kubepods/pod1/job", job.Process.Pid)
			log, recs := sidecarRig(t, Config{CgroupRoot: root, CgroupPath: "/kubepods/pod1/job"})
			if job := jobLine(t, log); !strings.HasPrefix(job, `"the processes of cgroup /kubepods/pod1/job"`) {
				t.Errorf("job=%s", job)
			}
			rec := recs[len(recs)-1]
			if n := rec["processes"]; n != 1.0 {
				t.Errorf("processes = %v, want the cgroup's one", n)
			}
			if _, ok := rec["cgroup_memory_bytes"]; !ok || rec["cgroup_cpu_limit_cores"] != 1.5 {
				t.Errorf("no cgroup_memory_bytes, or cgroup_cpu_limit_cores not the quota's 1.5: %v", rec)
			}
			if n := rec["processes"]; n == 2.0 {
				t.Errorf("the process %d outside the cgroup is measured", other.Process.Pid)
			}
		})
	}
}
