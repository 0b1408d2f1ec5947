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
	"strconv"
	"syscall"

	"github.com/google/uuid"
	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/job"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/sync"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes of the contract.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	// Signals first: a SIGTERM that arrives while we start must still get a
	// final sync, not kill us.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program, minus the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "version" {
		fmt.Fprintln(stdout, "collector", version)
		return exitOK
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
	if set.runGenerated {
		set.Run = uuid.NewString()
	}
	level, _ := parseLevel(set.LogLevel)
	log := newLogger(stderr, set.LogFormat, level)

	conn, err := resolveStore(set, getenv)
	if err != nil {
		fmt.Fprintln(stderr, "collector:", err)
		return exitUsage
	}
	root, err := stores.Open(ctx, conn, stores.Options{Getenv: getenv, ForWriting: true})
	if err == nil {
		err = stores.Check(ctx, root, conn)
	}
	if err != nil {
		fmt.Fprintln(stderr, "collector:", err)
		return exitUsage
	}
	defer root.Close()

	if err := os.MkdirAll(set.OutputsPath, 0o755); err != nil {
		fmt.Fprintf(stderr, "collector: --outputs-path: cannot create %q: %v\n", set.OutputsPath, errors.Unwrap(err))
		return exitUsage
	}
	runBucket := blob.PrefixedBucket(root, set.Run+"/")
	statePath := filepath.Join(set.StateDir, set.Run, "state.json")
	state, err := resume.Load(statePath)
	switch {
	case errors.Is(err, resume.ErrNoCheckpoint):
		state = &resume.State{Version: resume.Version, Run: set.Run, Attempt: 1}
	case err != nil:
		log.Error("cannot continue the run from its state; move the file away to start over", "err", err)
		return exitFailure
	default:
		state.Attempt++
	}
	keeper := resume.NewKeeper(statePath, runBucket, state)

	skip := []string{set.StateDir}
	if conn.Kind == stores.KindHostPath || conn.Kind == stores.KindVolumeClaim {
		skip = append(skip, conn.Schema.MountPath)
	}
	syncer, err := sync.New(set.Sync, set.OutputsPath, blob.PrefixedBucket(root, set.Run+"/outputs/"), sync.Options{
		Logger:       log,
		Manifest:     state.Outputs,
		Checkpointer: keeper,
		SkipDirs:     skip,
	})
	if err != nil {
		fmt.Fprintln(stderr, "collector:", err)
		return exitUsage
	}
	mode := "sidecar"
	if len(set.Command) > 0 {
		mode = "wrapper"
	}
	log.Info("collector started", "run", set.Run, "attempt", state.Attempt, "mode", mode,
		"store", stores.Describe(conn), "outputs", set.OutputsPath,
		"sync_interval", set.Sync.Interval.Seconds(), "collect_artifacts", set.Plugins.CollectArtifactsOn())

	syncOn := set.Plugins.CollectArtifactsOn()
	if mode == "sidecar" {
		if !syncOn {
			<-ctx.Done()
			return exitOK
		}
		if err := syncer.Run(ctx); err != nil {
			log.Error("stopped with outputs not in the store", "err", err)
			return exitFailure
		}
		return exitOK
	}

	// Wrapper mode: sync until the command ends, then once more.
	syncCtx, stopSync := context.WithCancel(context.WithoutCancel(ctx))
	syncDone := make(chan error, 1)
	go func() {
		if !syncOn {
			<-syncCtx.Done()
			syncDone <- nil
			return
		}
		syncDone <- syncer.Run(syncCtx)
	}()
	absOutputs, _ := filepath.Abs(set.OutputsPath)
	code, err := job.Command{
		Args:  set.Command,
		Grace: set.Sync.ShutdownTimeout,
		Env: []string{
			"COLLECTOR_RUN=" + set.Run,
			"COLLECTOR_ATTEMPT=" + strconv.Itoa(state.Attempt),
			"COLLECTOR_RESUMED=" + boolDigit(state.Attempt > 1),
			"COLLECTOR_OUTPUTS_PATH=" + absOutputs,
		},
	}.Run(ctx)
	if err != nil {
		log.Error("cannot run the command", "err", err)
	}
	stopSync()
	if err := <-syncDone; err != nil {
		log.Error("stopped with outputs not in the store", "err", err)
		if code == 0 {
			code = exitFailure
		}
	}
	log.Info("command exited", "code", code)
	return code
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// resolveStore picks the artifacts store from --store, the connections file
// and Polyaxon's catalog in the environment.
func resolveStore(set *settings, getenv func(string) string) (stores.Connection, error) {
	var fileCat *stores.Catalog
	if set.Connections != "" {
		var err error
		if fileCat, err = stores.LoadCatalog(set.Connections); err != nil {
			return stores.Connection{}, err
		}
	}
	envCat, err := stores.CatalogFromEnv(getenv)
	if err != nil {
		return stores.Connection{}, err
	}
	return stores.Resolve(set.Store, fileCat, envCat)
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
