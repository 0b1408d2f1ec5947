package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mlsidecar/collector/internal/docker"
	"github.com/mlsidecar/collector/internal/kube"
	"github.com/mlsidecar/collector/resources"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/spool"
)

// resourcesProducer builds the resource sampler: its chunks go through the
// spool to <run>/resources/, its summary.json straight to the store, its
// cursor and running aggregates in the state's "resources" section. In
// wrapper mode it measures the collector's descendants (the command) and
// the collector's cgroup; in a sidecar, every process it can see but its
// own; with --resources-container, that container's Docker stats too.
func (c *collector) resourcesProducer(sp *spool.Spool, st *resume.State, keeper *resume.Keeper) (component, error) {
	cfg := resources.Config{
		Run:      c.set.Run,
		Attempt:  st.Attempt,
		Interval: c.set.ResourcesInterval,
		// Chunks are sealed by their own size and age; the summary
		// follows the sync interval.
		SummaryEvery: c.set.Sync.Interval,
		Wrapper:      len(c.set.Command) > 0,
		// A nil channel in a sidecar: nothing to wait for.
		CommandStarted: c.commandStarted,
		NoShm:          !c.set.Plugins.ShmOn(),
		PIDs:           c.set.ResourcesPIDs,
		CgroupPath:     c.set.ResourcesCgroup,
		Logger:         c.log,
	}
	if name := c.set.ResourcesContainer; name != "" {
		// The settings checked that the docker plugin is on.
		if socket, err := docker.SocketFromEnv(c.getenv); err != nil {
			c.log.Info("no container stats: " + err.Error())
		} else {
			cfg.Container, cfg.Docker = name, docker.New(socket)
		}
	}
	if len(c.set.Command) == 0 && kube.InPod(c.getenv) {
		// A sidecar in Kubernetes: the job's containers' limits, exit
		// codes and OOM kills come from the pod's status.
		if client, err := kube.FromEnv(c.getenv); err != nil {
			c.log.Info("no pod status: " + err.Error())
		} else {
			cfg.Pod = client
		}
	}
	s, err := resources.New(cfg, sp, keeper.Section(resources.SectionName), c.store.Target(c.replicaKey()+resources.Folder+"/"))
	if err != nil {
		return nil, fmt.Errorf("resources: %w", err)
	}
	c.probe.Metrics.MustRegister(resourcesMetrics{s})
	return s, nil
}

// resourcesOn tells whether resources are sampled: the collectResources
// plugin (on by default) and a positive --resources-interval.
func (c *collector) resourcesOn() bool {
	return c.set.Plugins.CollectResourcesOn() && c.set.ResourcesInterval > 0
}

// pidList is --resources-pid: process IDs, repeated or comma-separated.
type pidList []int

func (l *pidList) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = strconv.Itoa(p)
	}
	return strings.Join(parts, ",")
}

func (l *pidList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return fmt.Errorf("%q is not a process ID; want a positive integer", f)
		}
		*l = append(*l, pid)
	}
	return nil
}

// validateResourcesCgroup checks that --resources-cgroup names a cgroup of
// this machine.
func validateResourcesCgroup(path string) error {
	if path == "" {
		return nil
	}
	if _, err := resources.JobCgroup("/sys/fs/cgroup", path); err != nil {
		return fmt.Errorf("--resources-cgroup: %v; want the job's cgroup as /proc/PID/cgroup names it (/system.slice/job.service) or its folder under /sys/fs/cgroup", err)
	}
	return nil
}
