package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/internal/child"
	"github.com/mlsidecar/collector/internal/probe"
	"github.com/mlsidecar/collector/logs"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// collector is one run's wiring: the store, the state and the probe.
type collector struct {
	set   *settings
	log   *slog.Logger
	conn  stores.Connection
	store *stores.Store
	run   *blob.Bucket // rooted at <run>/
	// home is the replica's own part of the run, rooted like run:
	// <run>/ in a single-replica run, <run>/replicas/<name>/ in a
	// distributed one (replica.go).
	home   *blob.Bucket
	probe  *probe.Probe
	listen func(context.Context) error
	unlock func() // releases the run's state folder

	getenv     func(string) string
	logSources []logs.Source // the --logs sources
	// capture holds the wrapped command's output, and stdout and stderr
	// are its streams, when its logs are collected.
	capture        *child.Capture
	commandStarted chan struct{} // wrapper mode: closed once the command runs
	stdout, stderr *child.Output
	hurried        hurried // what a preemption notice hurries (preempt.go)
}

// open resolves and checks the store and the probe. Every error it returns
// for a bad setting is a usageError.
func open(ctx context.Context, set *settings, getenv func(string) string, forWriting bool, log *slog.Logger) (*collector, error) {
	conn, err := resolveStore(set, getenv, log)
	if err != nil {
		return nil, usageError{err}
	}
	if err := checkStoreIsNotOutputs(conn, set.OutputsPath, set.Run); err != nil {
		return nil, usageError{err}
	}
	// At once: the small files' requests and the large files' parts the
	// memory budget holds.
	requests := set.Sync.Requests
	if set.Sync.PartSize > 0 {
		requests += int(set.Sync.MemoryBudget / set.Sync.PartSize)
	}
	store, err := stores.Open(ctx, conn, stores.Options{Getenv: getenv, ForWriting: forWriting, Logger: log, Requests: requests})
	if err == nil {
		// The part size against the store's limits, before the store is used.
		if err = set.Sync.ValidateFor(conn.Kind, store.Limits()); err == nil {
			err = store.Check(ctx)
		}
		if err != nil {
			store.Close()
		}
	}
	if err != nil {
		return nil, usageError{err}
	}
	if err := os.MkdirAll(set.OutputsPath, 0o755); err != nil {
		store.Close()
		return nil, usageError{fmt.Errorf("--outputs-path: cannot create %q: %v", set.OutputsPath, errors.Unwrap(err))}
	}
	// One collector per run's state folder: a second one (a sidecar started
	// twice, a manual run beside a running one) is refused before it writes.
	unlock, locked, err := resume.Lock(localDir(set))
	var held *resume.LockedError
	switch {
	case errors.As(err, &held):
		store.Close()
		return nil, usageError{err}
	case err != nil:
		// A state folder that cannot be written is not fatal (the state
		// then lives in memory and in the store): neither is its lock.
		log.Warn("cannot lock the run's state folder; going on without the lock", "err", err)
		unlock = func() {}
	case !locked:
		log.Warn("the file system of the state folder has no locks: nothing stops a second collector from using it", "dir", localDir(set))
	}
	p := probe.New(set.ProbeAddr, set.ReadyFile, log)
	p.Remove()
	l, err := p.Listen()
	if err != nil {
		unlock()
		store.Close()
		return nil, usageError{err}
	}
	c := &collector{
		set: set, log: log, conn: conn, store: store, unlock: unlock,
		run:    blob.PrefixedBucket(store.Bucket(), set.Run+"/"),
		probe:  p,
		listen: func(ctx context.Context) error { return p.Serve(ctx, l) },
	}
	c.home = c.run
	if set.Replica != "" {
		c.home = blob.PrefixedBucket(store.Bucket(), c.replicaKey())
	}
	return c, nil
}

func (c *collector) close() {
	c.store.Close()
	c.unlock()
}

func (c *collector) statePath() string { return filepath.Join(localDir(c.set), "state.json") }

// localDir is the replica's folder in the state folder: <state-dir>/<run>,
// and <state-dir>/<run>/replicas/<name> for a replica.
func localDir(set *settings) string {
	if set.Replica == "" {
		return filepath.Join(set.StateDir, set.Run)
	}
	return filepath.Join(set.StateDir, set.Run, "replicas", set.Replica)
}

// spoolDir is the run's spool, in its state folder.
func (c *collector) spoolDir() string { return filepath.Join(localDir(c.set), "spool") }

// checkStoreIsNotOutputs refuses a folder store that is the outputs folder,
// or that holds it in the run's own folder: the sync would copy the folder
// into itself, one level deeper every pass. A store inside the outputs
// folder is fine: the sync skips it.
func checkStoreIsNotOutputs(conn stores.Connection, outputsPath, run string) error {
	if conn.Kind != stores.KindHostPath && conn.Kind != stores.KindVolumeClaim {
		return nil
	}
	store, outputs := realPath(conn.Schema.MountPath), realPath(outputsPath)
	if store == outputs {
		return fmt.Errorf("--store and --outputs-path: both are the folder %q; the store must be another folder (the outputs would be copied into themselves)", outputs)
	}
	if run == "" {
		return nil
	}
	runDir := filepath.Join(store, run)
	if rel, err := filepath.Rel(runDir, outputs); err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
		return fmt.Errorf("--outputs-path: %q lies inside the run's folder %q of --store %q; choose an outputs folder outside it", outputs, runDir, store)
	}
	return nil
}

// realPath is path made absolute, with the symbolic links of its longest
// existing part resolved, so two names of one folder compare equal.
func realPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	var missing []string
	for dir := abs; ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(append([]string{real}, missing...)...)
		}
		if dir == filepath.Dir(dir) {
			return abs
		}
		missing = append([]string{filepath.Base(dir)}, missing...)
	}
}
