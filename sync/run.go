package sync

import (
	"context"
	"fmt"
	"time"

	"github.com/mlsidecar/collector/internal/backoff"
)

// Run syncs until stop ends, then runs the final sync under deadline and
// returns its error. deadline ends when the shutdown budget, counted from
// SIGTERM, is spent; until then the final sync goes on as long as it makes
// progress, so a job that ended by itself has all its outputs uploaded.
// When stop ends in the middle of a pass, the pass hands out no more files,
// and the uploads it started finish under deadline: a large file's parts in
// flight are not cut off to be sent again by the final sync.
//
// With an interval, a pass runs every Config.Interval, file system events
// bring one forward (only the paths they marked, once the tree is quiet for
// the settle time), and a full scan runs on its own schedule (rescans) or at
// once when the watcher lost track: events are hints, the scan is the truth.
// Without a watcher, every pass scans. docs/sync.md has the whole design.
func (s *Syncer) Run(stop, deadline context.Context) error {
	if s.cfg.Interval > 0 {
		s.loop(stop, deadline)
	} else {
		<-stop.Done()
	}
	return s.Final(deadline)
}

// loop runs passes until stop ends; their uploads run under deadline.
func (s *Syncer) loop(stop, deadline context.Context) {
	var changed <-chan struct{}
	w, err := s.watch()
	if err != nil {
		s.log.Warn("cannot watch the outputs folder; relying on periodic scans", "err", err)
	} else {
		wctx, stop := context.WithCancel(stop)
		runDone := make(chan struct{})
		go func() {
			defer close(runDone)
			w.Run(wctx)
		}()
		defer func() { // stop Run before closing what it uses
			stop()
			<-runDone
			w.Close()
		}()
		changed = w.Changed()
	}
	ticker := time.NewTicker(s.cfg.Interval)
	defer ticker.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	quiet := max(s.cfg.Settle, 200*time.Millisecond)
	// What is already there goes first, without waiting for the interval.
	if _, err := s.passUntil(stop, deadline, false, nil); err != nil && stop.Err() == nil {
		s.log.Error("sync pass failed", "err", err)
	}
	idle()
	// The full scans' own timer, apart from the interval's ticker: reset
	// after every pass, as any pass may have been a full scan.
	rescan := time.NewTimer(s.untilRescan())
	defer rescan.Stop()
	for {
		var st PassStats
		var err error
		select {
		case <-stop.Done():
			return
		case <-changed:
			debounce.Reset(quiet)
			continue
		case <-debounce.C:
			st, err = s.incremental(stop, deadline, w)
		case <-ticker.C:
			if w == nil {
				st, err = s.passUntil(stop, deadline, false, nil)
			} else {
				st, err = s.incremental(stop, deadline, w)
			}
		case <-rescan.C:
			if s.untilRescan() > 0 {
				break // a scan the watcher asked for came meanwhile
			}
			if w != nil {
				w.Take() // the scan covers what the events marked
			}
			st, err = s.passUntil(stop, deadline, false, nil)
		}
		rescan.Reset(s.untilRescan())
		if err != nil && stop.Err() == nil {
			s.log.Error("sync pass failed", "err", err)
		}
		if st.Uploaded+st.Deleted > 0 {
			idle()
		}
		if st.Unsettled > 0 && w != nil {
			debounce.Reset(quiet) // come back when they have settled
		}
	}
}

// untilRescan is how long until the next full scan is due (<= 0: due).
func (s *Syncer) untilRescan() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rescan.until(s.now())
}

// incremental syncs the paths the watcher marked and those left pending by
// earlier passes, or scans everything when the watcher asks for it.
func (s *Syncer) incremental(stop, ctx context.Context, w *watcher) (PassStats, error) {
	dirty, rescan := w.Take()
	if rescan {
		return s.passUntil(stop, ctx, false, nil)
	}
	s.mu.Lock()
	for rel := range s.pending {
		if dirty == nil {
			dirty = map[string]struct{}{}
		}
		dirty[rel] = struct{}{}
	}
	s.mu.Unlock()
	if len(dirty) == 0 {
		return PassStats{}, nil
	}
	return s.passUntil(stop, ctx, false, dirty)
}

// Final syncs every file as it is, retrying what fails until everything is in
// the store, ctx ends, or Config.ShutdownTimeout passes without a pass that
// uploaded or deleted anything (a store that stays down does not hold a
// finished job forever). It returns an error naming how much was left behind.
//
// A snapshot of the state still due when it ends is handed the manifest
// and written then: the checkpoints after the outputs sync have none to give.
func (s *Syncer) Final(ctx context.Context) error {
	if s.ckpt != nil {
		defer func() {
			if s.ckpt.WantsManifest() {
				s.checkpoint(ctx)
			}
		}()
	}
	if s.progress != nil {
		// Done or given up, this replica uploads nothing more: its
		// files hold no other replica's marker (progress.go).
		defer func() {
			if ctx.Err() == nil {
				s.progress.publish(ctx, time.Time{}, true)
			}
		}()
	}
	wait := backoff.Backoff{Min: 200 * time.Millisecond, Max: 2 * time.Second}
	lastProgress := s.now()
	for attempt := 1; ; attempt++ {
		st, err := s.Pass(ctx, true)
		if err == nil && st.Failed == 0 && st.Pending == 0 {
			s.log.Info("final sync done", "attempts", attempt)
			return nil
		}
		if st.Uploaded+st.Deleted > 0 {
			lastProgress = s.now()
		}
		if err == nil && st.Pending == 0 && st.Failed > 0 && st.Refused == st.Failed && attempt > 1 {
			// Twice refused, nothing else left: waiting out the shutdown
			// timeout would only hold the job's end back.
			return fmt.Errorf("final sync: %d paths cannot be synced, and trying again will not change that (%s)", st.Failed, s.someFailure())
		}
		if s.now().Sub(lastProgress) >= s.cfg.ShutdownTimeout {
			return fmt.Errorf("final sync gave up after %v without progress, with %s", s.cfg.ShutdownTimeout, leftBehind(st))
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("final sync: %w", err)
			}
			return fmt.Errorf("final sync ran out of time with %s", leftBehind(st))
		case <-time.After(wait.Next()):
		}
	}
}

// leftBehind says what a final sync that ends early leaves behind.
func leftBehind(st PassStats) string {
	msg := fmt.Sprintf("%d files not uploaded (%d failed, %d changing", st.Failed+st.Pending, st.Failed, st.Pending-st.Waiting)
	if st.Waiting > 0 {
		msg += fmt.Sprintf(", %d commit markers waiting for other replicas' files", st.Waiting)
	}
	return msg + ")"
}
