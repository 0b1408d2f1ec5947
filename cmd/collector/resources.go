package main

import (
	"fmt"

	"github.com/mlsidecar/collector/internal/docker"
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
	s, err := resources.New(cfg, sp, keeper.Section(resources.SectionName), c.store.Target(c.set.Run+"/"+resources.Folder+"/"))
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
