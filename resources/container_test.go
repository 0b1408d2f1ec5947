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
	time.Sleep(400 * time.Millisecond)
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

// TestContainerAbsent: a container the engine does not know is said once,
// and sampling goes on without it.
func TestContainerAbsent(t *testing.T) {
	e := dockertest.New(t)
	r := newRig(t, newStore(t), t.TempDir(), &memState{}, Config{Container: "job", Docker: docker.New(e.Socket)})
	stop := r.start()
	time.Sleep(300 * time.Millisecond)
	stop()
	if n := strings.Count(r.logs.String(), `no container stats: the Docker engine has no container \"job\"`); n != 1 {
		t.Errorf("said %d times, want once:\n%s", n, r.logs)
	}
	if s := r.summary(); s.Container != nil || s.Samples < 2 {
		t.Errorf("summary: container %v, %d samples; want no container, samples", s.Container, s.Samples)
	}
}
