package sync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/stores/storetest"
)

// checkpointFolder writes n shards and the marker into folder, all at once,
// with mtimes an hour old (settled).
func checkpointFolder(t *testing.T, dir, folder string, n int, at time.Time) []string {
	t.Helper()
	var rels []string
	for i := range n {
		rel := fmt.Sprintf("%s/shard-%03d/data.bin", folder, i)
		write(t, dir, rel, fmt.Sprintf("shard %d of %s", i, folder))
		rels = append(rels, rel)
	}
	write(t, dir, folder+"/commit_success.txt", "done")
	rels = append(rels, folder+"/commit_success.txt")
	for _, rel := range rels {
		must(t, os.Chtimes(filepath.Join(dir, filepath.FromSlash(rel)), at, at))
	}
	return rels
}

// markerLast fails the test unless every object of folder was stored, and
// the marker after all the others.
func markerLast(t *testing.T, stored []string, folder string, n int) {
	t.Helper()
	marker := folder + "/commit_success.txt"
	at := slices.Index(stored, marker)
	if at < 0 {
		t.Fatalf("%s never stored", marker)
	}
	before := 0
	for i, rel := range stored {
		if strings.HasPrefix(rel, folder+"/") && rel != marker {
			if i > at {
				t.Fatalf("%s stored after the marker", rel)
			}
			before++
		}
	}
	if before < n {
		t.Fatalf("%d of %d shards stored before the marker", before, n)
	}
}

func TestCommitMarkerIsStoredLast(t *testing.T) {
	dir := t.TempDir()
	checkpointFolder(t, dir, "ckpt-100", 50, time.Now().Add(-time.Hour))
	write(t, dir, "metrics.jsonl", "{}")
	cfg := testConfig()
	cfg.CommitMarkers = []string{"commit_success.txt"}
	o := &order{}
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, cfg, dir, b, Options{Checkpointer: o})
	if st := pass(t, s, false); st.Uploaded != 52 || st.Pending != 0 {
		t.Fatalf("pass = %+v, want 52 uploaded, none pending", st)
	}
	markerLast(t, o.rels, "ckpt-100", 50)
	mirrors(t, dir, b)
}

func TestCommitMarkerWaitsForFailedShards(t *testing.T) {
	dir := t.TempDir()
	checkpointFolder(t, dir, "ckpt-7", 40, time.Now().Add(-time.Hour))
	cfg := testConfig()
	cfg.CommitMarkers = []string{"commit_success.txt"}
	o := &order{}
	inner := memblob.OpenBucket(nil)
	b, faulty := storetest.NewFaulty(inner, 7)
	s := newSyncer(t, cfg, dir, b, Options{Checkpointer: o})
	faulty.SetFailureRate(1)
	if st := pass(t, s, false); st.Failed != 40 || st.Pending != 1 {
		t.Fatalf("pass during an outage = %+v, want 40 failed and the marker pending", st)
	}
	if ok, _ := inner.Exists(context.Background(), "ckpt-7/commit_success.txt"); ok {
		t.Fatal("the marker is in the store while no shard is")
	}
	// A flaky store: each pass stores some shards; the marker only once all are.
	faulty.SetFailureRate(0.3)
	for range 3 {
		pass(t, s, false)
		if ok, _ := inner.Exists(context.Background(), "ckpt-7/commit_success.txt"); ok {
			if got := len(storetest.Objects(t, inner, "ckpt-7/")); got != 41 {
				t.Fatalf("the marker is in the store with %d objects of 41", got)
			}
		}
	}
	faulty.SetFailureRate(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Final(ctx); err != nil {
		t.Fatal(err)
	}
	if faulty.Failures.Load() <= 40 {
		t.Fatal("no shard failed after the outage")
	}
	markerLast(t, o.rels, "ckpt-7", 40)
	mirrors(t, dir, inner)
}

func TestCommitMarkerWaitsForAShardChangedAfterIt(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	checkpointFolder(t, dir, "ckpt-3", 10, old)
	// shard 4 is written again after the marker: not settled yet.
	write(t, dir, "ckpt-3/shard-004/data.bin", "shard 4, again")
	cfg := testConfig()
	cfg.Settle = time.Minute
	cfg.CommitMarkers = []string{"commit_success.txt"}
	o := &order{}
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, cfg, dir, b, Options{Checkpointer: o})
	if st := pass(t, s, false); st.Uploaded != 9 || st.Pending != 2 {
		t.Fatalf("pass = %+v, want 9 uploaded, the changed shard and the marker pending", st)
	}
	if ok, _ := b.Exists(context.Background(), "ckpt-3/commit_success.txt"); ok {
		t.Fatal("the marker is in the store before the shard changed after it")
	}
	// Settled: the shard goes, then the marker, in one pass.
	later := old.Add(time.Minute)
	must(t, os.Chtimes(filepath.Join(dir, "ckpt-3", "shard-004", "data.bin"), later, later))
	if st := pass(t, s, false); st.Uploaded != 2 || st.Pending != 0 {
		t.Fatalf("pass = %+v, want the shard and the marker uploaded", st)
	}
	markerLast(t, o.rels, "ckpt-3", 10)
	mirrors(t, dir, b)
}

func TestRushStoresTheNewestCheckpointFirst(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	checkpointFolder(t, dir, "ckpt-1", 5, base)
	checkpointFolder(t, dir, "ckpt-2", 5, base.Add(time.Minute))
	write(t, dir, "metrics.jsonl", "{}") // newer than both, but no checkpoint
	cfg := testConfig()
	cfg.CommitMarkers = []string{"commit_success.txt"}
	cfg.Requests = 1 // one upload at a time: the order is the plan's
	o := &order{}
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, cfg, dir, b, Options{Checkpointer: o})
	if _, err := s.Rush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, rel := range o.rels[:5] {
		if !strings.HasPrefix(rel, "ckpt-2/") {
			t.Fatalf("stored %d. %s; want ckpt-2's shards first: %v", i, rel, o.rels)
		}
	}
	if o.rels[len(o.rels)-1] != "metrics.jsonl" {
		t.Fatalf("stored in the order %v; want the checkpoints before metrics.jsonl", o.rels)
	}
	markerLast(t, o.rels, "ckpt-1", 5)
	markerLast(t, o.rels, "ckpt-2", 5)
	mirrors(t, dir, b)
}

func TestCommitMarkerMustBeAName(t *testing.T) {
	for _, bad := range []string{"a/b", "", "..", `a\b`} {
		cfg := testConfig()
		cfg.CommitMarkers = []string{bad}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "--commit-marker") {
			t.Errorf("Validate(%q) = %v, want an error naming --commit-marker", bad, err)
		}
	}
}
