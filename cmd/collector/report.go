package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/report"
	"github.com/mlsidecar/collector/resume"
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
