package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/resume"
)

// A commit marker in a distributed run (docs/sync.md, "Replicas"): every
// rank writes its shards of a checkpoint folder on its own host, rank 0 the
// marker last, and each host has its own collector. The marker's replica
// knows its own files only, so every replica publishes in the store how far
// its sync has got (progressKey): Synced, a time T such that every file of
// its folder but the commit markers that was modified before T is in the
// store (T is the start, by the replica's own clock, of the last full pass
// that found every such file stored as it is on disk, or the mtime of the
// oldest it did not find stored, when earlier), and Ended once its
// final sync is done or has given up (not when its deadline cut it off:
// the write would go past it). A marker whose own folder is complete goes only when
// every other replica has ended or published a T later than the marker's
// mtime plus skewMargin: the other ranks wrote their shards before the
// trainer's barrier, so before the marker, and a full pass that started
// after that found them stored. A replica that has published nothing yet
// holds the marker. Without commit markers, or without replicas, none of
// this runs.

// skewMargin is how far apart the replicas' clocks may be: a replica's T
// counts for a marker only when it is this much later than the marker's
// mtime.
const skewMargin = 2 * time.Second

// progressKey is where a replica publishes its progress, under the run's
// folder.
func progressKey(replica string) string {
	return resume.ReplicaPrefix(replica) + ".collector/synced.json"
}

// replicaProgress is the object at progressKey.
type replicaProgress struct {
	Synced time.Time `json:"synced"`
	Ended  bool      `json:"ended,omitempty"`
}

// past tells whether p lets a marker of mtime go.
func (p replicaProgress) past(mtime time.Time) bool {
	return p.Ended || p.Synced.After(mtime.Add(skewMargin))
}

// progress is a replica's Syncer's share of the rule.
type progress struct {
	run     *blob.Bucket // rooted at <run>/
	replica string
	log     *slog.Logger

	mu        stdsync.Mutex
	begun     bool                       // this Syncer wrote its first progress
	published replicaProgress            // what this replica last wrote
	others    map[string]replicaProgress // what each replica last read said
	waits     map[string]string          // the replicas each marker was logged waiting for
}

// newProgress returns the progress of a Syncer; nil but with commit markers
// on a replica's target in a run's folder.
func newProgress(cfg Config, replica string, opts Options, log *slog.Logger) *progress {
	if len(cfg.CommitMarkers) == 0 || replica == "" || opts.Run == nil {
		return nil
	}
	return &progress{run: opts.Run, replica: replica, log: log,
		others: map[string]replicaProgress{}, waits: map[string]string{}}
}

// synced returns, after a full pass that began at start and ran to its
// end, the T it gives this replica: start, or the mtime of the oldest file
// (but the markers) that the store does not hold as it is on disk, when
// that is earlier: a file written all the time (a log in the folder) keeps
// T a little behind it, not still. Zero when the folder could not be read
// in full.
func (s *Syncer) synced(start time.Time, files map[string]fileState, unreadable map[string]error) time.Time {
	if len(unreadable) > 0 {
		return time.Time{}
	}
	t := start.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for rel, fs := range files {
		if fs.ModTime >= t || s.isMarker(rel) {
			continue
		}
		if e, ok := s.entries[rel]; !ok || !e.SameFile(fs.Size, fs.ModTime, fs.Inode) {
			t = fs.ModTime
		}
	}
	return time.Unix(0, t)
}

// begin writes, before this Syncer's first pass, a progress that says
// nothing is synced yet: an earlier attempt's, ended, would let the others'
// markers go while this attempt's files are still on their way. It also
// makes the replica known (its folder under replicas/) to the others from
// then on. Tried again each pass until it is written.
func (p *progress) begin(ctx context.Context) {
	p.mu.Lock()
	begun := p.begun
	p.mu.Unlock()
	if begun {
		return
	}
	if p.write(ctx, replicaProgress{}) {
		p.mu.Lock()
		p.begun = true
		p.mu.Unlock()
	}
}

// write writes v as this replica's progress, and tells whether it did.
func (p *progress) write(ctx context.Context, v replicaProgress) bool {
	data, err := json.Marshal(v)
	if err == nil {
		err = p.run.WriteAll(ctx, progressKey(p.replica), data, &blob.WriterOptions{ContentType: "application/json"})
	}
	if err != nil {
		p.log.Warn("cannot publish how far this replica's sync has got; the commit markers of other replicas wait for it", "key", progressKey(p.replica), "err", err)
		return false
	}
	return true
}

// publish writes this replica's progress when it moved: t is the T of a
// full pass (zero for none), ended says the final sync is over. One write
// at most.
func (p *progress) publish(ctx context.Context, t time.Time, ended bool) {
	p.mu.Lock()
	next := p.published
	if t.After(next.Synced) {
		next.Synced = t
	}
	next.Ended = next.Ended || ended
	moved := next != p.published || !p.begun
	p.mu.Unlock()
	if !moved || !p.write(ctx, next) {
		return
	}
	p.mu.Lock()
	p.begun = true
	p.published = next
	p.mu.Unlock()
}

// holds returns the replicas that keep a marker of mtime out of the store:
// those whose progress does not reach past it, this one left out (its own
// files are the marker's folder's check). It lists the replicas once and
// reads the progress of each that its last read did not show synced past
// mtime.
func (p *progress) holds(ctx context.Context, mtime time.Time) ([]string, error) {
	replicas, err := resume.ListReplicas(ctx, p.run)
	if err != nil {
		return nil, err
	}
	var waits []string
	for _, r := range replicas {
		if r == p.replica {
			continue
		}
		p.mu.Lock()
		known, ok := p.others[r]
		p.mu.Unlock()
		// Ended is read again: the replica may have started a new
		// attempt since (begin).
		if ok && known.Synced.After(mtime.Add(skewMargin)) {
			continue
		}
		data, err := p.run.ReadAll(ctx, progressKey(r))
		if gcerrors.Code(err) == gcerrors.NotFound {
			waits = append(waits, r) // not started, or nothing stored yet
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read replica %s's progress: %w", r, err)
		}
		var got replicaProgress
		if err := json.Unmarshal(data, &got); err != nil {
			return nil, fmt.Errorf("read replica %s's progress %s: %w", r, progressKey(r), err)
		}
		p.mu.Lock()
		p.others[r] = got
		p.mu.Unlock()
		if !got.past(mtime) {
			waits = append(waits, r)
		}
	}
	return waits, nil
}

// logWaits says, once per marker and set of replicas, which replicas the
// marker waits for; forget drops a marker stored or gone.
func (p *progress) logWaits(marker string, waits []string) {
	slices.Sort(waits)
	list := strings.Join(waits, ",")
	p.mu.Lock()
	repeat := p.waits[marker] == list
	p.waits[marker] = list
	p.mu.Unlock()
	if !repeat {
		p.log.Info("commit marker waits for other replicas' sync: their files of its folder may not be in the store yet",
			"path", marker, "replicas", waits, "margin", skewMargin)
	}
}

func (p *progress) forget(marker string) {
	p.mu.Lock()
	delete(p.waits, marker)
	p.mu.Unlock()
}
