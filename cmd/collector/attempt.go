package main

import (
	"context"
	"path/filepath"

	"github.com/mlsidecar/collector/internal/child"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// runAttempt is sidecar and wrapper mode, one attempt of the run: restore,
// then run the components until the run ends (SIGTERM, or the wrapped
// command's exit), within one shutdown budget from SIGTERM.
func (c *collector) runAttempt(ctx context.Context, mode string) int {
	clock := startAttemptClock(ctx)
	probeCtx, stopProbe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopProbe()
	go func() {
		if err := c.listen(probeCtx); err != nil {
			c.log.Error("probe server stopped", "err", err)
		}
	}()
	if c.set.Replica != "" {
		c.log = c.log.With("replica", c.set.Replica)
		if c.set.replicaFrom != "" {
			c.log.Info("replica named by the platform", "from", c.set.replicaFrom)
		}
	}
	c.log.Info("collector starting", "run", c.set.Run, "mode", mode, "store", stores.Describe(c.conn),
		"outputs", c.set.OutputsPath, "sync_interval", c.set.Sync.Interval.Seconds(),
		"collect_artifacts", c.set.Plugins.CollectArtifactsOn(), "auto_resume", c.set.AutoResume)
	st, err := c.begin(ctx, false)
	if err != nil {
		c.log.Error("cannot start", "err", err)
		return exitFailure
	}
	if err := c.probe.SetReady(); err != nil {
		c.log.Warn("cannot write the ready file", "err", err)
	}
	c.log.Info("collector ready", "run", c.set.Run, "attempt", st.Attempt, "files_in_store", len(st.Outputs))
	report := c.reportRun(st, mode)

	keeper := resume.NewKeeper(c.statePath(), c.home, st, c.log)
	if mode == "wrapper" {
		c.capture, c.stdout, c.stderr = c.commandOutputs()
		c.commandStarted = make(chan struct{})
	}
	c.probe.Metrics.MustRegister(stateMetrics{keeper})
	components, err := c.components(st, keeper)
	if err != nil {
		c.log.Error("cannot start", "err", err)
		return exitFailure
	}
	budget := c.set.Sync.ShutdownTimeout
	finish := func(ctx context.Context) error {
		if err := keeper.Flush(ctx); err != nil {
			return err
		}
		// Last of all: what this attempt stored is in the store by now.
		if err := resume.MarkEnded(ctx, c.home, st.Attempt); err != nil {
			c.log.Warn("cannot mark the attempt ended in the store: `collector logs --follow` goes on until stopped", "err", err)
		}
		if c.set.Replica != "" && c.resourcesOn() {
			c.sumReplicas(ctx)
		}
		return nil
	}
	if mode == "sidecar" {
		err := runComponents(ctx, ctx, budget, c.log, components, finish)
		c.endAttempt(ctx, st, mode, clock, nil, err)
		report.end(nil, err)
		if err != nil {
			c.log.Error("stopped with work not in the store", "err", err)
			return exitFailure
		}
		return exitOK
	}

	// Wrapper mode: the components run until the command ends, then finish.
	stop, stopComponents := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- runComponents(stop, ctx, budget, c.log, components, finish) }()
	absOutputs, _ := filepath.Abs(c.set.OutputsPath)
	cmd := child.Command{
		Args:    c.expandArgs(c.set.Command, absOutputs),
		Grace:   c.set.Sync.ShutdownTimeout,
		Env:     c.childEnv(st, absOutputs),
		Behind:  ownProcess,
		Started: func() { close(c.commandStarted) },
	}
	if c.stdout != nil {
		cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
	}
	code, err := cmd.Run(ctx)
	if err != nil {
		c.log.Error("cannot run the command", "err", err)
	}
	if c.stdout != nil {
		// Its output is read to the end: the logs component takes the
		// last lines and ends.
		c.stdout.Close()
		c.stderr.Close()
	}
	c.log.Info("command exited", "code", code)
	stopComponents()
	componentsErr := <-done
	if componentsErr != nil {
		c.log.Error("stopped with work not in the store", "err", componentsErr)
	}
	commandCode := code
	c.endAttempt(ctx, st, mode, clock, &commandCode, componentsErr)
	report.end(&commandCode, componentsErr)
	if componentsErr != nil && code == 0 {
		code = exitFailure
	}
	return code
}
