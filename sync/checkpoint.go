package sync

import (
	"context"
	"time"

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
