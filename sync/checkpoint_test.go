package sync

import (
	"context"
	stdsync "sync"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/resume"
)

// wanting is a Checkpointer that wants the manifest while want is set, and
// keeps the one handed over.
type wanting struct {
	order
	mu          stdsync.Mutex
	want        bool
	took        resume.Manifest
	checkpoints int
}

func (w *wanting) WantsManifest() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.want
}

func (w *wanting) TakeManifest(m resume.Manifest) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.took, w.want = m, false
}

func (w *wanting) Checkpoint(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checkpoints++
	return nil
}

// TestFinalHandsOverTheManifestForASnapshotStillDue: a snapshot the state
// still waits for when the final sync ends (the last one failed, say) gets
// the manifest then, though the final pass changed nothing: the checkpoints
// after the outputs sync (the logs', the run's last) have none to give.
func TestFinalHandsOverTheManifestForASnapshotStillDue(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.txt", "alpha")
	c := &wanting{}
	s := newSyncer(t, testConfig(), dir, memblob.OpenBucket(nil), Options{Checkpointer: c})
	if st := pass(t, s, false); st.Uploaded != 1 || c.took != nil {
		t.Fatalf("first pass = %+v, manifest handed over %v; want a.txt uploaded, no manifest unasked", st, c.took)
	}
	c.mu.Lock()
	c.want = true
	before := c.checkpoints
	c.mu.Unlock()
	must(t, s.Final(context.Background()))
	if c.took["a.txt"] == nil || c.checkpoints != before+1 {
		t.Errorf("after the final sync: manifest handed over %v, %d checkpoints; want a.txt in it, and one checkpoint", c.took, c.checkpoints-before)
	}
}
