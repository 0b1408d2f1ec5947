// Command collector syncs a job's outputs folder to its artifacts store while
// the job runs and once more at the end, and checkpoints what it did so that a
// retried job continues where it stopped. See the README for the settings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/google/uuid"
	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/internal/child"
	"github.com/mlsidecar/collector/internal/probe"
	"github.com/mlsidecar/collector/logs"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/spool"
	"github.com/mlsidecar/collector/stores"

	// The store backends, one per kind, registered with stores.
	_ "github.com/mlsidecar/collector/stores/azure"
	_ "github.com/mlsidecar/collector/stores/file"
	_ "github.com/mlsidecar/collector/stores/gcs"
	_ "github.com/mlsidecar/collector/stores/s3"
	"github.com/mlsidecar/collector/sync"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// buildVersion is version as the build set it, else (a plain go build or
// go run) the commit the binary was built from, as Go records it.
func buildVersion() string {
	if version != "dev" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+modified"
		}
	}
	if rev == "" {
		return version
	}
	return "dev-" + rev + dirty
}

// Exit codes of the contract.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	// Signals first: a SIGTERM that arrives while we start must still get a
	// final sync, not kill us.
	ctx, end := context.WithCancelCause(context.Background())
	ends := make(chan os.Signal, 1)
	signal.Notify(ends, syscall.SIGINT, syscall.SIGTERM)
	go func() { end(child.Signaled{Sig: <-ends}) }() // exitOnSecondSignal takes the next one
	go passOnSignals(func() { end(child.Signaled{Sig: syscall.SIGHUP}) })
	// A closed stdout or stderr (`collector -- job | head`, a log reader
	// gone) must not kill the collector before its final sync: with SIGPIPE
	// notified, a write there fails with EPIPE instead. The wrapped command
	// still gets its SIGPIPE: its pipe is closed when its output can no
	// longer be passed through, and the exec resets caught signals.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	go exitOnSecondSignal(ctx, os.Stderr)
	ownProcess = true
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	os.Exit(code)
}

// passOnSignals hands SIGHUP, SIGUSR1 and SIGUSR2 to the wrapped command, as
// tini and dumb-init do: a job that checkpoints on SIGUSR1 (SLURM's
// --signal, PyTorch Lightning) gets it, and a hangup ends the job, then the
// collector after its final sync; by default Go would ignore the first two
// and die of the third, with no final sync. With no command running (a
// sidecar, a wrapper still restoring or already finishing), SIGHUP ends the
// run as SIGTERM does, and the others are ignored.
func passOnSignals(hangUp func()) {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	for sig := range signals {
		if !child.SignalRunning(sig) && sig == syscall.SIGHUP {
			hangUp()
		}
	}
}

// exitOnSecondSignal exits at once, killing the wrapped command, when a
// second SIGINT or SIGTERM comes after the first (ctx's) started the final
// sync: someone at a terminal who does not want to wait for it. Nothing is
// lost that a restart cannot find: the next start resumes from the state.
// Kubernetes sends one SIGTERM, then SIGKILL after its grace period.
func exitOnSecondSignal(ctx context.Context, stderr io.Writer) {
	<-ctx.Done()
	again := make(chan os.Signal, 1)
	signal.Notify(again, syscall.SIGINT, syscall.SIGTERM)
	sig := <-again
	fmt.Fprintf(stderr, "collector: %v again: exiting now, without the rest of the final sync; the next start with this state resumes the run\n", sig)
	child.KillRunning()
	code := 128 + int(syscall.SIGINT)
	if s, ok := sig.(syscall.Signal); ok {
		code = 128 + int(s)
	}
	os.Exit(code)
}

// ownProcess is set by main (not by tests running run in-process): the
// process is the collector's own, its Go memory is held near the upload
// budget, and its threads run behind the wrapped command's
// (child.Command.Behind).
var ownProcess bool

// memoryOverhead is what the collector needs beside its upload buffers: the
// runtime, the SDKs' clients, the manifest, the garbage the GC has not yet
// collected.
const memoryOverhead = 32 << 20

// setMemoryLimit makes the garbage collector keep the process's Go memory
// under the upload budget plus the overhead, unless GOMEMLIMIT says
// otherwise: a sidecar's memory limit is set from the budget, and the GC's
// default (twice the live heap) would overshoot it under a burst of uploads.
func setMemoryLimit(budget int64, getenv func(string) string) {
	if ownProcess && getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(budget + memoryOverhead)
	}
}

// usageError is a bad setting found after the settings were parsed.
type usageError struct{ error }

// run is the whole program, minus the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	mode := "sidecar"
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version", "-version":
			fmt.Fprintln(stdout, "collector", buildVersion())
			return exitOK
		case "help":
			usage(stdout)
			return exitOK
		case "restore":
			mode, args = "restore", args[1:]
		case "logs":
			return runLogs(ctx, args[1:], getenv, stdout, stderr)
		case "report":
			return runReportCommand(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	set, err := loadSettings(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "collector:", err)
		return exitUsage
	}
	if err := checkAPIToken(set); err != nil {
		fmt.Fprintln(stderr, "collector:", err)
		return exitUsage
	}
	if len(set.Command) > 0 {
		if mode == "restore" {
			fmt.Fprintf(stderr, "collector: restore takes no command (got %q)\n", set.Command[0])
			return exitUsage
		}
		mode = "wrapper"
	}
	if set.runGenerated {
		if mode == "restore" {
			fmt.Fprintln(stderr, "collector: --run: restore needs the run's name (--run or COLLECTOR_RUN)")
			return exitUsage
		}
		set.Run = uuid.NewString()
	}
	var sources []logs.Source
	if mode != "restore" && set.Plugins.CollectLogsOn() {
		if sources, err = logSources(set, getenv); err != nil {
			fmt.Fprintln(stderr, "collector:", err)
			return exitUsage
		}
	}
	level, _ := parseLevel(set.LogLevel)
	log := newLogger(stderr, set.LogFormat, level)
	setMemoryLimit(int64(set.Sync.MemoryBudget), getenv)

	c, err := open(ctx, set, getenv, mode != "restore", log)
	if err != nil {
		if set.LogFormat == "json" {
			log.Error("cannot start", "err", err) // a log pipeline reads every line
		} else {
			fmt.Fprintln(stderr, "collector:", err)
		}
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitFailure
	}
	defer c.close()
	c.getenv, c.logSources = getenv, sources
	c.notePlugins()
	if mode == "restore" {
		return c.restoreOnly(ctx)
	}
	return c.sync(ctx, mode)
}

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
	store, err := stores.Open(ctx, conn, stores.Options{Getenv: getenv, ForWriting: forWriting, Logger: log})
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

// begin restores the run (with auto-resume) and returns its state.
func (c *collector) begin(ctx context.Context, forRestore bool) (*resume.State, error) {
	st, rs, err := resume.Begin(ctx, resume.BeginOptions{
		Run:           c.set.Run,
		StatePath:     c.statePath(),
		Outputs:       c.set.OutputsPath,
		Bucket:        c.run,
		State:         c.home,
		Own:           c.set.Replica != "" && c.set.Restore == "own",
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

// sync is sidecar and wrapper mode: restore, then run the components until
// the run ends (SIGTERM, or the wrapped command's exit), within one shutdown
// budget from SIGTERM.
func (c *collector) sync(ctx context.Context, mode string) int {
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
		syncer, err := sync.New(c.set.Sync, c.set.OutputsPath, c.store.Target(c.set.Run+"/"+resume.OutputsPrefix), sync.Options{
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
			// while it holds the version the replica stored.
			Shared: c.set.Replica != "",
			// Commit markers that wait are kept in the state, for the restore.
			Markers: markerSection(c.set.Sync.CommitMarkers, keeper),
		})
		if err != nil {
			return nil, fmt.Errorf("outputs sync: %w", err)
		}
		set = append(set, componentFunc{name: "outputs", run: syncer.Run})
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

// spoolDir is the run's spool, in its state folder.
func (c *collector) spoolDir() string { return filepath.Join(localDir(c.set), "spool") }

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

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

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// markerSection is where the outputs sync keeps its commit markers that
// wait: none without --commit-marker.
func markerSection(markers []string, keeper *resume.Keeper) sync.Saver {
	if len(markers) == 0 {
		return nil
	}
	return keeper.Section(resume.MarkersSection)
}
