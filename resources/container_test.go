package resources

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mlsidecar/collector/internal/docker"
	"github.com/mlsidecar/collector/internal/docker/dockertest"
)

// TestContainerStats: a compose job container measured through the Docker
// engine's stats (a fake engine answering with a real cgroup v2 body): its
// CPU as docker stats shows it, its working set against its limit, its shm.
func TestContainerStats(t *testing.T) {
	body, err := os.ReadFile("../internal/docker/testdata/stats-cgroup2.json")
	if err != nil {
		t.Fatal(err)
	}
	e := dockertest.New(t)
	e.Add("job", false)
	e.SetStats("job", string(body))

	r := newRig(t, newStore(t), t.TempDir(), &memState{}, Config{Container: "job", Docker: docker.New(e.Socket)})
	stop := r.start()
	r.waitSamples(4)
	stop()

	s := r.summary()
	c := s.Container
	if c == nil {
		t.Fatalf("no container in the summary:\n%s", s.JSON())
	}
	// The body: 2 s of CPU over 4 s of a 4-CPU host's time, two cores; a
	// working set of 200 MiB less 50 MiB of inactive page cache.
	if c.Name != "job" || c.MeanCores != 2 || c.PeakCores != 2 || c.PeakMemoryBytes != 150<<20 || c.MemoryLimitBytes != 1<<30 || c.PeakShmBytes != 32<<20 {
		t.Errorf("container summary %+v", *c)
	}
	recs := r.series()
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	for _, k := range []string{"docker_cpu_cores", "docker_memory_bytes", "docker_memory_limit_bytes", "docker_pids", "docker_throttled_seconds"} {
		if _, ok := recs[len(recs)-1][k]; !ok {
			t.Errorf("the last record has no %s: %v", k, recs[len(recs)-1])
		}
	}
	if got := recs[len(recs)-1]["docker_pids"]; got != 7.0 {
		t.Errorf("docker_pids = %v, want 7", got)
	}
}

// TestContainerNotRunningYet: compose creates the job's container, and
// starts it once the collector is ready; at the end it stops, and `docker
// compose down` removes it. Until it runs, and once it is gone, samples
// leave its fields out, and nothing is said: no warning at every start.
// It is found by its compose service.
func TestContainerNotRunningYet(t *testing.T) {
	body, err := os.ReadFile("../internal/docker/testdata/stats-cgroup2.json")
	if err != nil {
		t.Fatal(err)
	}
	const notRunning = `{"read":"0001-01-01T00:00:00Z","preread":"0001-01-01T00:00:00Z","cpu_stats":{"cpu_usage":{"total_usage":0}},"memory_stats":{}}`
	e := dockertest.New(t)
	client := docker.New(e.Socket)
	client.Self = "none"
	r := newRig(t, newStore(t), t.TempDir(), &memState{}, Config{Container: "job", Docker: client})
	stop := r.start()
	samples := func(n int) Sample {
		t.Helper()
		r.waitSamples(n)
		l, _ := r.sampler.Latest()
		return l
	}
	if l := samples(2); has(l, "docker_cpu_cores") {
		t.Errorf("a sample of a container that does not exist yet: %v", l.Fields)
	}
	e.Add("demo-job-1", false)
	e.SetLabels("demo-job-1", map[string]string{docker.LabelProject: "demo", docker.LabelService: "job"})
	e.SetStatus("demo-job-1", "created", 0)
	e.SetStats("demo-job-1", notRunning)
	if l := samples(5); has(l, "docker_cpu_cores") {
		t.Errorf("a sample of a container that does not run yet: %v", l.Fields)
	}
	e.SetStatus("demo-job-1", "running", 0)
	e.SetStats("demo-job-1", string(body))
	waitUntil(t, "docker_cpu_cores of the running container", func() bool {
		l, _ := r.sampler.Latest()
		return has(l, "docker_cpu_cores")
	})
	e.Remove("demo-job-1")
	n := r.sampler.Summary().Samples
	samples(n + 3)
	stop()
	if strings.Contains(r.logs.String(), "resource source failed") {
		t.Errorf("a warning:\n%s", r.logs)
	}
	if c := r.summary().Container; c == nil || c.PeakMemoryBytes != 150<<20 {
		t.Errorf("container summary %+v; want the running container's peak, 150 MiB", c)
	}
}

func has(s Sample, field string) bool {
	_, ok := s.Value(field)
	return ok
}

// TestContainerAbsent: a container the engine never knows is said once,
// after the wait, and sampling goes on without it.
func TestContainerAbsent(t *testing.T) {
	e := dockertest.New(t)
	client := docker.New(e.Socket)
	client.Self = "none"
	c := newContainer(client, "typo", 20*time.Millisecond, 50*time.Millisecond)
	defer c.Close()
	var smp Sample
	var err error
	waitUntil(t, "error", func() bool { err = c.Sample(&smp); return err != nil })
	if want := `the Docker engine has no container or compose service "typo" (waited 50ms)`; err.Error() != want {
		t.Errorf("Sample: %v, want %q", err, want)
	}
	if len(smp.Fields) != 0 {
		t.Errorf("fields %v", smp.Fields)
	}
}
