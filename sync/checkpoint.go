package sync

import (
	"context"
	"time"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// Checkpointer saves what the store holds, so a restarted collector knows
// what is already there, and the progress of large uploads after each part,
// so it continues them. The Syncer owns the manifest: it tells the
// Checkpointer each change as it happens (Record), and hands it a copy of the
// whole manifest only when it asks for one (a snapshot is due), so that a
// checkpoint costs what changed, not the tree. The resume package implements
// it.
type Checkpointer interface {
	// Record notes that the store now holds entry for rel, or nothing when
	// entry is nil. It is called under the Syncer's lock, so that the
	// changes are recorded in the order they were made, and must be cheap.
	Record(rel string, entry *resume.Entry)
	// WantsManifest tells whether the next checkpoint needs the whole
	// manifest (a snapshot is due).
	WantsManifest() bool
	// TakeManifest hands over a copy of the whole manifest, under the
	// Syncer's lock as Record, so that it holds exactly the changes
	// recorded before it.
	TakeManifest(outputs resume.Manifest)
	// Checkpoint saves the changes recorded since the last checkpoint.
	Checkpoint(ctx context.Context) error
	stores.Journal
	DropProgress(ctx context.Context, key string) error
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
	s.mu.Lock()
	if s.ckpt.WantsManifest() {
		s.ckpt.TakeManifest(s.entries.Clone())
	}
	s.mu.Unlock()
	if err := s.ckpt.Checkpoint(context.WithoutCancel(ctx)); err != nil {
		s.log.Warn("checkpoint failed; the next pass tries again", "err", err)
	}
	s.mu.Lock()
	s.checkpointTook = s.now().Sub(start)
	s.checkpointed = true
	s.mu.Unlock()
}

// checkpointAfter tells whether a pass that did st should end with a
// checkpoint: when it changed the store, and the first pass, whose
// checkpoint puts the attempt's state in the store.
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
