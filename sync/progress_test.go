package sync

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// syncBuffer is a log sink the replicas' Syncers share.
type syncBuffer struct {
	mu  stdsync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rankShards writes n shards of replica name into folder, an hour old.
func rankShards(t *testing.T, dir, folder, name string, n int, at time.Time) []string {
	t.Helper()
	var rels []string
	for i := range n {
		rel := fmt.Sprintf("%s/%s-shard-%d.bin", folder, name, i)
		write(t, dir, rel, "shard of "+name)
		must(t, os.Chtimes(filepath.Join(dir, filepath.FromSlash(rel)), at, at))
		rels = append(rels, rel)
	}
	return rels
}

// replicaSyncer is replica name's Syncer of dir into outputs (rooted at
// <run>/outputs/), publishing its progress in run (rooted at <run>/).
func replicaSyncer(t *testing.T, cfg Config, dir string, outputs, run *blob.Bucket, name string, log *slog.Logger) *Syncer {
	t.Helper()
	return newSyncerTarget(t, cfg, dir, stores.Target{Bucket: outputs}.ForReplica(name),
		Options{Shared: true, Run: run, Logger: log})
}

// TestCommitMarkerWaitsForEveryReplica: rank 0's collector (replica a)
// holds the marker and all its own shards; replica b's shards do not go
// (its store fails, then its sync has not run since): the marker is not in
// the store until they are, then goes. A replica that ended (c, whose
// final sync failed) does not hold it, until it starts again. One INFO
// line names the replicas a marker waits for, each time they change.
func TestCommitMarkerWaitsForEveryReplica(t *testing.T) {
	ctx := context.Background()
	// The run's folder and its outputs/ (two buckets here: a prefixed
	// bucket closes the one under it).
	run := memblob.OpenBucket(nil)
	outputs := memblob.OpenBucket(nil)
	cfg := testConfig()
	cfg.CommitMarkers = []string{"commit_success.txt"}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	old := time.Now().Add(-time.Hour)
	marker := "ckpt-100/commit_success.txt"

	dirA, dirB, dirC := t.TempDir(), t.TempDir(), t.TempDir()
	rankShards(t, dirA, "ckpt-100", "a", 3, old)
	write(t, dirA, marker, "ok")
	must(t, os.Chtimes(filepath.Join(dirA, marker), old, old))
	shardsB := rankShards(t, dirB, "ckpt-100", "b", 3, old)
	rankShards(t, dirC, "ckpt-100", "c", 1, old)

	a := replicaSyncer(t, cfg, dirA, outputs, run, "a", log)
	outB, faultyB := storetest.NewFaulty(outputs, 1)
	b := replicaSyncer(t, cfg, dirB, outB, run, "b", log)
	outC, faultyC := storetest.NewFaulty(outputs, 2)
	cfgC := cfg
	cfgC.ShutdownTimeout = 300 * time.Millisecond // c's final sync gives up soon
	c := replicaSyncer(t, cfgC, dirC, outC, run, "c", log)
	// b and c have started (their collectors wrote their part of the run),
	// and synced nothing yet.
	must(t, run.WriteAll(ctx, "replicas/b/.collector/state.json", []byte("{}"), nil))
	must(t, run.WriteAll(ctx, "replicas/c/.collector/state.json", []byte("{}"), nil))

	markerStored := func() bool {
		ok, err := outputs.Exists(ctx, marker)
		must(t, err)
		return ok
	}
	if st := pass(t, a, false); st.Pending != 1 || st.Failed != 0 || markerStored() {
		t.Fatalf("a's pass with no replica's progress = %+v, marker stored %v; want it pending", st, markerStored())
	}
	inStore(t, outputs, "ckpt-100/a-shard-0.bin", "ckpt-100/a-shard-2.bin")

	// c's final sync fails, gives up, and says c has ended: c holds
	// nothing more.
	faultyC.SetFailureRate(1)
	if err := c.Final(ctx); err == nil {
		t.Fatal("c's final sync succeeded; want it to give up")
	}
	// b's shards fail: its progress is published, but behind the marker;
	// a final pass of b's does not say it ended (its final sync goes on).
	faultyB.SetFailureRate(1)
	if st := pass(t, b, true); st.Failed == 0 {
		t.Fatalf("b's final pass = %+v; want failures", st)
	}
	if st := pass(t, b, false); st.Failed == 0 {
		t.Fatalf("b's pass = %+v; want failures", st)
	}
	for range 2 {
		if st := pass(t, a, false); st.Pending != 1 || st.Waiting != 1 || markerStored() {
			t.Fatalf("a's pass while b's shards are not stored = %+v, marker stored %v", st, markerStored())
		}
	}
	faultyB.SetFailureRate(0)
	if st := pass(t, b, false); st.Failed+st.Pending != 0 {
		t.Fatalf("b's pass = %+v", st)
	}
	inStore(t, outputs, shardsB...)
	if st := pass(t, a, false); st.Uploaded != 1 || st.Pending != 0 || !markerStored() {
		t.Fatalf("a's pass once b's shards are stored = %+v, marker stored %v", st, markerStored())
	}

	// c's collector starts again (a new attempt), and its shards do not go
	// yet: its earlier attempt's ended holds no longer.
	later := old.Add(time.Minute)
	next := "ckpt-200/commit_success.txt"
	rankShards(t, dirA, "ckpt-200", "a", 1, later)
	write(t, dirA, next, "ok")
	must(t, os.Chtimes(filepath.Join(dirA, next), later, later))
	rankShards(t, dirC, "ckpt-200", "c", 1, later)
	c2 := replicaSyncer(t, cfg, dirC, outC, run, "c", log)
	if st := pass(t, c2, false); st.Failed == 0 {
		t.Fatalf("c's new attempt's pass = %+v; want failures", st)
	}
	if st := pass(t, a, false); st.Pending != 1 {
		t.Fatalf("a's pass while c's new attempt has stored nothing = %+v; want %s pending", st, next)
	}
	if ok, _ := outputs.Exists(ctx, next); ok {
		t.Fatalf("%s is in the store before c's shards", next)
	}
	faultyC.SetFailureRate(0)
	pass(t, c2, false)
	if st := pass(t, a, false); st.Uploaded != 1 || st.Pending != 0 {
		t.Fatalf("a's pass once c's shards are stored = %+v; want %s uploaded", st, next)
	}

	out := logs.String()
	waits := strings.Count(out, "commit marker waits for other replicas")
	if waits != 3 || !strings.Contains(out, "replicas=\"[b c]\"") || !strings.Contains(out, "replicas=[b]") || !strings.Contains(out, "replicas=[c]") {
		t.Errorf("%d INFO lines of the markers' wait, want 3 (b and c, then b; c for the second):\n%s", waits, out)
	}
	for _, name := range []string{"a", "b", "c"} {
		if ok, _ := run.Exists(ctx, progressKey(name)); !ok {
			t.Errorf("%s's progress is not in the store", progressKey(name))
		}
	}
}

// TestNoProgressWithoutReplicasOrMarkers: a Syncer with markers but no
// replica, or a replica without markers, reads and writes nothing in the
// run's folder, and its passes' requests are what they were.
func TestNoProgressWithoutReplicasOrMarkers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replica string
		markers []string
	}{
		{"markers, no replica", "", []string{"commit_success.txt"}},
		{"replica, no markers", "a", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			checkpointFolder(t, dir, "ckpt-1", 4, time.Now().Add(-time.Hour))
			cfg := testConfig()
			cfg.CommitMarkers = tc.markers
			requests := func(run *blob.Bucket) int64 {
				outputs, counted := storetest.NewFaulty(memblob.OpenBucket(nil), 1)
				s := newSyncerTarget(t, cfg, dir, stores.Target{Bucket: outputs}.ForReplica(tc.replica),
					Options{Shared: tc.replica != "", Run: run})
				pass(t, s, false)
				pass(t, s, true)
				return counted.Requests.Load()
			}
			run, counted := storetest.NewFaulty(memblob.OpenBucket(nil), 3)
			with, without := requests(run), requests(nil)
			if with != without || counted.Requests.Load() != 0 {
				t.Errorf("%d requests to the outputs with the run's folder, %d without; %d to the run's folder, want 0",
					with, without, counted.Requests.Load())
			}
		})
	}
}

// TestCommitMarkerWaitsForAReplicaOnS3: the same wait against the S3
// server, the progress objects under <run>/replicas/.
func TestCommitMarkerWaitsForAReplicaOnS3(t *testing.T) {
	f := storetest.S3(t)
	store := f.OpenStore(t)
	prefix := fmt.Sprintf("progress-%d/", time.Now().UnixNano())
	run := store.Sub(prefix)
	ctx := context.Background()
	cfg := testConfig()
	cfg.CommitMarkers = []string{"commit_success.txt"}
	old := time.Now().Add(-time.Hour)
	marker := "ckpt-7/commit_success.txt"
	dirA, dirB := t.TempDir(), t.TempDir()
	rankShards(t, dirA, "ckpt-7", "a", 2, old)
	write(t, dirA, marker, "ok")
	must(t, os.Chtimes(filepath.Join(dirA, marker), old, old))
	shardsB := rankShards(t, dirB, "ckpt-7", "b", 20, old)
	a := newSyncerTarget(t, cfg, dirA, store.Target(prefix+"outputs/").ForReplica("a"), Options{Shared: true, Run: run})
	b := newSyncerTarget(t, cfg, dirB, store.Target(prefix+"outputs/").ForReplica("b"), Options{Shared: true, Run: run})
	outputs := store.Sub(prefix + "outputs/")
	must(t, run.WriteAll(ctx, "replicas/b/.collector/state.json", []byte("{}"), nil))

	if st := pass(t, a, false); st.Pending != 1 {
		t.Fatalf("a's pass before b's = %+v; want the marker pending", st)
	}
	if ok, _ := outputs.Exists(ctx, marker); ok {
		t.Fatal("the marker is in the store before b's shards")
	}
	if st := pass(t, b, false); st.Failed+st.Pending != 0 {
		t.Fatalf("b's pass = %+v", st)
	}
	if st := pass(t, a, false); st.Uploaded != 1 || st.Pending != 0 {
		t.Fatalf("a's pass after b's = %+v; want the marker uploaded", st)
	}
	// By the store's own time, the marker is the last object of its folder.
	markerAttrs, err := outputs.Attributes(ctx, marker)
	must(t, err)
	for _, rel := range shardsB {
		attrs, err := outputs.Attributes(ctx, rel)
		must(t, err)
		if attrs.ModTime.After(markerAttrs.ModTime) {
			t.Errorf("%s stored at %v, after the marker (%v)", rel, attrs.ModTime, markerAttrs.ModTime)
		}
	}
}

// TestLeftBehind: a final sync that ends early names a marker waiting for
// other replicas as such, not as a file changing.
func TestLeftBehind(t *testing.T) {
	for _, tc := range []struct {
		st   PassStats
		want string
	}{
		{PassStats{Failed: 1, Pending: 2}, "3 files not uploaded (1 failed, 2 changing)"},
		{PassStats{Pending: 1, Waiting: 1}, "1 files not uploaded (0 failed, 0 changing, 1 commit markers waiting for other replicas' files)"},
	} {
		if got := leftBehind(tc.st); got != tc.want {
			t.Errorf("leftBehind(%+v) = %q, want %q", tc.st, got, tc.want)
		}
	}
}
