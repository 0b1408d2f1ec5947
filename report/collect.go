package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	stdsync "sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/mlsidecar/collector/logs"
	"github.com/mlsidecar/collector/resources"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// Options say what Collect reads and how much of it.
type Options struct {
	Run   string // the run's name
	Store string // the store, described for a person (no secret)
	// Version is the collector's, shown at the foot of the page.
	Version string
	// Current is the record of the attempt ending now: Collect needs it
	// where it is not in the store yet.
	Current *AttemptRecord
	// LogLines is how many of the log's last lines to show (0: 200,
	// negative: none).
	LogLines int
	// MaxOutputs is how many outputs to list (0: 500, negative: none).
	MaxOutputs int
	// LinkExpiry is how long signed links stay valid; 0 signs none.
	LinkExpiry time.Duration
	// RelativeLinks links the outputs relative to <run>/report.html where
	// no signed link is made: for the report written to the store.
	RelativeLinks bool
	// Now is the report's time (default time.Now).
	Now time.Time
}

// Defaults of Options.
const (
	DefaultLogLines   = 200
	DefaultMaxOutputs = 500
)

// ErrNoRun says the store holds nothing of the run.
var ErrNoRun = errors.New("the store holds nothing of the run")

// Collect reads the run (run is the store rooted at <run>/) into a Report.
// What cannot be read is a note in the report, not an error, so that the
// page shows what is there; a store that holds nothing of the run is
// ErrNoRun.
func Collect(ctx context.Context, run *blob.Bucket, opts Options) (*Report, error) {
	if opts.LogLines == 0 {
		opts.LogLines = DefaultLogLines
	}
	if opts.MaxOutputs == 0 {
		opts.MaxOutputs = DefaultMaxOutputs
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	r := &Report{Run: opts.Run, Store: opts.Store, Generated: opts.Now.UTC(), Version: opts.Version}

	// The parts of a run are read at once: each is a few requests in a
	// row, and a store a network hop away makes each request a round trip.
	// Each part writes only its own variables (the outputs and the log
	// their own fields of r); the notes are merged in a fixed order after.
	var (
		wg           stdsync.WaitGroup
		listErr      error
		recs         []AttemptRecord
		attemptNotes []string
		attemptsErr  error
		lastEnded    int
		ended        bool
		endedErr     error
		preempted    int
		preemption   *Preemption
		summary      *resources.Summary
		summaryErr   error
		sp           = newSampled()
		seriesNotes  []string
		linksNote    string
		outputsErr   error
		logErr       error
	)
	read := func(part func()) {
		wg.Add(1)
		go func() { defer wg.Done(); part() }()
	}
	read(func() { _, listErr = run.List(nil).Next(ctx) })
	read(func() { recs, attemptNotes, attemptsErr = readAttempts(ctx, run) })
	read(func() { lastEnded, ended, endedErr = resume.LastEnded(ctx, run, "") })
	read(func() { preempted, preemption = endedPreemption(ctx, run) })
	read(func() {
		if s, ok, err := resources.ReadSummary(ctx, run); err != nil {
			summaryErr = err
		} else if ok {
			summary = s
		}
	})
	read(func() { seriesNotes = readAllSeries(ctx, run, sp) })
	read(func() { linksNote, outputsErr = r.readOutputs(ctx, run, opts) })
	read(func() { logErr = r.readLog(ctx, run, opts.LogLines) })
	wg.Wait()
	if errors.Is(listErr, io.EOF) {
		return nil, ErrNoRun
	} else if listErr != nil {
		return nil, fmt.Errorf("list the run: %w", listErr)
	}
	note := func(format string, args ...any) { r.Notes = append(r.Notes, fmt.Sprintf(format, args...)) }

	tracks := map[Track]*Attempt{}
	track := func(t Track) *Attempt {
		a := tracks[t]
		if a == nil {
			a = &Attempt{Track: t}
			tracks[t] = a
		}
		return a
	}
	if attemptsErr != nil {
		note("%v", attemptsErr)
	}
	r.Notes = append(r.Notes, attemptNotes...)
	if opts.Current != nil {
		recs = append(recs, *opts.Current)
	}
	for i := range recs {
		rec := recs[i]
		a := track(Track{rec.Replica, rec.Attempt})
		a.Record, a.Start, a.End = &rec, rec.Started, rec.Ended
		if rec.Preemption != nil {
			a.Preemption = rec.Preemption
		}
	}
	if endedErr != nil {
		note("%v", endedErr)
	}
	if preemption != nil {
		track(Track{Attempt: preempted}).Preemption = preemption
	}
	if summaryErr != nil {
		note("%v", summaryErr)
	}
	r.Summary = summary
	r.Notes = append(r.Notes, seriesNotes...)
	for t, sa := range sp.tracks {
		a := track(t)
		if a.Start.IsZero() {
			a.Start = time.Unix(0, sa.first)
		}
		if a.End.IsZero() {
			a.End = time.Unix(0, sa.last)
		}
		for _, ns := range sa.ooms {
			a.OOMKills = append(a.OOMKills, time.Unix(0, ns).UTC())
		}
		if len(sa.exits) > 0 {
			a.Containers = sa.exits
		}
	}

	// Every attempt up to the highest seen started, even those that left
	// nothing (a kill before the first sample).
	highest := lastEnded
	for t := range tracks {
		if t.Replica == "" {
			highest = max(highest, t.Attempt)
		}
	}
	for n := 1; n <= highest; n++ {
		track(Track{Attempt: n})
	}
	if ended {
		track(Track{Attempt: lastEnded}).Ended = true
	}
	for _, a := range tracks {
		if a.Record != nil {
			a.Ended = true
		}
		r.Attempts = append(r.Attempts, *a)
	}
	sort.Slice(r.Attempts, func(i, j int) bool { return r.Attempts[i].Track.less(r.Attempts[j].Track) })

	r.T0, r.T1 = sp.first, sp.last
	for _, a := range r.Attempts {
		for _, t := range []time.Time{a.Start, a.End} {
			if t.IsZero() {
				continue
			}
			if r.T0 == 0 || t.UnixNano() < r.T0 {
				r.T0 = t.UnixNano()
			}
			r.T1 = max(r.T1, t.UnixNano())
		}
	}
	r.Plots = sp.plots(r.T0, r.T1, r.Attempts)

	if outputsErr != nil {
		note("outputs: %v", outputsErr)
	}
	if linksNote != "" {
		note("%s", linksNote)
	}
	if logErr != nil {
		note("log: %v", logErr)
	}
	return r, nil
}

// readAllSeries reads the run's resource series into sp, then each
// replica's (a distributed run keeps them in each replica's folder), and
// returns what could not be read, as notes.
func readAllSeries(ctx context.Context, run *blob.Bucket, sp *sampled) (notes []string) {
	if err := resources.ReadSeries(ctx, run, "", sp.add); err != nil {
		notes = append(notes, fmt.Sprintf("resource series: %v", err))
	}
	replicas, err := resume.ListReplicas(ctx, run)
	if err != nil {
		notes = append(notes, err.Error())
	}
	for _, name := range replicas {
		sp.replica = name
		if err := resources.ReadSeries(ctx, run, name, sp.add); err != nil {
			notes = append(notes, fmt.Sprintf("resource series of replica %s: %v", name, err))
		}
	}
	sp.replica = ""
	return notes
}

// endedPreemption reads a preemption notice from resume's ended record,
// where the preemption notice is recorded with the attempt that got it.
func endedPreemption(ctx context.Context, run *blob.Bucket) (int, *Preemption) {
	data, err := run.ReadAll(ctx, resume.EndedKey)
	if err != nil {
		return 0, nil
	}
	var e struct {
		Attempt    int         `json:"attempt"`
		Preemption *Preemption `json:"preemption"`
	}
	if json.Unmarshal(data, &e) != nil {
		return 0, nil
	}
	return e.Attempt, e.Preemption
}

// maxListed bounds the listing of outputs/, which the totals count: a
// run of millions of files is not listed whole for its page.
const maxListed = 100000

// readOutputs lists outputs/ and links the first MaxOutputs; linksNote
// says why the links are paths only, where the store did not sign them.
func (r *Report) readOutputs(ctx context.Context, run *blob.Bucket, opts Options) (linksNote string, err error) {
	it := stores.List(run, &blob.ListOptions{Prefix: resume.OutputsPrefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		if obj.IsDir {
			continue
		}
		if r.OutputsCount == maxListed {
			r.OutputsMore = true
			break
		}
		r.OutputsCount++
		r.OutputsBytes += obj.Size
		if len(r.Outputs) < opts.MaxOutputs {
			r.Outputs = append(r.Outputs, Output{Path: strings.TrimPrefix(obj.Key, resume.OutputsPrefix), Size: obj.Size, ModTime: obj.ModTime.UTC()})
		}
	}
	sign := opts.LinkExpiry > 0
	if sign {
		if err := r.signLinks(ctx, run, opts.LinkExpiry); err != nil {
			if gcerrors.Code(err) != gcerrors.Unimplemented {
				linksNote = fmt.Sprintf("links: the store did not sign a URL (%v): paths only", err)
			}
			for j := range r.Outputs {
				r.Outputs[j].URL = ""
			}
			sign = false
		}
	}
	r.Signed = sign && len(r.Outputs) > 0
	if r.Signed {
		r.LinksExpire = opts.Now.Add(opts.LinkExpiry).UTC()
	}
	if !r.Signed && opts.RelativeLinks {
		for i := range r.Outputs {
			r.Outputs[i].URL = relativeLink(r.Outputs[i].Path)
		}
	}
	return linksNote, nil
}

// signers is how many links are signed at once: signing is local work for
// S3, Azure and GCS with a key, a request to the IAM Credentials API for
// GCS without one.
const signers = 16

// signLinks signs a link to each output; on the first error it stops and
// returns it. Bounded in time: a store that signs slowly costs the page its
// links, not its other parts.
func (r *Report) signLinks(ctx context.Context, run *blob.Bucket, expiry time.Duration) error {
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	g, gctx := errgroup.WithContext(tctx)
	g.SetLimit(signers)
	for i := range r.Outputs {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			u, err := run.SignedURL(gctx, resume.OutputsPrefix+r.Outputs[i].Path, &blob.SignedURLOptions{Expiry: expiry})
			r.Outputs[i].URL = u
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, o := range r.Outputs {
		if o.URL == "" { // out of time before every link was signed
			return fmt.Errorf("signing %d links: %w", len(r.Outputs), context.DeadlineExceeded)
		}
	}
	return nil
}

// relativeLink is the output's object relative to <run>/report.html.
func relativeLink(path string) string {
	parts := strings.Split(resume.OutputsPrefix+path, "/")
	for i, p := range parts {
		parts[i] = pathEscape(p)
	}
	return "./" + strings.Join(parts, "/")
}

var errorLine = regexp.MustCompile(`(?i)error|exception|traceback|fatal|panic`)

// ansi matches terminal escape sequences (colours, cursor moves).
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// maxLineChars bounds a log line on the page.
const maxLineChars = 1000

// readLog reads the log's last n lines.
func (r *Report) readLog(ctx context.Context, run *blob.Bucket, n int) error {
	return logs.Tail(ctx, run, logs.Filter{}, n, func(e *logs.StoredRecord, _ []byte) error {
		text := ansi.ReplaceAllString(e.Value, "")
		if len(text) > maxLineChars {
			text = strings.ToValidUTF8(text[:maxLineChars], "") + "…"
		}
		r.Log = append(r.Log, LogLine{
			Time: e.Timestamp.UTC(), Track: Track{Attempt: e.Attempt}, Container: e.Container, Stream: e.Stream,
			Text: text, Error: errorLine.MatchString(text),
		})
		return nil
	})
}
