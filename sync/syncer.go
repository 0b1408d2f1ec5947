package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	stdsync "sync"
	"sync/atomic"
	"time"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/internal/backoff"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// Checkpointer saves what the store holds, so a restarted collector knows
// what is already there, and the progress of large uploads after each part,
// so it continues them. It is told each change of the manifest as it
// happens (Record), and saves the changes at each checkpoint: the cost of a
// checkpoint is what changed, not the tree. The resume package implements it.
type Checkpointer interface {
	// Record notes that the store now holds entry for rel, or nothing when
	// entry is nil. It is called under the Syncer's lock, so that the
	// changes are recorded in the order they were made, and must be cheap.
	Record(rel string, entry *resume.Entry)
	// Checkpoint saves the changes recorded since the last checkpoint.
	// outputs returns a copy of the whole manifest, for when the
	// Checkpointer writes a snapshot.
	Checkpoint(ctx context.Context, outputs func() resume.Manifest) error
	stores.Journal
	DropProgress(ctx context.Context, key string) error
}

// Options are a Syncer's collaborators.
type Options struct {
	Logger *slog.Logger
	// Manifest is what the store already holds (from a checkpoint or a restore).
	Manifest resume.Manifest
	// Checkpointer, if set, is called after each pass that changed something.
	Checkpointer Checkpointer
	// SkipDirs are absolute folders inside the outputs folder that are never
	// synced: the store itself when it lies there, the state folder.
	SkipDirs []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Uploads are the resumable uploads in flight when the collector last
	// stopped, continued when the target has a resumable uploader and there
	// is a Checkpointer.
	Uploads map[string]stores.Progress
	// Budget, if set, is the memory budget this Syncer shares with others
	// (the FileUploader of the spool of logs and resources); nil: its own,
	// of Config.MemoryBudget.
	Budget *Budget
	// Adopt makes the first full pass list the store once for objects of
	// files the manifest does not know, which a collector killed before its
	// checkpoint may have uploaded: a small file whose object has its size
	// and MD5 is recorded, not uploaded again.
	Adopt bool
	// Shared says that other collectors store into the same folder (the
	// replicas of a distributed run): before deleting an object, the
	// Syncer checks that it is still the version it stored (ownership.go).
	Shared bool
	// Markers, if set, keeps in the run's state the commit markers seen in
	// the folder and not yet stored (marker.go), for the restore.
	Markers Saver
}

// Syncer mirrors one folder into one bucket.
type Syncer struct {
	cfg     Config
	root    string
	log     *slog.Logger
	scan    scanner
	up      *uploader
	bucket  *blob.Bucket
	ckpt    Checkpointer
	now     func() time.Time
	passMu  stdsync.Mutex // one pass at a time
	mu      stdsync.Mutex // guards manifest and lastErr
	entries resume.Manifest
	lastErr map[string]string   // last error logged per path, to log repeats quietly
	pending map[string]struct{} // paths to look at again: unsettled, changed while read, failed
	// heldSince is when each small file not yet settled was first held
	// back, in a row of passes: one that never settles (a log or metrics
	// file appended to all the time) goes up once held for an interval.
	heldSince map[string]time.Time
	// unseen holds the manifest's paths not seen in the folder since the
	// Syncer started: an earlier attempt's files that this attempt does not
	// have (autoResume off, a restore narrowed by --include). They stay in
	// the manifest as the store holds them, and are never deleted: only what
	// was seen can be (DESIGN.md, the ownership rule). Usually empty, then
	// nil, so it costs nothing on a large tree.
	unseen map[string]struct{}
	// checkpointTook is how long the last checkpoint took, and checkpointed
	// whether there was one (guarded by mu).
	checkpointTook time.Duration
	checkpointed   bool
	// rootMovedWarned: the folder's move to another file system was logged.
	rootMovedWarned bool
	// newestFirst: passes upload the newest files first (since Rush).
	newestFirst atomic.Bool
	// shared: other collectors store into the same folder (Options.Shared).
	shared bool
	// rescan is when the last full scan was and what it cost (guarded by
	// mu): the loop's schedule of scans.
	rescan rescans
	// watch starts the loop's watcher: newWatcher, or a test's.
	watch func() (*watcher, error)

	totals totals

	// adopt says the next full pass lists the store for unrecorded
	// objects (Options.Adopt), until one listing works; unrecorded holds
	// them, by path, for that pass only.
	adopt      bool
	unrecorded map[string]storedObject

	// markers keeps the commit markers that wait (Options.Markers).
	markers markerState
}

// storedObject is what a listing says of an object.
type storedObject struct {
	size int64
	md5  []byte
}

// listUnrecorded lists the target once and keeps, for each file of the scan
// that the manifest does not know, the size and MD5 of the object the store
// holds under its path, if any: objects that a collector killed before its
// checkpoint uploaded, which the pass then records without uploading again.
func (s *Syncer) listUnrecorded(ctx context.Context, files map[string]fileState) error {
	s.mu.Lock()
	want := 0
	for rel := range files {
		if _, ok := s.entries[rel]; !ok {
			want++
		}
	}
	s.mu.Unlock()
	if want == 0 {
		return nil
	}
	found := map[string]storedObject{}
	it := s.bucket.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return stores.Redact(err)
		}
		fs, local := files[obj.Key]
		if !local || obj.IsDir || obj.MD5 == nil || fs.Size != obj.Size {
			continue
		}
		s.mu.Lock()
		_, known := s.entries[obj.Key]
		s.mu.Unlock()
		if !known {
			found[obj.Key] = storedObject{size: obj.Size, md5: obj.MD5}
		}
	}
	s.unrecorded = found
	if len(found) > 0 {
		s.log.Info("found files in the store that the state does not record (a collector was stopped before its checkpoint); each is checked before it is uploaded again", "files", len(found))
	}
	return nil
}

// totals count what the Syncer did since it started (Totals).
type totals struct {
	uploadedFiles, uploadedBytes, deleted, failures, retries atomic.Int64
	pending                                                  atomic.Int64
	lastSync                                                 atomic.Int64 // Unix nanoseconds
}

// Totals are what a Syncer did since it started, for /metrics.
type Totals struct {
	UploadedFiles int64     // files uploaded
	UploadedBytes int64     // their bytes
	Deleted       int64     // objects deleted because their files were
	Failures      int64     // uploads and deletions that failed after their retries
	Retries       int64     // requests tried again after a transient failure
	Pending       int64     // files left for a later pass: unsettled, changing or failed
	LastSync      time.Time // the end of the last pass that left nothing failed; zero before
}

// Totals returns what the Syncer did since it started.
func (s *Syncer) Totals() Totals {
	t := Totals{
		UploadedFiles: s.totals.uploadedFiles.Load(),
		UploadedBytes: s.totals.uploadedBytes.Load(),
		Deleted:       s.totals.deleted.Load(),
		Failures:      s.totals.failures.Load(),
		Retries:       s.totals.retries.Load(),
		Pending:       s.totals.pending.Load(),
	}
	if ns := s.totals.lastSync.Load(); ns != 0 {
		t.LastSync = time.Unix(0, ns)
	}
	return t
}

// retry is retry with uploadAttempts, counting the tries after the first.
func (s *Syncer) retry(ctx context.Context, op func() error) error {
	tries := 0
	err := retry(ctx, uploadAttempts, func() error {
		if tries++; tries > 1 {
			s.totals.retries.Add(1)
		}
		return op()
	})
	return err
}

// PassStats counts what one pass did.
type PassStats struct {
	Uploaded  int           // files uploaded
	Bytes     int64         // bytes uploaded
	Deleted   int           // objects deleted because their files were
	Unchanged int           // files already in the store
	Pending   int           // files not settled yet, or changed while read
	Unsettled int           // of Pending, files not settled yet
	Failed    int           // uploads or deletions that failed; retried next pass
	Refused   int           // of Failed, those that retrying will not mend: a file the collector may not read, a request the store refused
	Took      time.Duration // wall time of the pass
}

// New returns a Syncer for the folder dir and the target, which must be
// rooted where the folder's files go (e.g. <run>/outputs/).
func New(cfg Config, dir string, target stores.Target, opts Options) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		return nil, fmt.Errorf("outputs folder: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "sync")
	entries := opts.Manifest.Clone()
	if entries == nil {
		entries = resume.Manifest{}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Syncer{
		cfg:     cfg,
		root:    root,
		log:     log,
		up:      newUploader(target, cfg, opts),
		bucket:  target.Bucket,
		ckpt:    opts.Checkpointer,
		adopt:   opts.Adopt,
		shared:  opts.Shared,
		markers: markerState{saver: opts.Markers},
		now:     now,
		entries: entries,
		lastErr: map[string]string{},
		pending: map[string]struct{}{},
		unseen:  absent(root, entries),

		heldSince: map[string]time.Time{},
		rescan:    rescans{period: cfg.rescanPeriod()},
	}
	if cfg.RescanEvery > 0 && cfg.Interval > 0 {
		log.Warn("--rescan-every is deprecated: use --rescan-interval; taken as a full scan every --rescan-every × --sync-interval",
			"rescan_every", cfg.RescanEvery, "rescan_interval", cfg.rescanPeriod().Seconds())
	}
	var skip []string
	for _, d := range opts.SkipDirs {
		if abs, err := filepath.Abs(d); err == nil {
			if real, err := filepath.EvalSymlinks(abs); err == nil {
				abs = real
			}
			skip = append(skip, abs)
		}
	}
	warned := map[string]bool{}
	var rootDev uint64
	if fi, err := os.Stat(root); err == nil {
		rootDev = deviceOf(fi)
	}
	s.watch = func() (*watcher, error) { return newWatcher(s.root, s.scan.ignored, s.log) }
	s.scan = scanner{
		root: root, skipDirs: skip, include: cfg.Include, exclude: cfg.Exclude, rootDev: rootDev,
		outside: func(rel, target string) {
			if !warned[rel] {
				warned[rel] = true
				log.Warn("not following a symbolic link that leads outside the outputs folder", "path", rel, "target", target)
			}
		},
	}
	return s, nil
}

// absent returns the manifest's paths that are not in the folder at root,
// or nil when all are there, as they are after a restore or a container
// restart: files the restore brought back count as seen from the start.
func absent(root string, m resume.Manifest) map[string]struct{} {
	var out map[string]struct{}
	for rel := range m {
		if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
			if out == nil {
				out = map[string]struct{}{}
			}
			out[rel] = struct{}{}
		}
	}
	return out
}

// Manifest returns a copy of what the store holds, as far as the Syncer knows.
func (s *Syncer) Manifest() resume.Manifest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries.Clone()
}

// Run syncs until stop ends, then runs the final sync under deadline and
// returns its error. deadline ends when the shutdown budget, counted from
// SIGTERM, is spent; until then the final sync goes on as long as it makes
// progress, so a job that ended by itself has all its outputs uploaded,
// however long that takes.
//
// With an interval, a pass runs every Config.Interval, and file system events
// bring a pass forward: once the tree has been quiet for the settle time, the
// paths they marked are synced without a scan. Every Config.RescanInterval
// (longer when a scan costs more than a share of a core: see rescans), and
// at once whenever the watcher lost track (an overflow, a folder renamed, a
// watch limit), a pass scans the whole folder: events are hints, the scan is
// the truth. Without a watcher, every pass scans.
//
// When stop ends in the middle of a pass, the pass hands out no more files,
// and the uploads it started finish under deadline: a large file's parts in
// flight are not cut off to be sent again by the final sync.
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

// idle hands the memory that passes used back to the system: a sidecar
// spends most of its life waiting, and its RSS should be what it holds then,
// not the peak of its last burst of uploads (the Go runtime returns freed
// memory only slowly by itself). It runs after passes that did work, and
// collects once they have allocated idleGarbage bytes, or an eighth of the
// live heap, since the last time: a collection costs in proportion to the
// live heap, mostly the manifest (about 10 ms of CPU at 100,000 files), and
// a pass that uploads one small file allocates about 200 KB. So a burst of
// uploads is handed back at once, a file changed every second every few
// dozen passes rather than after each, and the RSS stays within that much of
// what the sidecar holds.
func idle() {
	m := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(m)
	allocs, live := m[0].Value.Uint64(), m[1].Value.Uint64()
	last := idleAllocs.Load()
	if allocs-last < max(idleGarbage, live/8) || !idleAllocs.CompareAndSwap(last, allocs) {
		return
	}
	debug.FreeOSMemory()
}

// idleGarbage is what passes allocate, at least, before idle collects.
const idleGarbage = 4 << 20

// idleAllocs is the bytes the process had allocated when idle last collected.
var idleAllocs atomic.Uint64

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
func (s *Syncer) Final(ctx context.Context) error {
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
			return fmt.Errorf("final sync gave up after %v without progress, with %d files not uploaded (%d failed, %d changing)",
				s.cfg.ShutdownTimeout, st.Failed+st.Pending, st.Failed, st.Pending)
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("final sync: %w", err)
			}
			return fmt.Errorf("final sync ran out of time with %d files not uploaded (%d failed, %d changing)", st.Failed+st.Pending, st.Failed, st.Pending)
		case <-time.After(wait.Next()):
		}
	}
}

// checkpointEvery is how often a long pass checkpoints while it runs, at
// most; checkpointShare keeps checkpoints under a tenth of the pass's time by
// spacing them further (a slow store, or a snapshot of a large run's state).
const (
	checkpointEvery = time.Second
	checkpointShare = 10
)

// checkpoint saves the changes the Checkpointer was told of. Checkpoints from
// the pass's workers may overlap: the Checkpointer keeps the changes in the
// order Record was called, so a later change is never saved before an
// earlier one.
func (s *Syncer) checkpoint(ctx context.Context) {
	start := s.now()
	if err := s.ckpt.Checkpoint(context.WithoutCancel(ctx), s.Manifest); err != nil {
		s.log.Warn("checkpoint failed; the next pass tries again", "err", err)
	}
	s.mu.Lock()
	s.checkpointTook = s.now().Sub(start)
	s.checkpointed = true
	s.mu.Unlock()
}

// checkpointAfter tells whether a pass that did st should end with a
// checkpoint: when it changed the store, and the first pass, which tells the
// Checkpointer where the manifest is (it need not keep a copy).
func (s *Syncer) checkpointAfter(st PassStats) bool {
	s.mu.Lock()
	first := !s.checkpointed
	s.mu.Unlock()
	return s.ckpt != nil && (st.Uploaded+st.Deleted > 0 || first)
}

// checkpointDue tells whether a pass that last checkpointed at last should
// checkpoint now.
func (s *Syncer) checkpointDue(last time.Time) bool {
	s.mu.Lock()
	took := s.checkpointTook
	s.mu.Unlock()
	return s.now().Sub(last) >= max(checkpointEvery, checkpointShare*took)
}

// uploadAttempts is how often a pass tries one file when the store's errors
// are transient; after that the file waits for the next pass.
const uploadAttempts = 4

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
	// pass cut short by the stop (the command exited) leaves it to the
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
	if adopting && ctx.Err() == nil {
		s.adopt = false
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

// plan compares the scan with the manifest and returns the work to do, most
// recently settled files last so that old, complete files go first (first
// after Rush).
func (s *Syncer) plan(files map[string]fileState, unreadable map[string]error, final bool, now time.Time, st *PassStats, scope map[string]struct{}) []job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if scope == nil {
		s.pending = map[string]struct{}{}
		for rel := range s.heldSince {
			if _, ok := files[rel]; !ok {
				delete(s.heldSince, rel)
			}
		}
	}
	for rel := range scope {
		delete(s.pending, rel)
	}
	if len(s.unseen) > 0 {
		for rel := range files {
			delete(s.unseen, rel) // seen now: this attempt's to sync, and to delete
		}
		if len(s.unseen) == 0 {
			s.unseen = nil
		}
	}
	var jobs []job
	settleBefore := now.Add(-s.cfg.Settle).UnixNano()
	skewLimit := now.Add(s.cfg.Settle).UnixNano()
	for rel, fs := range files {
		if e, ok := s.entries[rel]; ok && e.SameFile(fs.Size, fs.ModTime, fs.Inode) {
			st.Unchanged++
			continue
		}
		// A file settles once unmodified for Settle; an mtime far in the
		// future (clock skew on a network file system) does not hold it back.
		if !final && fs.ModTime > settleBefore && fs.ModTime < skewLimit && !s.heldLongEnough(rel, fs, now) {
			st.Pending++
			st.Unsettled++
			s.pending[rel] = struct{}{}
			continue
		}
		delete(s.heldSince, rel)
		j := job{rel: rel, state: fs}
		if o, ok := s.unrecorded[rel]; ok && o.size == fs.Size {
			j.storedMD5 = o.md5
		}
		jobs = append(jobs, j)
	}
	if !s.cfg.KeepDeleted {
		// Only what this attempt saw is its to delete: an entry never seen
		// stays in the store and in the manifest.
		gone := func(rel string) {
			_, never := s.unseen[rel]
			if _, ok := files[rel]; !ok && !never && s.scan.wanted(rel) && !underAny(rel, unreadable) {
				jobs = append(jobs, job{rel: rel, delete: true})
			}
		}
		if scope == nil {
			for rel := range s.entries {
				gone(rel)
			}
		} else {
			for rel := range scope {
				if _, ok := s.entries[rel]; ok {
					gone(rel)
				}
			}
		}
	}
	newest := s.newestFirst.Load()
	sort.Slice(jobs, func(a, b int) bool {
		if newest {
			return jobs[a].state.ModTime > jobs[b].state.ModTime
		}
		return jobs[a].state.ModTime < jobs[b].state.ModTime
	})
	return jobs
}

// oneRequest splits jobs, keeping their order, into those of one request to
// the store (a deletion, a file below --part-size) and large files.
func (s *Syncer) oneRequest(jobs []job) (small, large []job) {
	for _, j := range jobs {
		if j.delete || j.state.Size <= s.up.partSize {
			small = append(small, j)
		} else {
			large = append(large, j)
		}
	}
	return small, large
}

// underAny reports whether rel is one of the paths that could not be read,
// or lies in one of those folders.
func underAny(rel string, unreadable map[string]error) bool {
	for u := range unreadable {
		if under(rel, u) {
			return true
		}
	}
	return false
}

// errRootMoved marks the whole folder ("") as not known: see Syncer.pass.
var errRootMoved = errors.New("the outputs folder is on another file system than at the start")

// heldLongEnough tells whether a file that has not settled has been held
// back long enough: a file of one request (below --part-size) that has kept
// changing for a whole sync interval goes up as it is, read whole and
// checked unchanged while read, so that a training log or a metrics file
// appended to every second reaches the store during the run, not only at
// its end. A larger file waits to settle: it is read for seconds, and one
// that changes meanwhile is abandoned before its commit, its bytes sent for
// nothing. Called with s.mu held.
func (s *Syncer) heldLongEnough(rel string, fs fileState, now time.Time) bool {
	if s.cfg.Interval <= 0 || fs.Size >= int64(s.cfg.PartSize) {
		return false
	}
	since, ok := s.heldSince[rel]
	if !ok {
		s.heldSince[rel] = now
		return false
	}
	return now.Sub(since) >= max(s.cfg.Interval, s.cfg.Settle)
}
