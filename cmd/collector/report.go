package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/report"
	"github.com/mlsidecar/collector/stores"
)

// reportKey is the run's report in the store, under the run's prefix.
const reportKey = "report.html"

// storeLinkExpiry is how long the links of the report written to the store
// stay valid: the longest S3 and GCS sign for.
const storeLinkExpiry = 7 * 24 * time.Hour

// runReportCommand is `collector report`: one self-contained HTML page for a run,
// read from the store.
func runReportCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	set := defaultSettings()
	out := "report.html"
	opts := report.Options{LinkExpiry: 24 * time.Hour, Version: buildVersion()}
	fs := flag.NewFlagSet("collector report", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&set.Store, "store", getenv(envName("store")), "the artifacts store (as for a run)")
	fs.StringVar(&set.Connections, "connections", getenv(envName("connections")), "Polyaxon-style connections file")
	fs.StringVar(&set.Run, "run", getenv(envName("run")), "the run's name in the store")
	fs.StringVar(&out, "o", out, "the HTML file to write; - for stdout")
	fs.IntVar(&opts.LogLines, "log-lines", report.DefaultLogLines, "how many of the log's last lines to show")
	fs.IntVar(&opts.MaxOutputs, "max-outputs", report.DefaultMaxOutputs, "how many outputs to list")
	fs.DurationVar(&opts.LinkExpiry, "link-expiry", opts.LinkExpiry, "how long the signed links to the outputs stay valid (S3, GCS, Azure); 0: no links")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "Usage: collector report --store S --run R [-o report.html|-] [--log-lines N] [--max-outputs N] [--link-expiry 24h]")
			return exitOK
		}
		fmt.Fprintf(stderr, "collector report: %v (see collector report --help)\n", err)
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "collector report: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	case set.Run == "":
		fmt.Fprintln(stderr, "collector report: --run: the run's name is needed (--run or COLLECTOR_RUN)")
		return exitUsage
	case !runPattern.MatchString(set.Run):
		fmt.Fprintf(stderr, "collector report: --run: %q is not a valid run name; use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit\n", set.Run)
		return exitUsage
	case out == "":
		fmt.Fprintln(stderr, "collector report: -o: empty; want a file name, or - for stdout")
		return exitUsage
	case opts.LogLines < 0 || opts.LogLines > 100000:
		fmt.Fprintf(stderr, "collector report: --log-lines: %d; want 0 to 100000\n", opts.LogLines)
		return exitUsage
	case opts.MaxOutputs < 0 || opts.MaxOutputs > 100000:
		fmt.Fprintf(stderr, "collector report: --max-outputs: %d; want 0 to 100000\n", opts.MaxOutputs)
		return exitUsage
	case opts.LinkExpiry < 0 || opts.LinkExpiry > storeLinkExpiry:
		fmt.Fprintf(stderr, "collector report: --link-expiry: %v; want 0 (no links) to 168h (what S3 and GCS sign for)\n", opts.LinkExpiry)
		return exitUsage
	}
	if opts.LogLines == 0 {
		opts.LogLines = -1 // none
	}
	if opts.MaxOutputs == 0 {
		opts.MaxOutputs = -1
	}
	conn, err := resolveStore(set, getenv, nil)
	if err != nil {
		fmt.Fprintln(stderr, "collector report:", err)
		return exitUsage
	}
	store, err := stores.Open(ctx, conn, stores.Options{Getenv: getenv, Logger: newLogger(stderr, "text", slog.LevelWarn)})
	if err == nil {
		if err = store.Check(ctx); err != nil {
			store.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "collector report:", err)
		return exitUsage
	}
	defer store.Close()
	run := blob.PrefixedBucket(store.Bucket(), set.Run+"/")
	defer run.Close()

	opts.Run, opts.Store = set.Run, stores.Describe(conn)
	rep, err := report.Collect(ctx, run, opts)
	if errors.Is(err, report.ErrNoRun) {
		fmt.Fprintf(stderr, "collector report: the store holds nothing of run %q: no such run, or it has stored nothing yet (check --run and --store)\n", set.Run)
		return exitFailure
	}
	if err == nil {
		err = writeReport(rep, out, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "collector report:", stores.Redact(err))
		return exitFailure
	}
	if out != "-" {
		fmt.Fprintf(stderr, "collector report: wrote %s (%d attempts, %d plots, %d outputs, %d log lines)\n",
			out, len(rep.Attempts), len(rep.Plots), rep.OutputsCount, len(rep.Log))
	}
	return exitOK
}

// writeReport writes the page to the file out (through a temporary file
// beside it, so that a failure leaves no half page), or to stdout for "-".
func writeReport(rep *report.Report, out string, stdout io.Writer) error {
	if out == "-" {
		return rep.Write(stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := rep.Write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return os.Rename(f.Name(), out)
}
