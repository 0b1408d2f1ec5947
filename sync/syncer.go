package sync

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	stdsync "sync"
	"sync/atomic"
	"time"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

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
	// Run, with commit markers on a replica's target, is the run's folder
	// in the store (<run>/): the replica publishes there how far its sync
	// has got, and a marker waits for every replica's (progress.go).
	Run *blob.Bucket
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
	// progress is this replica's share of the markers' wait for the
	// others (Options.Run); nil without replicas or markers.
	progress *progress
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
		cfg:      cfg,
		root:     root,
		log:      log,
		up:       newUploader(target, cfg, opts),
		bucket:   target.Bucket,
		ckpt:     opts.Checkpointer,
		adopt:    opts.Adopt,
		shared:   opts.Shared,
		markers:  markerState{saver: opts.Markers},
		progress: newProgress(cfg, target.Replica(), opts, log),
		now:      now,
		entries:  entries,
		lastErr:  map[string]string{},
		pending:  map[string]struct{}{},
		unseen:   absent(root, entries),

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
