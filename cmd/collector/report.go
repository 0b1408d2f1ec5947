package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

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
	r := newRunReader("report", getenv, stderr)
	set, fs := r.set, r.fs
	out := "report.html"
	opts := report.Options{LinkExpiry: 24 * time.Hour, Version: buildVersion()}
	fs.StringVar(&out, "o", out, "the HTML file to write; - for stdout")
	fs.IntVar(&opts.LogLines, "log-lines", report.DefaultLogLines, "how many of the log's last lines to show")
	fs.IntVar(&opts.MaxOutputs, "max-outputs", report.DefaultMaxOutputs, "how many outputs to list")
	fs.DurationVar(&opts.LinkExpiry, "link-expiry", opts.LinkExpiry, "how long the signed links to the outputs stay valid (S3, GCS, Azure); 0: no links")
	if code, ok := r.parse(args, "Usage: collector report --store S --run R [-o report.html|-] [--log-lines N] [--max-outputs N] [--link-expiry 24h]", stdout); !ok {
		return code
	}
	switch {
	case out == "":
		return r.fail("-o: empty; want a file name, or - for stdout")
	case opts.LogLines < 0 || opts.LogLines > 100000:
		return r.fail("--log-lines: %d; want 0 to 100000", opts.LogLines)
	case opts.MaxOutputs < 0 || opts.MaxOutputs > 100000:
		return r.fail("--max-outputs: %d; want 0 to 100000", opts.MaxOutputs)
	case opts.LinkExpiry < 0 || opts.LinkExpiry > storeLinkExpiry:
		return r.fail("--link-expiry: %v; want 0 (no links) to 168h (what S3 and GCS sign for)", opts.LinkExpiry)
	}
	if opts.LogLines == 0 {
		opts.LogLines = -1 // none
	}
	if opts.MaxOutputs == 0 {
		opts.MaxOutputs = -1
	}
	conn, run, closeRun, code, ok := r.open(ctx)
	if !ok {
		return code
	}
	defer closeRun()

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
