package sync

import (
	"context"
	"os"
	"path/filepath"
	stdsync "sync"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// order is a Checkpointer that keeps the order in which the store came to
// hold each file.
type order struct {
	mu   stdsync.Mutex
	rels []string
}

func (o *order) Record(rel string, e *resume.Entry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e != nil {
		o.rels = append(o.rels, rel)
	}
}
func (o *order) WantsManifest() bool                                 { return false }
func (o *order) TakeManifest(resume.Manifest)                        {}
func (o *order) Checkpoint(context.Context) error                    { return nil }
func (o *order) SaveProgress(context.Context, stores.Progress) error { return nil }
func (o *order) DropProgress(context.Context, string) error          { return nil }

func TestRushUploadsNewestFirstWithoutWaitingToSettle(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	for i, rel := range []string{"ckpt-1/model.pt", "ckpt-2/model.pt", "ckpt-3/model.pt", "metrics.jsonl"} {
		write(t, dir, rel, rel)
		at := base.Add(time.Duration(i) * time.Minute)
		if rel == "metrics.jsonl" {
			at = time.Now() // written a moment ago: not settled
		}
		must(t, os.Chtimes(filepath.Join(dir, filepath.FromSlash(rel)), at, at))
	}
	cfg := testConfig()
	cfg.Settle = time.Minute
	cfg.Workers, cfg.Requests = 1, 1 // one upload at a time: the order is the plan's
	o := &order{}
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, cfg, dir, b, Options{Checkpointer: o})
	st, err := s.Rush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Uploaded != 4 || st.Pending != 0 {
		t.Errorf("rush: %d uploaded, %d pending; want 4, 0 (every file as it is)", st.Uploaded, st.Pending)
	}
	got, want := o.rels, []string{"metrics.jsonl", "ckpt-3/model.pt", "ckpt-2/model.pt", "ckpt-1/model.pt"}
	if len(got) != len(want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("stored in the order %v, want the newest first: %v", got, want)
		}
	}
	mirrors(t, dir, b)
}
