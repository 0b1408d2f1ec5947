package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/spool"
	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/sync"
)

// component is one part of a run: the outputs sync, log collection,
// resource sampling, the HTTP listener. The run starts every component after
// the restore and stops them together.
type component interface {
	// Name names the component in logs and errors.
	Name() string
	// Run works until stop ends (the wrapped command exited, or SIGTERM in
	// a sidecar), then finishes its work (a final pass, its last
	// checkpoint) and returns. It must return by the time deadline ends:
	// deadline ends when the one shutdown budget, counted from SIGTERM, is
	// spent, and never before SIGTERM, so work left after a job that ended
	// by itself runs to completion.
	Run(stop, deadline context.Context) error
}

// runComponents runs the components until stop ends and each has finished,
// then runs finish (the state's final checkpoint). The shutdown budget runs
// from term (SIGTERM): the components share it but for a reserve kept for
// finish, which must run even when a component overran. It returns the
// errors of all of them, joined, each named by its component.
func runComponents(stop, term context.Context, budget time.Duration, log *slog.Logger, components []component, finish func(context.Context) error) error {
	reserve := min(budget/5, finishReserve)
	deadline, cancel := shutdownDeadline(term, budget-reserve)
	defer cancel()
	finishDeadline, cancelFinish := shutdownDeadline(term, budget)
	defer cancelFinish()
	errs := make(chan error, len(components))
	for _, c := range components {
		go func() {
			start := time.Now()
			err := c.Run(stop, deadline)
			if err != nil {
				err = fmt.Errorf("%s: %w", c.Name(), err)
			}
			log.Debug("component stopped", "component", c.Name(), "ran", time.Since(start).Round(time.Millisecond), "err", err)
			errs <- err
		}()
	}
	var all []error
	for range components {
		all = append(all, <-errs)
	}
	<-stop.Done() // a run without components still lasts until it ends
	if finish != nil {
		if err := finish(finishDeadline); err != nil {
			all = append(all, fmt.Errorf("final checkpoint: %w", err))
		}
	}
	return errors.Join(all...)
}

// finishReserve is the part of the shutdown budget, at most, kept for the
// final checkpoint after the components.
const finishReserve = 5 * time.Second

// errShutdownBudget ends the work left when the shutdown budget is spent.
var errShutdownBudget = errors.New("the shutdown timeout passed")

// shutdownDeadline returns a context that ends budget after term ends: the
// one budget from SIGTERM to exit that the wrapped command's shutdown and
// every component's final work share.
func shutdownDeadline(term context.Context, budget time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(term))
	stop := context.AfterFunc(term, func() {
		timer := time.AfterFunc(budget, func() { cancel(errShutdownBudget) })
		context.AfterFunc(ctx, func() { timer.Stop() })
	})
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

// componentFunc makes a component of a name and a function.
type componentFunc struct {
	name string
	run  func(stop, deadline context.Context) error
}

func (c componentFunc) Name() string                             { return c.name }
func (c componentFunc) Run(stop, deadline context.Context) error { return c.run(stop, deadline) }

// components builds the run's components from the settings and plugins.
// The outputs sync and the spool of logs and resources share one memory
// budget for upload buffers.
func (c *collector) components(st *resume.State, keeper *resume.Keeper) ([]component, error) {
	var set []component
	budget := sync.NewBudget(c.set.Sync.MemoryBudget)
	if c.set.Plugins.CollectArtifactsOn() {
		skip := []string{c.set.StateDir}
		if c.conn.Kind == stores.KindHostPath || c.conn.Kind == stores.KindVolumeClaim {
			skip = append(skip, c.conn.Schema.MountPath)
		}
		syncer, err := sync.New(c.set.Sync, c.set.OutputsPath, c.store.Target(c.set.Run+"/"+resume.OutputsPrefix).ForReplica(c.set.Replica), sync.Options{
			Logger:       c.log,
			Manifest:     st.Outputs,
			Checkpointer: keeper,
			SkipDirs:     skip,
			Uploads:      st.Uploads,
			Budget:       budget,
			// A collector killed before its checkpoint left uploads the
			// state does not record: recorded, not sent again. Not for a
			// replica: that takes a listing of the whole outputs folder,
			// every replica's, and could take another's file for its own.
			Adopt: c.set.Replica == "",
			// Replicas share outputs/: a replica deletes an object only
			// while it holds the version the replica stored; of a path
			// several write, the lowest replica name keeps the path and
			// the others' copies go to <path>.replica-<name> (the target
			// names the replica in each object; docs/distributed.md).
			Shared: c.set.Replica != "",
			// Commit markers that wait are kept in the state, for the restore.
			Markers: markerSection(c.set.Sync.CommitMarkers, keeper),
			// A replica publishes under the run's folder how far its sync
			// has got, and its markers wait for every replica's.
			Run: c.run,
		})
		if err != nil {
			return nil, fmt.Errorf("outputs sync: %w", err)
		}
		set = append(set, componentFunc{name: "outputs", run: syncer.RunShared})
		c.hurried.outputs = syncer
		c.probe.Metrics.MustRegister(outputsMetrics{syncer})
	}
	// The producers of files for the store, each with its folder in the
	// spool and its section of the state.
	var producers []producer
	if c.resourcesOn() {
		producers = append(producers, c.resourcesProducer)
	}
	if c.logsOn() {
		producers = append(producers, c.logsProducer)
	}
	if len(producers) > 0 {
		sp, err := spool.New(spool.Config{
			Dir:      c.spoolDir(),
			Uploader: sync.NewFileUploader(c.set.Sync, c.store.Target(c.replicaKey()), budget),
			Interval: c.set.Sync.Interval,
			Workers:  c.set.Sync.Workers,
			GiveUp:   c.set.Sync.ShutdownTimeout,
			Logger:   c.log,
		})
		if err != nil {
			return nil, err
		}
		for _, p := range producers {
			comp, err := p(sp, st, keeper)
			if err != nil {
				return nil, err
			}
			set = append(set, comp)
		}
		set = append(set, componentFunc{name: "spool", run: sp.Run})
		c.hurried.spool = sp
	}
	if p := c.preemptionComponent(keeper); p != nil {
		set = append(set, p)
	}
	return set, nil
}

// producer builds a component that writes files for the store into the
// spool (logs, resources), keeping its cursor in its section of the state.
type producer func(sp *spool.Spool, st *resume.State, keeper *resume.Keeper) (component, error)

// markerSection is where the outputs sync keeps its commit markers that
// wait: none without --commit-marker.
func markerSection(markers []string, keeper *resume.Keeper) sync.Saver {
	if len(markers) == 0 {
		return nil
	}
	return keeper.Section(resume.MarkersSection)
}
