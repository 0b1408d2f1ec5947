package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/logs"
	"github.com/mlsidecar/collector/resume"
)

// runLogs is `collector logs`: print a run's logs from the store.
func runLogs(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	r := newRunReader("logs", getenv, stderr)
	set, fs := r.set, r.fs
	var container, stream, replica string
	var follow, asJSON bool
	interval := 2 * time.Second
	fs.StringVar(&container, "container", "", "only this container's lines")
	fs.StringVar(&stream, "stream", "", "only stdout or stderr")
	fs.StringVar(&replica, "replica", "", "only this replica's lines (a distributed run; each line is labelled with its replica)")
	fs.BoolVar(&follow, "follow", false, "keep printing lines as new chunks land")
	fs.BoolVar(&asJSON, "json", false, "print the records (JSON Lines) instead of the lines")
	fs.DurationVar(&interval, "follow-interval", interval, "how often --follow looks for new chunks")
	if code, ok := r.parse(args, "Usage: collector logs --store S --run R [--replica NAME] [--container C] [--stream stdout|stderr] [--follow] [--json]", stdout); !ok {
		return code
	}
	switch {
	case stream != "" && stream != "stdout" && stream != "stderr":
		return r.fail("--stream: %q is not a stream; valid: stdout, stderr", stream)
	case validateReplica(replica) != nil:
		return r.fail("%v", validateReplica(replica))
	case interval <= 0:
		return r.fail("--follow-interval: %v; want a positive duration like 2s", interval)
	}
	_, run, closeRun, code, ok := r.open(ctx)
	if !ok {
		return code
	}
	defer closeRun()

	w := newLineWriter(stdout)
	printed := 0
	midLine := false // the last record printed continues on the next
	print := func(e *logs.StoredRecord, raw []byte) error {
		printed++
		if asJSON {
			if e.Replica != "" {
				// The chunk's record, with the replica its key names.
				w.Write([]byte(`{"replica":` + strconv.Quote(e.Replica) + `,`))
				raw = raw[1:]
			}
			w.Write(raw)
			w.Write([]byte{'\n'})
		} else {
			if e.Replica != "" && !midLine {
				w.Write([]byte("[" + e.Replica + "] "))
			}
			midLine = e.Continued
			w.Write(e.Line())
			if !e.Continued {
				w.Write([]byte{'\n'})
			}
		}
		return w.err
	}
	f := logs.Filter{Container: container, Stream: stream, Replica: replica}
	var err error
	if follow {
		lastEnded := func(ctx context.Context, replica string) (int, bool, error) {
			return resume.LastEnded(ctx, run, replica)
		}
		err = logs.Follow(ctx, run, interval, f, lastEnded, func(e *logs.StoredRecord, raw []byte) error {
			err := print(e, raw)
			return errors.Join(err, w.Flush())
		})
	} else {
		err = logs.Read(ctx, run, f, print)
	}
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "collector logs:", err)
		return exitFailure
	}
	if printed == 0 && !follow {
		return explainNoLines(ctx, run, set.Run, stderr)
	}
	return exitOK
}

// explainNoLines says on stderr why nothing was printed: a run of which the
// store holds nothing at all (a typo in --run or --store) fails, so that a
// script notices; a run without logs (collectLogs off, or none captured
// yet) is only noted.
func explainNoLines(ctx context.Context, run *blob.Bucket, name string, stderr io.Writer) int {
	has := func(prefix string) (bool, error) {
		_, err := run.List(&blob.ListOptions{Prefix: prefix}).Next(ctx)
		if err == io.EOF {
			return false, nil
		}
		return err == nil, err
	}
	any, err := has("")
	if err != nil {
		fmt.Fprintln(stderr, "collector logs:", err)
		return exitFailure
	}
	if !any {
		fmt.Fprintf(stderr, "collector logs: the store holds nothing of run %q: no such run, or it has stored nothing yet (check --run and --store)\n", name)
		return exitFailure
	}
	withLogs, err := has(logs.Folder + "/")
	if err == nil && !withLogs {
		withLogs, err = has(logs.ReplicasFolder + "/")
	}
	if err == nil && !withLogs {
		fmt.Fprintf(stderr, "collector logs: run %q has no logs in the store (log collection off, or nothing captured yet)\n", name)
	}
	return exitOK
}

// lineWriter buffers stdout and keeps the first error.
type lineWriter struct {
	w   io.Writer
	buf []byte
	err error
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: w} }

func (l *lineWriter) Write(p []byte) {
	l.buf = append(l.buf, p...)
	if len(l.buf) >= 64<<10 {
		l.Flush()
	}
}

func (l *lineWriter) Flush() error {
	if len(l.buf) > 0 && l.err == nil {
		_, l.err = l.w.Write(l.buf)
	}
	l.buf = l.buf[:0]
	return l.err
}
