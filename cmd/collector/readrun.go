package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
)

// runReader is what the subcommands that read one run back from the store
// (collector logs, collector report) share: the --store, --connections and
// --run flags, their checks, and opening the store. Each adds flags of its
// own to fs before parse.
type runReader struct {
	name   string // "logs": the subcommand, as its messages name it
	set    *settings
	fs     *flag.FlagSet
	getenv func(string) string
	stderr io.Writer
}

func newRunReader(name string, getenv func(string) string, stderr io.Writer) *runReader {
	r := &runReader{name: name, set: defaultSettings(), getenv: getenv, stderr: stderr}
	r.fs = flag.NewFlagSet("collector "+name, flag.ContinueOnError)
	r.fs.SetOutput(io.Discard)
	r.fs.StringVar(&r.set.Store, "store", getenv(envName("store")), "the artifacts store (as for a run)")
	r.fs.StringVar(&r.set.Connections, "connections", getenv(envName("connections")), "Polyaxon-style connections file")
	r.fs.StringVar(&r.set.Run, "run", getenv(envName("run")), "the run's name in the store")
	return r
}

// parse parses args and checks the run's name. It returns false when the
// command ends here, with the exit code: after --help (usage on stdout), or
// on bad usage (the message on stderr).
func (r *runReader) parse(args []string, usage string, stdout io.Writer) (int, bool) {
	if err := r.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			return exitOK, false
		}
		return r.fail("%v (see collector %s --help)", err, r.name), false
	}
	switch {
	case r.fs.NArg() > 0:
		return r.fail("unexpected argument %q", r.fs.Arg(0)), false
	case r.set.Run == "":
		return r.fail("--run: the run's name is needed (--run or COLLECTOR_RUN)"), false
	case !runPattern.MatchString(r.set.Run):
		return r.fail("--run: %q is not a valid run name; use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", r.set.Run), false
	}
	return exitOK, true
}

// fail prints a usage error, named by the subcommand, and returns exit 2.
func (r *runReader) fail(format string, a ...any) int {
	fmt.Fprintf(r.stderr, "collector %s: %s\n", r.name, fmt.Sprintf(format, a...))
	return exitUsage
}

// open resolves and checks the store and returns it with the run's part of
// it (rooted at <run>/); close closes both. It returns false, with the exit
// code, when the store cannot be used (the message on stderr).
func (r *runReader) open(ctx context.Context) (conn stores.Connection, run *blob.Bucket, close func(), code int, ok bool) {
	conn, err := resolveStore(r.set, r.getenv, nil)
	if err != nil {
		return conn, nil, nil, r.fail("%v", err), false
	}
	store, err := stores.Open(ctx, conn, stores.Options{Getenv: r.getenv, Logger: newLogger(r.stderr, "text", slog.LevelWarn)})
	if err == nil {
		if err = store.Check(ctx); err != nil {
			store.Close()
		}
	}
	if err != nil {
		return conn, nil, nil, r.fail("%v", err), false
	}
	run = blob.PrefixedBucket(store.Bucket(), r.set.Run+"/")
	return conn, run, func() { run.Close(); store.Close() }, exitOK, true
}
