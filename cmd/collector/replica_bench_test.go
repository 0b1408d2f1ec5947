package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestReplicasLoad measures N sidecars on one run on the S3 server, each
// with a small tree of its own and one change a second: requests per
// replica per minute in steady state, CPU per replica, and the time until a
// change is in the store. Run by bench/replicas.sh; skipped unless
// COLLECTOR_TEST_BENCH_REPLICAS is set (COLLECTOR_TEST_BENCH_SECONDS: the steady
// window, default 60).
func TestReplicasLoad(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("COLLECTOR_TEST_BENCH_REPLICAS"))
	if n <= 0 {
		t.Skip("COLLECTOR_TEST_BENCH_REPLICAS is not set: a benchmark, run by bench/replicas.sh")
	}
	window := 60 * time.Second
	if s, err := strconv.Atoi(os.Getenv("COLLECTOR_TEST_BENCH_SECONDS")); err == nil && s > 0 {
		window = time.Duration(s) * time.Second
	}
	const run = "load"
	reps, env, f := replicasOnS3(t, n)
	root := f.Open(t)
	var procs []*process
	for _, r := range reps {
		out := filepath.Join(r.dir, "out")
		for j := range 20 {
			writeFile(t, filepath.Join(out, r.name, fmt.Sprintf("f%02d.txt", j)), []byte(r.name))
		}
		procs = append(procs, start(t, t.TempDir(), env, r.args(run, "--resources-interval", "10")...))
	}
	// One change a second in each replica's tree.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, r := range reps {
				_ = os.WriteFile(filepath.Join(r.dir, "out", r.name, "step.txt"), []byte(strconv.Itoa(i)), 0o644)
			}
		}
	}()
	waitFor(t, 120*time.Second, "every replica's tree in the store", func() bool {
		for _, r := range reps {
			if ok, _ := root.Exists(t.Context(), run+"/outputs/"+r.name+"/f19.txt"); !ok {
				return false
			}
		}
		return true
	})
	// Steady state is what is measured: past the first passes and
	// checkpoints.
	time.Sleep(5 * time.Second)
	for _, r := range reps {
		r.traffic.Reset()
	}
	cpu0 := make([]time.Duration, n)
	for i, p := range procs {
		cpu0[i] = cpuTime(p.cmd.Process.Pid)
	}
	// The time until a change is in the store: a new file in one replica's
	// tree every 2 s, the store polled for it.
	var delays []time.Duration
	begin := time.Now()
	for i := 0; time.Since(begin) < window; i++ {
		r := reps[i%n]
		key := fmt.Sprintf("%s/marks/%d.txt", r.name, i)
		writeFile(t, filepath.Join(r.dir, "out", filepath.FromSlash(key)), []byte("x"))
		wrote := time.Now()
		for {
			if ok, _ := root.Exists(t.Context(), run+"/outputs/"+key); ok {
				delays = append(delays, time.Since(wrote))
				break
			}
			if time.Since(wrote) > 60*time.Second {
				t.Fatalf("%s not in the store after 60 s", key)
			}
			time.Sleep(20 * time.Millisecond) // the resolution of the delay measured
		}
		time.Sleep(2*time.Second - time.Since(wrote)%(2*time.Second)) // the load: a change every 2 s
	}
	took := time.Since(begin)
	var requests int
	var cpu time.Duration
	for i, r := range reps {
		requests += r.traffic.Requests("")
		cpu += cpuTime(procs[i].cmd.Process.Pid) - cpu0[i]
	}
	close(stop)
	<-done
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for i, p := range procs {
		if code := p.wait(t, 120*time.Second); code != 0 {
			t.Errorf("replica %s exited %d", reps[i].name, code)
		}
	}
	sort.Slice(delays, func(a, b int) bool { return delays[a] < delays[b] })
	perMin := float64(requests) / float64(n) / took.Minutes()
	t.Logf("replicas=%d window=%v requests/replica/min=%.1f cpu/replica=%.2f%% of a core change-to-store p50=%v max=%v (%d changes)",
		n, took.Round(time.Second), perMin, 100*cpu.Seconds()/float64(n)/took.Seconds(),
		delays[len(delays)/2].Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond), len(delays))
}

// cpuTime is the user and system CPU time of a process so far, from
// /proc/<pid>/stat (clock ticks of 1/100 s).
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command's name, which is in parentheses.
	i := len(data) - 1
	for i > 0 && data[i] != ')' {
		i--
	}
	var fields []string
	start := -1
	for j := i + 2; j <= len(data); j++ {
		if j == len(data) || data[j] == ' ' {
			if start >= 0 {
				fields = append(fields, string(data[start:j]))
			}
			start = -1
		} else if start < 0 {
			start = j
		}
	}
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
