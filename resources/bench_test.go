package resources

import (
	"bufio"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSample50 measures one sample of a job of 50 processes: the
// process tree alone, with PSS read (one sample in ten at 1 s), and every
// source of this machine with the record written.
// Reported: the CPU time (user + system) per sample, the share of one core
// that sampling at 1 s takes, and allocations per sample.
func BenchmarkSample50(b *testing.B) {
	for range 50 {
		c := exec.Command(os.Args[0], "sleep", "10m")
		c.Env = append(os.Environ(), "RESOURCES_TEST_HELPER=sleep")
		out, err := c.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Process.Kill(); c.Wait() })
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil { // sleeping
			b.Fatal(err)
		}
	}
	tree, err := NewProcessTree("/proc", Scope{Parent: os.Getpid()})
	if err != nil {
		b.Fatal(err)
	}
	sources := []Source{tree}
	b.Run("process-tree", func(b *testing.B) { benchSources(b, sources, 50) })
	// PSS is read every 10 s at most: at 1 s, one sample in ten pays this.
	b.Run("process-tree-with-pss", func(b *testing.B) {
		benchSources(b, []Source{pssEveryTime{tree}}, 50)
	})
	if p, err := FindCgroup("/sys/fs/cgroup", "/proc/self/cgroup"); err == nil {
		if c, err := NewCgroup(p); err == nil {
			sources = append(sources, c)
		}
	}
	if s, err := NewShm("/dev/shm", slog.New(slog.DiscardHandler)); err == nil {
		sources = append(sources, s)
	}
	b.Run("all-sources", func(b *testing.B) { benchSources(b, sources, 50) })
}

func benchSources(b *testing.B, sources []Source, procs int) {
	b.ReportAllocs()
	var line []byte
	start := cpuTime()
	prev := time.Now()
	for b.Loop() {
		now := time.Now()
		s := Sample{Time: now, Attempt: 1, Interval: now.Sub(prev)}
		prev = now
		for _, src := range sources {
			if err := src.Sample(&s); err != nil {
				b.Fatal(err)
			}
		}
		if v, _ := s.Value("processes"); int(v) != procs {
			b.Fatalf("%v processes, want %d", v, procs)
		}
		line = s.appendJSON(line[:0])
	}
	perSample := (cpuTime() - start) / time.Duration(b.N)
	b.ReportMetric(float64(perSample.Nanoseconds()), "cpu-ns/op")
	b.ReportMetric(perSample.Seconds()*100, "%core@1s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pssEveryTime makes the tree read PSS at every sample.
type pssEveryTime struct{ *ProcessTree }

func (p pssEveryTime) Sample(s *Sample) error {
	p.lastPSS = time.Time{}
	return p.ProcessTree.Sample(s)
}
