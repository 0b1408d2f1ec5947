package resources

import (
	"context"
	"errors"
	"fmt"
	stdsync "sync"
	"time"

	"github.com/mlsidecar/collector/internal/docker"
)

// DockerStats is the part of the Docker engine's client that the container
// source uses (internal/docker's Client; a fake engine in tests).
type DockerStats interface {
	Find(ctx context.Context, name string) (docker.Container, error)
	Stats(ctx context.Context, container string) (docker.Stats, error)
}

// Container measures a named container through the Docker engine's stats:
// what a compose deployment sees of its job container. The engine takes
// about a second to answer (it reads the counters twice), so the source
// asks in the background and each sample takes the latest answer.
//
// The container may not exist or run yet when sampling starts (compose
// creates the job, then starts it once the collector is ready), and stops
// before the collector's last sample: while it does not run, samples leave
// its fields out without an error. Only an engine that fails, or a name
// that the engine has not known for missingFor, is a failure.
type Container struct {
	name       string
	client     DockerStats
	missingFor time.Duration

	mu     stdsync.Mutex
	latest docker.Stats // zero while the container does not run
	err    error
	used   docker.Stats // the answer the previous sample used

	stop context.CancelFunc
	done chan struct{}
}

// NewContainer starts asking the engine for the stats of the container
// that name names (a container's name or ID, or a compose service:
// docker.Client.Find) every interval in the background, until Close.
func NewContainer(client DockerStats, name string, interval time.Duration) (*Container, error) {
	return newContainer(client, name, interval, 2*time.Minute), nil
}

func newContainer(client DockerStats, name string, interval, missingFor time.Duration) *Container {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Container{name: name, client: client, missingFor: missingFor, stop: cancel, done: make(chan struct{})}
	go c.poll(ctx, interval)
	return c
}

// Name implements Source.
func (c *Container) Name() string { return "container " + c.name }

func (c *Container) poll(ctx context.Context, interval time.Duration) {
	defer close(c.done)
	id := ""
	start := time.Now()
	for {
		asked := time.Now()
		var s docker.Stats
		var err error
		if id == "" {
			var info docker.Container
			if info, err = c.client.Find(ctx, c.name); err == nil {
				id = info.ID
			}
		}
		if id != "" {
			s, err = c.client.Stats(ctx, id)
		}
		if ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, docker.ErrNotFound) && id != "":
			err = nil // removed: it no longer runs
		case errors.Is(err, docker.ErrNotFound) && time.Since(start) < c.missingFor:
			err = nil // not created yet
		case errors.Is(err, docker.ErrNotFound):
			err = fmt.Errorf("the Docker engine has no container or compose service %q (waited %v)", c.name, c.missingFor)
		}
		c.mu.Lock()
		c.latest, c.err = s, err
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval - time.Since(asked)):
		}
	}
}

// Close stops asking the engine.
func (c *Container) Close() {
	c.stop()
	<-c.done
}

// Sample implements Source: docker_cpu_cores (as docker stats computes it,
// over the engine's own second), docker_memory_bytes (the working set, as
// docker stats shows it), docker_memory_usage_bytes (page cache included),
// docker_memory_limit_bytes, docker_pids, docker_shm_bytes (where the
// engine gives memory.stat's shmem), and over the interval
// docker_throttled_periods, docker_throttled_seconds, docker_block_read_bytes
// and docker_block_write_bytes.
func (c *Container) Sample(smp *Sample) error {
	c.mu.Lock()
	s, err, prev := c.latest, c.err, c.used
	c.used = s
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if s.Read.IsZero() {
		return nil // not running (yet, or any more): no fields
	}
	if prev.Read.IsZero() {
		prev = s // its first sample: nothing over an interval yet
	}
	d := func(now, before uint64) float64 {
		if now < before {
			return 0
		}
		return float64(now - before)
	}
	smp.Add("docker_cpu_cores", round(s.CPUPercent()/100, 4))
	smp.Add("docker_memory_bytes", float64(s.Memory.WorkingSet()))
	smp.Add("docker_memory_usage_bytes", float64(s.Memory.Usage))
	smp.Add("docker_memory_limit_bytes", float64(s.Memory.Limit))
	smp.Add("docker_pids", float64(s.PIDs))
	if shm, ok := s.Memory.Stat["shmem"]; ok {
		smp.Add("docker_shm_bytes", float64(shm))
	}
	smp.Add("docker_throttled_periods", d(s.CPU.ThrottledPeriods, prev.CPU.ThrottledPeriods))
	smp.Add("docker_throttled_seconds", round(d(s.CPU.ThrottledTime, prev.CPU.ThrottledTime)/1e9, 6))
	smp.Add("docker_block_read_bytes", d(s.BlockRead, prev.BlockRead))
	smp.Add("docker_block_write_bytes", d(s.BlockWrite, prev.BlockWrite))
	return nil
}
