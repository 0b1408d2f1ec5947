package sync

import (
	"context"
	"fmt"
	"log/slog"
	stdsync "sync"
	"time"
)

// PassStats counts what one pass did.
type PassStats struct {
	Uploaded  int           // files uploaded
	Bytes     int64         // bytes uploaded
	Deleted   int           // objects deleted because their files were
	Unchanged int           // files already in the store
	Pending   int           // files not settled yet, or changed while read
	Unsettled int           // of Pending, files not settled yet
	Waiting   int           // of Pending, commit markers waiting for other replicas' files
	Failed    int           // uploads or deletions that failed; retried next pass
	Refused   int           // of Failed, those that retrying will not mend: a file the collector may not read, a request the store refused
	Took      time.Duration // wall time of the pass
}

// job is one upload or deletion decided by a pass.
type job struct {
	rel    string
	state  fileState
	delete bool
	// storedMD5 is the MD5 of an object the store holds under rel that the
	// manifest does not know (Options.Adopt), of the file's size: when the
	// file has the same MD5, it is recorded without being uploaded.
	storedMD5 []byte
}

// Rush runs a pass at once over the whole folder, whatever the interval,
// uploading every file as it is (settled or not, as the final sync does),
// the newest first; the passes after it, the final one included, go newest
// first too. It is for a notice that the machine is about to go: what the
// job wrote last is what a retry needs. It waits for a pass already running.
func (s *Syncer) Rush(ctx context.Context) (PassStats, error) {
	s.newestFirst.Store(true)
	return s.pass(ctx, true, nil)
}

// Pass scans the folder once and uploads what is new or changed (and settled,
// unless final), deletes what was deleted locally, and checkpoints. Failures
// are counted in the stats and retried by the next pass; the error is for a
// pass that could not run at all.
func (s *Syncer) Pass(ctx context.Context, final bool) (PassStats, error) {
	return s.pass(ctx, final, nil)
}

// pass syncs the paths in scope, or the whole folder when scope is nil.
func (s *Syncer) pass(ctx context.Context, final bool, scope map[string]struct{}) (PassStats, error) {
	return s.passUntil(ctx, ctx, final, scope)
}

// passUntil is pass handing out jobs until stop ends. The jobs run under
// ctx, so that one started before stop ended is not cut off midway.
func (s *Syncer) passUntil(stop, ctx context.Context, final bool, scope map[string]struct{}) (PassStats, error) {
	s.passMu.Lock()
	defer s.passMu.Unlock()
	if s.progress != nil {
		s.progress.begin(ctx)
	}
	start := s.now()
	cpu0, _ := processCPU()
	var st PassStats
	var files map[string]fileState
	var unreadable map[string]error
	if scope == nil {
		var err error
		if files, unreadable, err = s.scan.scan(); err != nil {
			return st, fmt.Errorf("scan %s: %w", s.root, err)
		}
	} else {
		files, unreadable = s.scan.stat(scope)
	}
	// What cannot be read is a failure of the pass (a refusal when it is a
	// permission), and nothing under it is taken as deleted.
	for rel, err := range unreadable {
		st.Failed++
		if permanent(err) {
			st.Refused++
		}
		if ctx.Err() == nil {
			s.logFailure(rel, fmt.Errorf("cannot read it, so its files are neither uploaded nor deleted: %w", err))
		}
	}
	// Adopting lasts until a full pass with a listing runs to its end: a
	// pass cut short (the command exited, and stop ended) leaves it to the
	// final pass.
	adopting := false
	if scope == nil && s.adopt {
		switch err := s.listUnrecorded(ctx, files); {
		case err == nil:
			adopting = true
		case ctx.Err() == nil:
			s.log.Warn("cannot list the store for files a killed collector uploaded; this pass uploads them again, the next full pass lists again", "err", err)
		}
	}
	if s.scan.rootMoved() {
		// Unmounted under us: an empty folder, whose files would all look
		// deleted. What is there is uploaded; nothing is deleted.
		if !s.rootMovedWarned {
			s.rootMovedWarned = true
			s.log.Warn("the outputs folder is on another file system than at the start (was its volume unmounted?): nothing is deleted from the store until it is back", "path", s.root)
		}
		unreadable[""] = errRootMoved
	} else {
		s.rootMovedWarned = false
	}
	jobs := s.plan(files, unreadable, final, start, &st, scope)
	if scope == nil {
		end := s.now()
		cost := scanCost(start, end, cpu0)
		s.mu.Lock()
		s.rescan.last, s.rescan.cost = end, cost
		s.mu.Unlock()
		s.up.abandonMissing(ctx, files)
		s.unrecorded = nil
	}

	var mu stdsync.Mutex // guards st and lastCheckpoint
	lastCheckpoint := start
	// Two fixed sets of workers, not a goroutine per file (a worker's stack
	// grows once to what the SDK's deep call chains need, rather than once
	// for every small file): --requests for the jobs of one request, whose
	// cost is a round trip, and --workers for large files, whose parts
	// hold the memory budget. Each set takes its jobs in the plan's order.
	var workers stdsync.WaitGroup
	run := func(jobs []job, n int) {
		if len(jobs) == 0 {
			return
		}
		work := make(chan job)
		for range min(n, len(jobs)) {
			workers.Go(func() {
				for j := range work {
					entry, err := s.do(ctx, j)
					mu.Lock()
					// Long passes checkpoint as they go, so a killed collector
					// redoes at most this much.
					due := err == nil && s.ckpt != nil && s.checkpointDue(lastCheckpoint)
					if due {
						lastCheckpoint = s.now()
					}
					s.count(ctx, &st, j, entry, err)
					mu.Unlock()
					if due {
						s.checkpoint(ctx)
					}
				}
			})
		}
		workers.Go(func() {
			defer close(work)
			for _, j := range jobs {
				if stop.Err() != nil || ctx.Err() != nil {
					return
				}
				work <- j
			}
		})
	}
	if len(s.cfg.CommitMarkers) == 0 {
		small, large := s.oneRequest(jobs)
		run(small, s.cfg.Requests)
		run(large, s.cfg.Workers)
		workers.Wait()
	} else {
		s.passWithMarkers(ctx, &st, jobs, files, final, scope == nil, func(jobs []job) {
			small, large := s.oneRequest(jobs)
			run(small, s.cfg.Requests)
			run(large, s.cfg.Workers)
			workers.Wait()
		})
	}
	if adopting && ctx.Err() == nil && stop.Err() == nil {
		s.adopt = false
	}
	if s.progress != nil {
		// A full pass that ran to its end moves this replica's T up to
		// its start (progress.go).
		var t time.Time
		if scope == nil && ctx.Err() == nil && stop.Err() == nil {
			t = s.synced(start, files, unreadable)
		}
		s.progress.publish(ctx, t, false)
	}
	st.Took = s.now().Sub(start)
	s.totals.uploadedFiles.Add(int64(st.Uploaded))
	s.totals.uploadedBytes.Add(st.Bytes)
	s.totals.deleted.Add(int64(st.Deleted))
	s.totals.failures.Add(int64(st.Failed))
	s.mu.Lock()
	s.totals.pending.Store(int64(len(s.pending)))
	s.mu.Unlock()
	if st.Failed == 0 {
		s.totals.lastSync.Store(s.now().UnixNano())
	}
	if s.checkpointAfter(st) {
		s.checkpoint(ctx)
	}
	level := slog.LevelDebug
	if st.Uploaded+st.Deleted+st.Failed > 0 || final {
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "sync pass", "final", final, "scan", scope == nil, "uploaded", st.Uploaded, "bytes", st.Bytes,
		"deleted", st.Deleted, "unchanged", st.Unchanged, "pending", st.Pending, "failed", st.Failed,
		"took", st.Took.Round(time.Millisecond))
	return st, nil
}
