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
	"runtime/debug"
	"syscall"

	"github.com/google/uuid"

	"github.com/mlsidecar/collector/internal/child"
	"github.com/mlsidecar/collector/logs"

	// The store backends, one per kind, registered with stores.
	_ "github.com/mlsidecar/collector/stores/azure"
	_ "github.com/mlsidecar/collector/stores/file"
	_ "github.com/mlsidecar/collector/stores/gcs"
	_ "github.com/mlsidecar/collector/stores/s3"
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
	return c.runAttempt(ctx, mode)
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
