package resources

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/mlsidecar/collector/spool"
	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
	"github.com/mlsidecar/collector/sync"
)

// The test binary is also the job the tests measure: with
// RESOURCES_TEST_HELPER set, TestMain runs a helper instead of the tests.
func TestMain(m *testing.M) {
	if h := os.Getenv("RESOURCES_TEST_HELPER"); h != "" {
		helper(h, os.Args[len(os.Args)-1])
		return
	}
	os.Exit(m.Run())
}

// helper is one of the test jobs.
func helper(name, arg string) {
	switch name {
	case "burn": // burn one core for arg seconds of wall time
		d, _ := time.ParseDuration(arg)
		burnUntil(func(elapsed time.Duration) bool { return elapsed >= d })
	case "burn-cpu": // burn arg of CPU time
		d, _ := time.ParseDuration(arg)
		burnUntil(func(time.Duration) bool { return ownCPU() >= d })
	case "alloc": // allocate and touch arg MiB, hold it a second
		n, _ := strconv.Atoi(arg)
		b := make([]byte, n<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		time.Sleep(time.Second) // the job: it holds its memory a while
		fmt.Println(b[len(b)-4096])
	case "fork": // three grandchildren that each burn arg of CPU and exit, then a pause; "started" once they are
		var cmds []*exec.Cmd
		for range 3 {
			c := exec.Command(os.Args[0], "burn-cpu", arg)
			c.Env = append(os.Environ(), "RESOURCES_TEST_HELPER=burn-cpu")
			if err := c.Start(); err != nil {
				os.Exit(3)
			}
			cmds = append(cmds, c)
		}
		fmt.Println("started")
		for _, c := range cmds {
			c.Wait()
		}
		time.Sleep(500 * time.Millisecond) // the job: it lives on after its children
	case "oom": // join the cgroup whose cgroup.procs is arg, then allocate 256 MiB
		if err := os.WriteFile(arg, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		b := make([]byte, 256<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println(b[len(b)-4096])
	case "sleep": // "sleeping", then a job that sleeps arg
		d, _ := time.ParseDuration(arg)
		fmt.Println("sleeping")
		time.Sleep(d)
	}
}

func burnUntil(done func(elapsed time.Duration) bool) {
	start := time.Now()
	x := 0
	for !done(time.Since(start)) {
		for i := range 100000 {
			x += i
		}
	}
	if x == 42 {
		fmt.Println(x)
	}
}

func ownCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startHelper starts the test binary as the helper name.
func startHelper(t *testing.T, name, arg string) *exec.Cmd {
	t.Helper()
	c := exec.Command(os.Args[0], name, arg)
	c.Env = append(os.Environ(), "RESOURCES_TEST_HELPER="+name)
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c
}

// startHelperLine starts the test binary as the helper name and returns
// once it has printed its first line.
func startHelperLine(t *testing.T, name, arg string) *exec.Cmd {
	t.Helper()
	c := exec.Command(os.Args[0], name, arg)
	c.Env = append(os.Environ(), "RESOURCES_TEST_HELPER="+name)
	c.Stderr = os.Stderr
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("helper %s: %v", name, err)
	}
	return c
}

// waitUntil polls cond until it holds, for what has no event to wait on,
// and fails the test after 10 s (of the bubble's clock in a synctest test).
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("no %s in 10 s", what)
		}
	}
}

// cpuOf is the CPU time the kernel counted for a helper that was waited
// for, its reaped children included.
func cpuOf(c *exec.Cmd) float64 {
	return (c.ProcessState.UserTime() + c.ProcessState.SystemTime()).Seconds()
}

// memState is a run's state section in memory.
type memState struct {
	mu    stdsync.Mutex
	raw   []byte
	saves int
}

func (m *memState) Load(v any) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.raw == nil {
		return false, nil
	}
	return true, json.Unmarshal(m.raw, v)
}

func (m *memState) Save(_ context.Context, v any) error {
	b, err := json.Marshal(v)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.raw, m.saves = b, m.saves+1
	return err
}

// rig is one attempt of a run: a spool over a store, and the sampler.
type rig struct {
	t       *testing.T
	store   *blob.Bucket // the store's root, for the test's reads
	run     string
	spool   *spool.Spool
	sampler *Sampler
	logs    *bytes.Buffer
}

// newStore is a folder store: each bucket opened on it is its own (the
// spool closes the bucket it was given).
func newStore(t *testing.T) string { return t.TempDir() }

func openStore(t *testing.T, dir string) *blob.Bucket {
	t.Helper()
	b, err := fileblob.OpenBucket(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newRig(t *testing.T, storeDir string, spoolDir string, state spool.Section, cfg Config) *rig {
	t.Helper()
	sc := sync.DefaultConfig()
	sc.Interval = 50 * time.Millisecond
	sc.ShutdownTimeout = 5 * time.Second
	if cfg.Run == "" {
		cfg.Run = "r1"
	}
	if cfg.Attempt == 0 {
		cfg.Attempt = 1
	}
	if cfg.Interval == 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.OpenNVML == nil {
		cfg.OpenNVML = func() (NVML, error) { return nil, fmt.Errorf("no GPU: not on this test") }
	}
	logs := &bytes.Buffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, nil))
	up := sync.NewFileUploader(sc, stores.Target{Bucket: blob.PrefixedBucket(openStore(t, storeDir), cfg.Run+"/")}, sync.NewBudget(sc.MemoryBudget))
	sp, err := spool.New(spool.Config{Dir: spoolDir, Uploader: up, Interval: sc.Interval, GiveUp: sc.ShutdownTimeout})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, sp, state, stores.Target{Bucket: blob.PrefixedBucket(openStore(t, storeDir), cfg.Run+"/"+Folder+"/")})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, store: openStore(t, storeDir), run: cfg.Run, spool: sp, sampler: s, logs: logs}
}

type lockedWriter struct {
	mu stdsync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// start runs the sampler and the spool until the returned function is
// called, which waits for both.
func (r *rig) start() func() {
	stop, cancel := context.WithCancel(context.Background())
	deadline, cancelDeadline := context.WithTimeout(context.Background(), 30*time.Second)
	errs := make(chan error, 2)
	go func() { errs <- r.sampler.Run(stop, deadline) }()
	go func() { errs <- r.spool.Run(stop, deadline) }()
	return func() {
		r.t.Helper()
		cancel()
		for range 2 {
			if err := <-errs; err != nil {
				r.t.Errorf("run: %v", err)
			}
		}
		cancelDeadline()
	}
}

// waitSamples waits until the sampler has taken n samples in all. The
// sampler tells no one of a sample: its summary is polled.
func (r *rig) waitSamples(n int) {
	r.t.Helper()
	waitUntil(r.t, fmt.Sprintf("%d samples", n), func() bool { return r.sampler.Summary().Samples >= n })
}

// summary reads summary.json from the store.
func (r *rig) summary() Summary {
	r.t.Helper()
	b, err := r.store.ReadAll(context.Background(), r.run+"/resources/summary.json")
	if err != nil {
		r.t.Fatalf("summary.json: %v", err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		r.t.Fatalf("summary.json: %v\n%s", err, b)
	}
	return s
}

// series reads every record of the chunks in the store, in name order.
func (r *rig) series() []map[string]any {
	r.t.Helper()
	ctx := context.Background()
	iter := r.store.List(&blob.ListOptions{Prefix: r.run + "/resources/"})
	var out []map[string]any
	for {
		obj, err := iter.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			r.t.Fatal(err)
		}
		if !strings.HasSuffix(obj.Key, ".jsonl.gz") {
			continue
		}
		b, err := r.store.ReadAll(ctx, obj.Key)
		if err != nil {
			r.t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			r.t.Fatalf("%s: %v", obj.Key, err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			r.t.Fatalf("%s: %v", obj.Key, err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				r.t.Fatalf("%s: a line is not JSON: %q", obj.Key, line)
			}
			out = append(out, rec)
		}
	}
	return out
}

func within(got, want, tolerance float64) bool { return math.Abs(got-want) <= tolerance*want }

// TestBurnerOneCore: a job that burns one core reads 1.0 core in the
// summary, and its CPU time is what the kernel counted for it.
func TestBurnerOneCore(t *testing.T) {
	store := newStore(t)
	r := newRig(t, store, t.TempDir(), &memState{}, Config{Wrapper: true, Interval: 100 * time.Millisecond, ChunkAge: 500 * time.Millisecond})
	stop := r.start()
	burner := startHelper(t, "burn", "2s")
	burner.Wait()
	stop()

	s := r.summary()
	kernel := cpuOf(burner)
	t.Logf("summary: mean %.3f cores, peak %.3f, %.3f core-seconds over %.3f s; the kernel counted %.3f CPU seconds",
		s.CPU.MeanCores, s.CPU.PeakCores, s.CPU.CoreSeconds, s.DurationSeconds, kernel)
	if !s.Final {
		t.Error("summary.json is not marked final")
	}
	if !within(s.CPU.CoreSeconds, kernel, 0.15) {
		t.Errorf("core_seconds = %.3f, want the kernel's %.3f ± 15%%", s.CPU.CoreSeconds, kernel)
	}
	// The burner gets a whole core only on a machine with one to spare: the
	// mean is checked against 1.0 then, and against what it got otherwise.
	got := kernel / s.DurationSeconds
	if got >= 0.85 {
		if !within(s.CPU.MeanCores, 1.0, 0.15) {
			t.Errorf("mean_cores = %.3f, want 1.0 ± 15%%", s.CPU.MeanCores)
		}
	} else {
		t.Logf("the machine is busy: the burner got %.2f of a core", got)
		if !within(s.CPU.MeanCores, got, 0.15) {
			t.Errorf("mean_cores = %.3f, want the %.3f cores the burner got ± 15%%", s.CPU.MeanCores, got)
		}
	}

	// The series: one record per sample, in order, named with units.
	recs := r.series()
	if len(recs) != s.Samples {
		t.Errorf("the series has %d records, the summary counts %d samples", len(recs), s.Samples)
	}
	if len(recs) < 10 {
		t.Errorf("%d records in 2 s at 100 ms, want 10 or more", len(recs))
	}
	var prev time.Time
	for i, rec := range recs {
		ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(rec["timestamp"]))
		if err != nil || !ts.After(prev) {
			t.Fatalf("record %d: timestamp %v not after %v", i, rec["timestamp"], prev)
		}
		prev = ts
		for _, k := range []string{"attempt", "interval_seconds", "cpu_seconds", "rss_bytes", "processes", "threads", "open_fds", "read_bytes", "write_bytes"} {
			if _, ok := rec[k]; !ok {
				t.Fatalf("record %d has no %s: %v", i, k, rec)
			}
		}
		// A rate needs a window of half an interval: the first record, right
		// after the baseline, has none; every one a whole interval after the
		// one before has one, of no more cores than the machine has.
		cores, ok := rec["cpu_cores"].(float64)
		switch {
		case i == 0 && ok:
			t.Errorf("record 0, %v s after the baseline, has a rate: %v cores", rec["interval_seconds"], cores)
		case rec["interval_seconds"].(float64) >= 0.05 && !ok:
			t.Errorf("record %d, %v s after the one before, has no cpu_cores", i, rec["interval_seconds"])
		case cores > float64(runtime.NumCPU()):
			t.Errorf("record %d: %v cores on a machine of %d", i, cores, runtime.NumCPU())
		}
	}
	// The last record is what Latest gives the Prometheus gauges.
	latest, ok := r.sampler.Latest()
	if last := recs[len(recs)-1]; !ok || latest.Time.Format(time.RFC3339Nano) != last["timestamp"] {
		t.Errorf("Latest() at %v (%v), the last record at %v", latest.Time, ok, last["timestamp"])
	} else if v, _ := latest.Value("cpu_seconds"); v != last["cpu_seconds"] {
		t.Errorf("Latest() cpu_seconds %v, the last record's %v", v, last["cpu_seconds"])
	}
	if n := len(strings.Split(strings.TrimSpace(r.logs.String()), "\n")); strings.Count(r.logs.String(), "no GPU") != 1 {
		t.Errorf("the log says \"no GPU\" %d times in %d lines, want once:\n%s", strings.Count(r.logs.String(), "no GPU"), n, r.logs)
	}
}

// TestPeakMemory: a job that allocates and touches 200 MiB shows a peak
// of 200 MiB or more.
func TestPeakMemory(t *testing.T) {
	store := newStore(t)
	r := newRig(t, store, t.TempDir(), &memState{}, Config{Wrapper: true, Interval: 100 * time.Millisecond})
	stop := r.start()
	startHelper(t, "alloc", "200").Wait()
	stop()
	s := r.summary()
	t.Logf("peak RSS %d MiB, peak PSS %d MiB", int(s.Memory.PeakRSSBytes)>>20, int(s.Memory.PeakPSSBytes)>>20)
	if s.Memory.PeakRSSBytes < 200<<20 {
		t.Errorf("peak_rss_bytes = %.0f, want >= 200 MiB", s.Memory.PeakRSSBytes)
	}
}

// TestFirstSampleAfterTheCommandStarts: in wrapper mode nothing is sampled
// before the command runs its own program. Until its exec, the command's
// process is a copy of the collector sharing its memory: a sample then
// counted the collector's RSS (54 MiB) as the job's peak, for a job of 1.
// Here a child holding 200 MiB before the start stands for that copy.
func TestFirstSampleAfterTheCommandStarts(t *testing.T) {
	store := newStore(t)
	started := make(chan struct{})
	r := newRig(t, store, t.TempDir(), &memState{}, Config{Wrapper: true, Interval: 50 * time.Millisecond, CommandStarted: started})
	stop := r.start()
	startHelper(t, "alloc", "200").Wait()
	// As the wrapper does, started is closed once the command's exec is
	// done (Start returns then): a sample between its fork and its exec
	// would see the test binary's memory.
	command := startHelper(t, "sleep", "300ms")
	close(started)
	command.Wait()
	stop()
	s := r.summary()
	if s.Samples < 2 {
		t.Errorf("%d samples, want the command's", s.Samples)
	}
	if s.Memory.PeakRSSBytes >= 100<<20 {
		t.Errorf("peak_rss_bytes = %d MiB: a process sampled before the command started", int(s.Memory.PeakRSSBytes)>>20)
	}
}

// TestGrandchildren: a child that forks grandchildren, which exit before
// the end, is counted whole.
func TestGrandchildren(t *testing.T) {
	store := newStore(t)
	r := newRig(t, store, t.TempDir(), &memState{}, Config{Wrapper: true, Interval: 100 * time.Millisecond})
	stop := r.start()
	child := startHelper(t, "fork", "400ms")
	child.Wait()
	stop()
	s := r.summary()
	kernel := cpuOf(child)
	t.Logf("core-seconds %.3f; the kernel counted %.3f for the child and its grandchildren", s.CPU.CoreSeconds, kernel)
	if kernel < 1.2 {
		t.Fatalf("the kernel counted %.3f s, want 3 × 0.4 s or more", kernel)
	}
	if !within(s.CPU.CoreSeconds, kernel, 0.15) {
		t.Errorf("core_seconds = %.3f, want the kernel's %.3f ± 15%%", s.CPU.CoreSeconds, kernel)
	}
	most := 0.0
	for _, rec := range r.series() {
		most = max(most, rec["processes"].(float64))
	}
	if most < 4 {
		t.Errorf("at most %v processes seen, want the child and its 3 grandchildren", most)
	}
}

// TestParentAndChildEndTogether: a shell that runs a burner and exits
// when it does (sh -c 'job'): both end between two samples, the burner
// reaped by the shell, the shell by the collector. The burner's time is in
// the shell's, which the collector's reaped children hold: counted once.
func TestParentAndChildEndTogether(t *testing.T) {
	store := newStore(t)
	r := newRig(t, store, t.TempDir(), &memState{}, Config{Wrapper: true, Interval: 100 * time.Millisecond})
	stop := r.start()
	sh := exec.Command("sh", "-c", `"$0" burn-cpu 1s; exit 0`, os.Args[0])
	sh.Env = append(os.Environ(), "RESOURCES_TEST_HELPER=burn-cpu")
	if err := sh.Run(); err != nil {
		t.Fatal(err)
	}
	r.waitSamples(r.sampler.Summary().Samples + 2) // after both ended
	stop()
	s := r.summary()
	kernel := cpuOf(sh)
	t.Logf("core-seconds %.3f, peak %.3f cores; the kernel counted %.3f", s.CPU.CoreSeconds, s.CPU.PeakCores, kernel)
	if !within(s.CPU.CoreSeconds, kernel, 0.15) {
		t.Errorf("core_seconds = %.3f, want the kernel's %.3f ± 15%%", s.CPU.CoreSeconds, kernel)
	}
	if s.CPU.PeakCores > float64(runtime.NumCPU())+0.5 {
		t.Errorf("peak_cores = %.3f on a machine of %d cores", s.CPU.PeakCores, runtime.NumCPU())
	}
}

// TestFullDisk: the spool's disk refuses the first chunk of the series
// (ENOSPC: it is written to /dev/full). The sampler goes on: its later
// samples are stored, the summary counts every sample, and the run ends
// without an error, the lost samples logged.
func TestFullDisk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spoolDir := t.TempDir()
		r := newRig(t, t.TempDir(), spoolDir, &memState{}, Config{Wrapper: true, Interval: 50 * time.Millisecond, ChunkAge: 200 * time.Millisecond})
		open := filepath.Join(spoolDir, ".open", Folder)
		if err := os.MkdirAll(open, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/dev/full", filepath.Join(open, spool.ChunkName(Series, 1, 0))); err != nil {
			t.Fatal(err)
		}
		stop := r.start()
		time.Sleep(time.Second) // on the bubble's clock
		stop()                  // fails the test if Run returns an error
		s := r.summary()
		stored := len(r.series())
		t.Logf("%d samples in the summary, %d in the stored series", s.Samples, stored)
		if stored == 0 || stored >= s.Samples {
			t.Errorf("%d samples stored of the %d the summary counts; want the ones after the lost chunk", stored, s.Samples)
		}
		if !strings.Contains(r.logs.String(), "could not be written to the spool") {
			t.Errorf("the lost samples are not logged:\n%s", r.logs)
		}
	})
}

// TestChunkNeverOpened: a chunk the spool cannot even create (its open
// file's name is taken by a folder) takes a sequence number that no chunk
// will have; the state moves past it all the same, so that a retry on a
// new disk resumes from the samples stored, not from none.
func TestChunkNeverOpened(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spoolDir, state := t.TempDir(), &memState{}
		r := newRig(t, t.TempDir(), spoolDir, state, Config{Interval: 50 * time.Millisecond, ChunkAge: 200 * time.Millisecond})
		if err := os.MkdirAll(filepath.Join(spoolDir, ".open", Folder, spool.ChunkName(Series, 1, 0)), 0o755); err != nil {
			t.Fatal(err)
		}
		stop := r.start()
		time.Sleep(time.Second) // on the bubble's clock
		stop()
		var sec section
		state.Load(&sec)
		s := r.summary()
		if sec.Stored < 2 || sec.Aggregates.Samples != s.Samples {
			t.Errorf("the section: %d chunks stored, %d samples; want the chunks after the one never opened, and the summary's %d samples", sec.Stored, sec.Aggregates.Samples, s.Samples)
		}
	})
}

// TestOrphanedGrandchild: a grandchild whose parent exits first is adopted
// outside the tree, and still counted.
func TestOrphanedGrandchild(t *testing.T) {
	dir := t.TempDir()
	store := newStore(t)
	r := newRig(t, store, dir, &memState{}, Config{Wrapper: true, Interval: 100 * time.Millisecond})
	stop := r.start()
	pidFile := filepath.Join(dir, "pid")
	// sh starts a burner in the background and exits: the burner is
	// adopted by init (or a subreaper), not by anyone in the tree. (sh
	// lives long enough to be sampled: a parent that comes and goes
	// between two samples is never seen, nor what it leaves adopted.)
	sh := exec.Command("sh", "-c", `"$0" burn-cpu 1s & echo $! > "$1"; sleep 0.3`, os.Args[0], pidFile)
	sh.Env = append(os.Environ(), "RESOURCES_TEST_HELPER=burn-cpu")
	if err := sh.Run(); err != nil {
		t.Fatal(err)
	}
	// Wait for the burner to end.
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitUntil(t, "end of the orphaned burner", func() bool { return syscall.Kill(pid, 0) != nil })
	r.waitSamples(r.sampler.Summary().Samples + 2)
	stop()
	s := r.summary()
	// The burner used 1 s of CPU; what it used after the last sample that
	// saw it (one interval at most) is not counted.
	t.Logf("core-seconds %.3f", s.CPU.CoreSeconds)
	if s.CPU.CoreSeconds < 0.85 || s.CPU.CoreSeconds > 1.15 {
		t.Errorf("core_seconds = %.3f, want the orphan's 1 s of CPU ± 15%%", s.CPU.CoreSeconds)
	}
}

// TestResume: a retried job continues the series and the summary and
// counts no sample twice, whether the spool was lost (a new pod) or kept
// chunks that the store did not have yet (a restart on the same disk).
func TestResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newStore(t)
		state := &memState{}
		spoolDir := t.TempDir()

		// Attempt 1: its chunks reach the store.
		r1 := newRig(t, store, spoolDir, state, Config{Attempt: 1, ChunkAge: 200 * time.Millisecond})
		stop := r1.start()
		time.Sleep(600 * time.Millisecond) // it runs a while, on the bubble's clock, as the attempts below
		stop()
		s1 := r1.summary()

		// Attempt 2 on the same disk: its spool never uploads (the engine does
		// not run), so its chunks stay in the spool and the state does not move.
		r2 := newRig(t, store, spoolDir, state, Config{Attempt: 2, ChunkAge: 200 * time.Millisecond})
		stop2, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r2.sampler.Run(stop2, context.Background()) }()
		time.Sleep(600 * time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		s2 := r2.sampler.Summary()
		if s2.Samples <= s1.Samples {
			t.Fatalf("attempt 2's summary has %d samples, attempt 1 had %d", s2.Samples, s1.Samples)
		}

		// Attempt 3 on the same disk uploads attempt 2's chunks and its own.
		r3 := newRig(t, store, spoolDir, state, Config{Attempt: 3, ChunkAge: 200 * time.Millisecond})
		stop = r3.start()
		time.Sleep(400 * time.Millisecond)
		stop()

		// Attempt 4 on a new disk: only the state carries over.
		r4 := newRig(t, store, t.TempDir(), state, Config{Attempt: 4, ChunkAge: 200 * time.Millisecond})
		stop = r4.start()
		time.Sleep(400 * time.Millisecond)
		stop()

		s := r4.summary()
		recs := r4.series()
		if s.Samples != len(recs) {
			t.Errorf("the summary counts %d samples; the store holds %d records", s.Samples, len(recs))
		}
		if got, want := fmt.Sprint(s.Attempts), "[1 2 3 4]"; got != want {
			t.Errorf("attempts = %s, want %s", got, want)
		}
		var attempts []int
		for _, rec := range recs {
			a := int(rec["attempt"].(float64))
			if n := len(attempts); n == 0 || attempts[n-1] != a {
				attempts = append(attempts, a)
			}
		}
		if got, want := fmt.Sprint(attempts), "[1 2 3 4]"; got != want {
			t.Errorf("the series' attempts in order: %s, want %s", got, want)
		}
		var secs float64
		for _, rec := range recs {
			secs += rec["interval_seconds"].(float64)
		}
		if !within(s.DurationSeconds, secs, 0.001) {
			t.Errorf("duration_seconds = %.3f, the records' intervals add up to %.3f", s.DurationSeconds, secs)
		}
	})
}

// previousSection is the section a sampler of the previous version wrote
// (before its chunks were a spool.Ledger), after three chunks of eight
// samples were stored.
const previousSection = `{"version":1,"stored":3,"aggregates":{"samples":8,"attempts":[1],"first":"2000-01-01T00:00:00Z","last":"2000-01-01T00:00:00.6Z","seconds":0.6,"core_seconds":0,"peak_cores":0,"peak_rss":0,"shm_size":25276182528}}`

// A sampler resumes from a section the previous version wrote, with two
// chunks of earlier attempts in the spool (one under the name resource
// chunks had before ChunkName's): those are stored, the count of stored
// chunks and the aggregates continue from the section's, and the series
// goes on at the next sequence number.
func TestResumeFromAPreviousSection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, spoolDir := newStore(t), t.TempDir()
		state := &memState{raw: []byte(previousSection)}
		chunk := func(attempt int, ms ...int) []byte {
			var b []byte
			for _, m := range ms {
				smp := Sample{Time: time.Date(2000, 1, 1, 0, 0, 0, m*1e6, time.UTC), Attempt: attempt, Interval: 100 * time.Millisecond}
				b = smp.appendJSON(b)
			}
			return spool.EncodeChunk(b)
		}
		os.MkdirAll(filepath.Join(spoolDir, Folder), 0o755)
		os.WriteFile(filepath.Join(spoolDir, Folder, "000003-a1.jsonl.gz"), chunk(1, 700, 800), 0o644)
		os.WriteFile(filepath.Join(spoolDir, Folder, spool.ChunkName(Series, 2, 4)), chunk(2, 900), 0o644)

		r := newRig(t, store, spoolDir, state, Config{Attempt: 3, ChunkAge: 200 * time.Millisecond})
		stop := r.start()
		time.Sleep(500 * time.Millisecond) // on the bubble's clock
		stop()

		recs := r.series()
		var attempts []int
		for _, rec := range recs {
			if a := int(rec["attempt"].(float64)); len(attempts) == 0 || attempts[len(attempts)-1] != a {
				attempts = append(attempts, a)
			}
		}
		if got := fmt.Sprint(attempts); got != "[1 2 3]" {
			t.Errorf("the series' attempts in order: %s, want [1 2 3]", got)
		}
		s := r.summary()
		if s.Samples != 8+len(recs) {
			t.Errorf("the summary counts %d samples, want the section's 8 and the %d records in the store", s.Samples, len(recs))
		}
		if got := fmt.Sprint(s.Attempts); got != "[1 2 3]" {
			t.Errorf("attempts = %s, want [1 2 3]", got)
		}
		var own []string
		for key := range storetest.Objects(t, r.store, r.run+"/resources/") {
			if strings.HasPrefix(key, Series+".000003.") {
				own = append(own, key)
			}
		}
		sort.Strings(own)
		if len(own) == 0 || own[0] != spool.ChunkName(Series, 3, 5) {
			t.Fatalf("attempt 3's chunks: %v; want the first numbered 5", own)
		}
		var sec section
		state.Load(&sec)
		if want := 5 + len(own); sec.Stored != want || sec.Aggregates.Samples != s.Samples {
			t.Errorf("the section: %d chunks stored, %d samples; want %d, %d", sec.Stored, sec.Aggregates.Samples, want, s.Samples)
		}
	})
}

// TestCgroupFixtures reads real v1 files (copied from a v1 machine, the OOM
// ones after a live kill in a 32 MiB cgroup) and v2 files in the kernel's
// format.
func TestCgroupFixtures(t *testing.T) {
	v1 := func(dir string) CgroupPaths {
		return CgroupPaths{Version: 1, Memory: dir, CPU: dir, CPUAcct: dir}
	}
	tests := []struct {
		name                string
		paths               CgroupPaths
		memory, limit, peak uint64
		oomKills            uint64
	}{
		{"v1", v1("testdata/cgroup-v1"), 9285632, 0, 18055168, 0},
		{"v1 OOM", v1("testdata/cgroup-v1-oom"), 262144, 32 << 20, 32 << 20, 1},
		{"v2", CgroupPaths{Version: 2, Memory: "testdata/cgroup-v2"}, 2580480, 0, 8536064, 0},
		{"v2 OOM", CgroupPaths{Version: 2, Memory: "testdata/cgroup-v2-oom"}, 270336, 32 << 20, 32 << 20, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ReadCgroup(tt.paths)
			if err != nil {
				t.Fatal(err)
			}
			if r.Memory != tt.memory || r.Limit != tt.limit || r.Peak != tt.peak || r.OOMKills != tt.oomKills {
				t.Errorf("got memory %d limit %d peak %d oom kills %d, want %d %d %d %d",
					r.Memory, r.Limit, r.Peak, r.OOMKills, tt.memory, tt.limit, tt.peak, tt.oomKills)
			}
		})
	}

	// An OOM kill between two samples is recorded as one, with its limit,
	// in the sample and in the summary.
	for _, v := range []struct{ before, after CgroupPaths }{
		{v1("testdata/cgroup-v1"), v1("testdata/cgroup-v1-oom")},
		{CgroupPaths{Version: 2, Memory: "testdata/cgroup-v2"}, CgroupPaths{Version: 2, Memory: "testdata/cgroup-v2-oom"}},
	} {
		c, err := NewCgroup(v.before)
		if err != nil {
			t.Fatal(err)
		}
		c.paths = v.after
		s := Sample{Time: time.Now(), Attempt: 1, Interval: 10 * time.Second}
		if err := c.Sample(&s); err != nil {
			t.Fatal(err)
		}
		kills, _ := s.Value("cgroup_oom_kills")
		limit, _ := s.Value("cgroup_memory_limit_bytes")
		throttled, _ := s.Value("cgroup_throttled_seconds")
		if kills != 1 || limit != 32<<20 {
			t.Errorf("v%d: cgroup_oom_kills %v, cgroup_memory_limit_bytes %v; want 1 and 33554432", v.after.Version, kills, limit)
		}
		if !within(throttled, 5.120344, 0.001) {
			t.Errorf("v%d: cgroup_throttled_seconds %v, want 5.120344", v.after.Version, throttled)
		}
		var a Aggregates
		a.Add(&s)
		sum := a.Summary("r", true, time.Now())
		if sum.Memory.OOMKills != 1 || sum.Memory.OOMKillLimitBytes != 32<<20 || sum.Memory.CgroupPeakOfLimit != 1 {
			t.Errorf("v%d: summary memory %+v, want 1 OOM kill at a 32 MiB limit, peak = limit", v.after.Version, sum.Memory)
		}
	}
}

// TestCgroupLiveOOM makes a 32 MiB memory cgroup under the collector's own
// (v1, as on the test machine), lets a process in it be OOM-killed, and
// checks that the sampler of that cgroup records the kill.
func TestCgroupLiveOOM(t *testing.T) {
	own, err := FindCgroup("/sys/fs/cgroup", "/proc/self/cgroup")
	if err != nil {
		t.Skip(err)
	}
	if own.Version != 1 {
		t.Skip("the live OOM test makes a v1 cgroup; this machine is v2")
	}
	dir := filepath.Join(own.Memory, fmt.Sprintf("collector-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup here: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.Itoa(32<<20)), 0); err != nil {
		t.Skipf("cannot set a memory limit: %v", err)
	}
	paths := CgroupPaths{Version: 1, Memory: dir}
	c, err := NewCgroup(paths)
	if err != nil {
		t.Fatal(err)
	}
	h := exec.Command(os.Args[0], "oom", filepath.Join(dir, "cgroup.procs"))
	h.Env = append(os.Environ(), "RESOURCES_TEST_HELPER=oom")
	err = h.Run()
	ws, _ := h.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the helper was not killed: %v", err)
	}
	s := Sample{Time: time.Now(), Attempt: 1, Interval: time.Second}
	if err := c.Sample(&s); err != nil {
		t.Fatal(err)
	}
	kills, _ := s.Value("cgroup_oom_kills")
	limit, _ := s.Value("cgroup_memory_limit_bytes")
	peak, _ := s.Value("cgroup_memory_peak_bytes")
	if kills != 1 || limit != 32<<20 || peak < 31<<20 {
		t.Errorf("cgroup_oom_kills %v, limit %v, peak %v; want 1 kill at 32 MiB, a peak at the limit", kills, limit, peak)
	}
}

// fakeNVML is one GPU with MIG on and one MIG device.
type fakeNVML struct{ devices []GPUDevice }

func (f *fakeNVML) Devices() ([]GPUDevice, error) { return f.devices, nil }
func (f *fakeNVML) Shutdown()                     {}

type fakeGPU struct {
	info  GPUInfo
	r     GPUReading
	procs map[int]uint64
}

func (g *fakeGPU) Info() GPUInfo                      { return g.info }
func (g *fakeGPU) Read() (GPUReading, error)          { return g.r, nil }
func (g *fakeGPU) Processes() (map[int]uint64, error) { return g.procs, nil }

// TestGPU: each device's figures under its name, the job's share of its
// memory, MIG devices listed as such, and the summary's GPU figures.
func TestGPU(t *testing.T) {
	nan := math.NaN()
	gpu := &fakeGPU{
		info:  GPUInfo{ID: "0", Name: "NVIDIA H100 80GB HBM3", UUID: "GPU-1"},
		r:     GPUReading{UtilPercent: 50, MemoryUsed: 10 << 30, MemoryTotal: 80 << 30, PowerWatts: 312.5, TemperatureC: 61, SMClockMHz: 1980},
		procs: map[int]uint64{100: 4 << 30, 200: 6 << 30},
	}
	mig := &fakeGPU{
		info: GPUInfo{ID: "0_mig1", Name: "NVIDIA H100 80GB HBM3 MIG 1g.10gb", UUID: "MIG-2", MIG: true},
		r:    GPUReading{UtilPercent: nan, MemoryUsed: 1 << 30, MemoryTotal: 10 << 30, PowerWatts: nan, TemperatureC: nan, SMClockMHz: nan},
	}
	g, err := NewGPU(&fakeNVML{[]GPUDevice{gpu, mig}}, func(pid int) bool { return pid == 100 })
	if err != nil {
		t.Fatal(err)
	}
	if d := g.Describe(); !strings.Contains(d, "gpu0_mig1: MIG device") {
		t.Errorf("Describe() = %q, want the MIG device listed as one", d)
	}
	var a Aggregates
	a.name(g.Devices())
	for i, util := range []float64{50, 100, 0} {
		gpu.r.UtilPercent = util
		s := Sample{Time: time.Unix(int64(i*10), 0), Attempt: 1, Interval: 10 * time.Second}
		if err := g.Sample(&s); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			var line []byte
			line = s.appendJSON(line)
			want := `"gpu0_util_percent":50,"gpu0_memory_used_bytes":10737418240,"gpu0_memory_total_bytes":85899345920,"gpu0_power_watts":312.5,"gpu0_temperature_celsius":61,"gpu0_sm_clock_mhz":1980,"gpu0_job_memory_bytes":4294967296,"gpu0_mig1_memory_used_bytes":1073741824,"gpu0_mig1_memory_total_bytes":10737418240,"gpu0_mig1_job_memory_bytes":0}`
			if !strings.Contains(string(line), want) {
				t.Errorf("record:\n%s\nwant it to hold\n%s", line, want)
			}
		}
		a.Add(&s)
	}
	sum := a.Summary("r", true, time.Now())
	if len(sum.GPUs) != 2 {
		t.Fatalf("%d GPUs in the summary, want 2: %+v", len(sum.GPUs), sum.GPUs)
	}
	g0 := sum.GPUs[0]
	if g0.MeanUtilPercent != 50 || g0.PeakUtilPercent != 100 || g0.PeakMemoryBytes != 10<<30 || g0.PeakJobMemory != 4<<30 ||
		!within(g0.GPUHours, 30.0/3600, 1e-3) || !within(g0.BusyGPUHours, 15.0/3600, 1e-3) || g0.Name != "NVIDIA H100 80GB HBM3" {
		t.Errorf("gpu0 summary %+v", g0)
	}
	if m := sum.GPUs[1]; !m.MIG || m.ID != "0_mig1" || m.PeakMemoryBytes != 1<<30 {
		t.Errorf("MIG device summary %+v", m)
	}
}

// TestShmWarning: a small /dev/shm more than 80 % full is warned about once.
func TestShmWarning(t *testing.T) {
	var logs bytes.Buffer
	s, err := NewShm("/dev/shm", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Skip(err)
	}
	used := uint64(50 << 20)
	s.statfs = func(string) (uint64, uint64, error) { return 64 << 20, used, nil }
	for range 3 {
		var smp Sample
		if err := s.Sample(&smp); err != nil {
			t.Fatal(err)
		}
		used = 60 << 20
	}
	if n := strings.Count(logs.String(), "bus error"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
	// A large shm is not warned about, however full.
	logs.Reset()
	s, _ = NewShm("/dev/shm", slog.New(slog.NewTextHandler(&logs, nil)))
	s.statfs = func(string) (uint64, uint64, error) { return 8 << 30, 8 << 30, nil }
	var smp Sample
	s.Sample(&smp)
	if logs.Len() != 0 {
		t.Errorf("warned about a full 8 GiB shm: %s", logs.String())
	}
	if v, _ := smp.Value("shm_size_bytes"); v != 8<<30 {
		t.Errorf("shm_size_bytes = %v", v)
	}
}

// TestRecoverOpenChunk: a chunk a kill left open is sealed with its whole
// records, and counted.
func TestRecoverOpenChunk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newStore(t)
		state := &memState{}
		spoolDir := t.TempDir()
		r1 := newRig(t, store, spoolDir, state, Config{Attempt: 1})
		// Three samples into the open chunk, then "killed": never sealed.
		for i := range 3 {
			if err := r1.sampler.sample(time.Now().Add(time.Duration(i) * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
		// Cut the last record short, as a kill in the middle of a write would.
		open := r1.sampler.prod.OpenPath(r1.sampler.out.Name())
		b, _ := os.ReadFile(open)
		os.WriteFile(open, b[:len(b)-3], 0o644)

		r2 := newRig(t, store, spoolDir, state, Config{Attempt: 2})
		stop := r2.start()
		time.Sleep(250 * time.Millisecond) // on the bubble's clock
		stop()
		s := r2.summary()
		recs := r2.series()
		if s.Samples != len(recs) {
			t.Errorf("the summary counts %d samples; the store holds %d records", s.Samples, len(recs))
		}
		first := 0
		for _, rec := range recs {
			if rec["attempt"].(float64) == 1 {
				first++
			}
		}
		if first < 2 || first > 3 {
			t.Errorf("%d records of attempt 1 recovered, want the 2 or 3 whole ones", first)
		}
	})
}

// TestNVML opens the real NVML: on a machine without a GPU it says why, in
// one line starting "no GPU"; on one with GPUs it reads each device once
// (go test ./resources -run NVML -v shows the figures, to compare with
// nvidia-smi).
func TestNVML(t *testing.T) {
	lib, err := OpenNVML()
	if err != nil {
		if !strings.HasPrefix(err.Error(), "no GPU") || strings.Contains(err.Error(), "\n") {
			t.Errorf("OpenNVML: %q, want one line starting with \"no GPU\"", err)
		}
		t.Logf("no GPU here: %v", err)
		return
	}
	g, err := NewGPU(lib, nil)
	if err != nil {
		t.Fatalf("NVML loaded, but: %v", err)
	}
	defer g.Close()
	t.Log(g.Describe())
	s := Sample{Time: time.Now(), Attempt: 1}
	if err := g.Sample(&s); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", s.appendJSON(nil))
	if v, ok := s.Value("gpu0_memory_total_bytes"); !ok || v <= 0 {
		t.Errorf("gpu0_memory_total_bytes = %v, %v; want the GPU's memory", v, ok)
	}
}

// TestSidecarTree: a sidecar's tree is every process it can see but its
// own.
func TestSidecarTree(t *testing.T) {
	other := startHelper(t, "sleep", "10s")
	tree, err := NewProcessTree("/proc", Scope{})
	if err != nil {
		t.Fatal(err)
	}
	s := Sample{Time: time.Now(), Attempt: 1, Interval: time.Second}
	if err := tree.Sample(&s); err != nil {
		t.Fatal(err)
	}
	if !tree.isMember(other.Process.Pid) || tree.isMember(os.Getpid()) {
		t.Errorf("member: the other process %v, the collector %v; want true, false",
			tree.isMember(other.Process.Pid), tree.isMember(os.Getpid()))
	}
	if n, _ := s.Value("processes"); n < 2 {
		t.Errorf("processes = %v, want every process but the collector (init and the helper at least)", n)
	}
}

// TestRushSealsTheOpenChunk: a preemption notice (the spool's Rush) puts the
// series in the store at once, not at the next sample an interval later.
func TestRushSealsTheOpenChunk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, newStore(t), t.TempDir(), &memState{}, Config{Interval: time.Hour})
		stop := r.start()
		defer stop()
		r.spool.Rush()
		synctest.Wait() // the bubble's clock stands still: no tick, no timer
		if len(r.series()) == 0 {
			t.Fatal("no resource chunk in the store once the Rush is done (the sampling interval is an hour)")
		}
	})
}
