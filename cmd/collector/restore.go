package main

import (
	"context"
	"fmt"
	"os"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// begin restores the run (with auto-resume) and returns its state.
func (c *collector) begin(ctx context.Context, forRestore bool) (*resume.State, error) {
	st, rs, err := resume.Begin(ctx, resume.BeginOptions{
		Run:           c.set.Run,
		StatePath:     c.statePath(),
		Outputs:       c.set.OutputsPath,
		Bucket:        c.run,
		State:         c.home,
		Own:           c.set.Replica != "" && c.set.Restore == "own",
		Replica:       c.set.Replica,
		Attributes:    c.store.Target(c.set.Run + "/").Attributes,
		Store:         stores.Identity(c.conn),
		AutoResume:    c.set.AutoResume || forRestore,
		Include:       c.set.Sync.Include,
		Workers:       c.set.Sync.Workers,
		CommitMarkers: c.set.Sync.CommitMarkers,
		Logger:        c.log,
		Progress:      newProgress(c.log, os.Stderr),
		ForRestore:    forRestore,
	})
	if err != nil {
		return nil, fmt.Errorf("resume run %s: %w", c.set.Run, err)
	}
	if rs.Files+rs.Kept > 0 {
		c.log.Info("restored the run's outputs", "files", rs.Files, "bytes", rs.Bytes,
			"already_present", rs.Skipped, "kept_local", rs.Kept, "took", rs.Took.Round(1e6))
	}
	return st, nil
}

// restoreOnly is `collector restore`: bring the outputs back and stop.
func (c *collector) restoreOnly(ctx context.Context) int {
	st, err := c.begin(ctx, true)
	if err != nil {
		c.log.Error("restore failed", "err", err)
		return exitFailure
	}
	c.log.Info("restore done", "run", c.set.Run, "attempt", st.Attempt, "files", len(st.Outputs))
	if err := c.probe.SetReady(); err != nil {
		c.log.Warn("cannot write the ready file", "err", err)
	}
	return exitOK
}
