package main

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/internal/child"
	"github.com/mlsidecar/collector/report"
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

// attemptClock is when the attempt started and when a SIGTERM (ctx's end)
// came, which starts the shutdown budget.
type attemptClock struct {
	started time.Time
	term    atomic.Int64 // Unix ns; 0 until ctx ends
}

// startAttemptClock starts the attempt's clock.
func startAttemptClock(ctx context.Context) *attemptClock {
	c := &attemptClock{started: time.Now()}
	context.AfterFunc(ctx, func() { c.term.Store(time.Now().UnixNano()) })
	return c
}

// reportBudget bounds the end of an attempt's record and report: after a
// SIGTERM, what is left of the shutdown budget, less a second, so that the
// collector exits before the orchestrator's grace period ends; otherwise a
// minute.
func (c *attemptClock) reportBudget(shutdown time.Duration) time.Duration {
	term := c.term.Load()
	if term == 0 {
		return time.Minute
	}
	return shutdown - time.Since(time.Unix(0, term)) - time.Second
}

// endAttempt runs after the attempt's final sync: it records the attempt's
// end (its exit code in wrapper mode) and, unless --report=false, writes
// the run's report to <run>/report.html. Neither changes how the collector
// exits: a failure is a warning.
func (c *collector) endAttempt(ctx context.Context, st *resume.State, mode string, clock *attemptClock, code *int, failure error) {
	if ctx.Err() != nil { // ended by a signal whose AfterFunc has not run yet
		clock.term.CompareAndSwap(0, time.Now().UnixNano())
	}
	budget := clock.reportBudget(c.set.Sync.ShutdownTimeout)
	if budget < time.Second {
		c.log.Warn("no time left of the shutdown budget to record the attempt's end and write the run's report", "shutdown_timeout", c.set.Sync.ShutdownTimeout)
		return
	}
	deadline := time.Now().Add(budget)
	rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	rec := report.AttemptRecord{
		Attempt: st.Attempt, Mode: mode, Started: clock.started.UTC(), Ended: time.Now().UTC(),
		ExitCode: code, NodeCPUs: runtime.NumCPU(), Replica: c.set.Replica,
	}
	if failure != nil {
		rec.Error = stores.RedactString(failure.Error())
	}
	rec.Preemption = c.preemptionNotice()
	if err := report.PutAttempt(rctx, c.run, rec); err != nil {
		c.log.Warn("cannot record the attempt's end in the store: the report shows no exit code for it", "err", stores.Redact(err))
	}
	if !c.set.Report || c.set.Replica != "" {
		// A replica does not write the run's page: N of them would each
		// read the whole run at their end. `collector report` writes it.
		return
	}
	// Reading the store gets two thirds of what is left; the upload the
	// rest, so that a slow read still leaves time to store what it read.
	cctx, ccancel := context.WithDeadline(rctx, time.Now().Add(time.Until(deadline)*2/3))
	defer ccancel()
	rep, err := report.Collect(cctx, c.run, report.Options{
		Run: c.set.Run, Store: stores.Describe(c.conn), Version: buildVersion(), Current: &rec,
		LinkExpiry: storeLinkExpiry, RelativeLinks: true,
	})
	var page bytes.Buffer
	if err == nil {
		err = rep.Write(&page)
	}
	if err == nil {
		err = c.run.WriteAll(rctx, reportKey, page.Bytes(), &blob.WriterOptions{ContentType: "text/html; charset=utf-8"})
	}
	if err != nil {
		c.log.Warn("cannot write the run's report to the store", "key", c.set.Run+"/"+reportKey, "err", stores.Redact(err))
		return
	}
	c.log.Info("wrote the run's report", "key", c.set.Run+"/"+reportKey, "bytes", page.Len())
}

// preemptionNotice is the cloud's notice the attempt got, as the collector's
// metrics publish it (collector_preemption_notice, and the deadline of an
// interruption); nil when none came. An interruption wins over a rebalance
// recommendation.
func (c *collector) preemptionNotice() *report.Preemption {
	if c.probe == nil || c.probe.Metrics == nil {
		return nil
	}
	families, err := c.probe.Metrics.Gather()
	if err != nil {
		return nil
	}
	var notice *report.Preemption
	var deadline time.Time
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			v := m.GetGauge().GetValue()
			switch f.GetName() {
			case "collector_preemption_notice":
				if v > 0 && (notice == nil || labels["kind"] == "interruption") {
					notice = &report.Preemption{Cloud: labels["cloud"], Action: labels["kind"]}
				}
			case "collector_preemption_deadline_timestamp_seconds":
				deadline = time.Unix(0, int64(v*1e9)).UTC()
			}
		}
	}
	if notice != nil && notice.Action == "interruption" {
		notice.Deadline = deadline
	}
	return notice
}
