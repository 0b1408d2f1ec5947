package sync

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
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
	saved := &lastSaved{}
	s := newSyncer(t, cfg, dir, b, Options{Checkpointer: o, Markers: saved})
	faulty.SetFailureRate(1)
	if st := pass(t, s, false); st.Failed != 40 || st.Pending != 1 {
		t.Fatalf("pass during an outage = %+v, want 40 failed and the marker pending", st)
	}
	if got := saved.get(); !slices.Equal(got, []string{"ckpt-7/commit_success.txt"}) {
		t.Fatalf("the state's waiting markers = %q, want the marker", got)
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
	if got := saved.get(); len(got) != 0 {
		t.Fatalf("the state's waiting markers = %q after the marker was stored, want none", got)
	}
}

// lastSaved is a Saver that keeps the last list of markers saved.
type lastSaved struct {
	mu   stdsync.Mutex
	rels []string
}

func (l *lastSaved) Save(_ context.Context, v any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rels = slices.Clone(v.([]string))
	return nil
}

func (l *lastSaved) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rels
}

// TestCommitMarkerWithheldForARefusedFile: a shard the store refuses for
// good (larger than it takes) keeps its folder's marker out of the store,
// and the final sync ends as it does when only refusals are left, rather
// than waiting out the shutdown timeout for the marker; one warning names
// the folder, its marker and the refused shard. Once the shard fits, the
// marker goes, last.
func TestCommitMarkerWithheldForARefusedFile(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	checkpointFolder(t, dir, "ckpt-3", 10, old)
	big := "ckpt-3/shard-004/data.bin"
	write(t, dir, big, strings.Repeat("x", 100))
	must(t, os.Chtimes(filepath.Join(dir, big), old, old))
	cfg := testConfig()
	cfg.CommitMarkers = []string{"commit_success.txt"}
	cfg.ShutdownTimeout = 20 * time.Second
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := &order{}
	b := memblob.OpenBucket(nil)
	saved := &lastSaved{}
	s := newSyncer(t, cfg, dir, b, Options{Checkpointer: o, Markers: saved, Logger: log})
	s.up.limits = stores.Limits{MaxObjectSize: 50}

	for i := range 2 {
		if st := pass(t, s, false); st.Uploaded+st.Unchanged != 9 || (i == 0) != (st.Uploaded == 9) || st.Failed != 2 || st.Refused != 2 || st.Pending != 0 {
			t.Fatalf("pass %d = %+v; want 9 shards stored, the big one and the marker failed and refused, none pending", i+1, st)
		}
	}
	start := time.Now()
	err := s.Final(context.Background())
	if err == nil || !strings.Contains(err.Error(), big) {
		t.Fatalf("final sync: %v; want an error naming %s", err, big)
	}
	if took := time.Since(start); took >= cfg.ShutdownTimeout/2 {
		t.Errorf("final sync took %v; want it to end on the refusals, well before the shutdown timeout (%v)", took, cfg.ShutdownTimeout)
	}
	if ok, _ := b.Exists(context.Background(), "ckpt-3/commit_success.txt"); ok {
		t.Fatal("the marker is in the store while a shard of its folder is not")
	}
	if got := saved.get(); !slices.Equal(got, []string{"ckpt-3/commit_success.txt"}) {
		t.Errorf("the state's waiting markers = %q; want the marker (its folder incomplete in the store)", got)
	}
	var warns []string
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(line, "commit marker withheld") && strings.Contains(line, "level=WARN") {
			warns = append(warns, line)
		}
	}
	if len(warns) != 1 {
		t.Fatalf("%d warnings of the withheld marker over 4 passes; want 1:\n%s", len(warns), strings.Join(warns, "\n"))
	}
	for _, want := range []string{"folder=ckpt-3 ", "marker=ckpt-3/commit_success.txt ", "refused=" + big + " ", "larger than the store's maximum object size"} {
		if !strings.Contains(warns[0], want) {
			t.Errorf("the warning lacks %q: %s", want, warns[0])
		}
	}

	// The shard rewritten small enough: the folder completes, marker last.
	write(t, dir, big, "small now")
	must(t, os.Chtimes(filepath.Join(dir, big), old.Add(time.Minute), old.Add(time.Minute)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Final(ctx); err != nil {
		t.Fatal(err)
	}
	markerLast(t, o.rels, "ckpt-3", 10)
	mirrors(t, dir, b)
	if got := saved.get(); len(got) != 0 {
		t.Errorf("the state's waiting markers = %q once stored; want none", got)
	}
}

// TestNestedCommitMarkerWithheld: a marker withheld for a refused file
// holds back the marker of the folder above it too, also counted refused,
// so the final sync still ends on the refusals; one warning for each.
func TestNestedCommitMarkerWithheld(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	checkpointFolder(t, dir, "ckpt-5", 4, old)
	big, inner := "ckpt-5/shard-002/data.bin", "ckpt-5/shard-002/commit_success.txt"
	write(t, dir, big, strings.Repeat("x", 100))
	write(t, dir, inner, "done")
	for _, rel := range []string{big, inner} {
		must(t, os.Chtimes(filepath.Join(dir, rel), old, old))
	}
	cfg := testConfig()
	cfg.CommitMarkers = []string{"commit_success.txt"}
	cfg.ShutdownTimeout = 20 * time.Second
	var logs bytes.Buffer
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, cfg, dir, b, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	s.up.limits = stores.Limits{MaxObjectSize: 50}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout/2)
	defer cancel()
	if err := s.Final(ctx); err == nil || !strings.Contains(err.Error(), "3 paths cannot be synced") {
		t.Fatalf("final sync: %v; want it to end on 3 refused paths (the shard and both markers)", err)
	}
	for _, m := range []string{inner, "ckpt-5/commit_success.txt"} {
		if ok, _ := b.Exists(context.Background(), m); ok {
			t.Errorf("%s is in the store", m)
		}
	}
	for _, want := range []string{"marker=" + inner + " refused=" + big, "marker=ckpt-5/commit_success.txt refused=" + inner} {
		if n := strings.Count(logs.String(), want); n != 1 {
			t.Errorf("%d warnings with %q; want 1:\n%s", n, want, logs.String())
		}
	}
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

// cancelAfter is a Checkpointer that cancels the pass once n files are in
// the store: a collector killed in the middle of a checkpoint folder.
type cancelAfter struct {
	order
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Record(rel string, e *resume.Entry) {
	c.order.Record(rel, e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rels) >= c.n {
		c.cancel()
	}
}

// TestCommitMarkerOnS3: hundreds of small shards written at once with their
// marker, in several rounds: by the store's own clock the marker is never
// older than a shard; and a pass cut in the middle of a folder leaves no
// marker without all its shards, the next collector completing the folder.
func TestCommitMarkerOnS3(t *testing.T) {
	f := storetest.S3(t)
	store := f.OpenStore(t)
	target := store.Target("run/outputs/")
	dir := t.TempDir()
	cfg := testConfig()
	cfg.CommitMarkers = []string{"commit_success.txt"}
	ctx := context.Background()
	shard := strings.Repeat("x", 4<<10)
	const shards = 200
	writeFolder := func(folder string) {
		old := time.Now().Add(-time.Hour)
		for i := range shards {
			write(t, dir, fmt.Sprintf("%s/shard-%03d", folder, i), shard+folder)
		}
		write(t, dir, folder+"/commit_success.txt", "ok")
		for i := range shards {
			p := filepath.Join(dir, folder, fmt.Sprintf("shard-%03d", i))
			must(t, os.Chtimes(p, old, old))
		}
		must(t, os.Chtimes(filepath.Join(dir, folder, "commit_success.txt"), old, old))
	}
	// whole fails the test if the store holds folder's marker without all
	// its shards, and tells whether it holds the marker.
	whole := func(folder string) bool {
		t.Helper()
		var marker time.Time
		var newest time.Time
		n := 0
		it := target.Bucket.List(&blob.ListOptions{Prefix: folder + "/"})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			must(t, err)
			if strings.HasSuffix(obj.Key, "/commit_success.txt") {
				marker = obj.ModTime
				continue
			}
			n++
			newest = maxTime(newest, obj.ModTime)
		}
		if marker.IsZero() {
			return false
		}
		if n != shards {
			t.Fatalf("%s: the marker is in the store with %d shards of %d", folder, n, shards)
		}
		if marker.Before(newest) {
			t.Fatalf("%s: the marker was stored at %v, before a shard (%v)", folder, marker, newest)
		}
		return true
	}
	s := newSyncerTarget(t, cfg, dir, target, Options{})
	for round := range 3 {
		folder := fmt.Sprintf("ckpt-%d", round)
		writeFolder(folder)
		if st, err := s.Pass(ctx, false); err != nil || st.Failed+st.Pending > 0 {
			t.Fatalf("round %d: pass = %+v, %v", round, st, err)
		}
		if !whole(folder) {
			t.Fatalf("round %d: the marker is not in the store", round)
		}
	}
	// Killed a quarter of the way through a folder.
	writeFolder("ckpt-killed")
	cut, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &cancelAfter{n: shards / 4, cancel: cancel}
	killed := newSyncerTarget(t, cfg, dir, target, Options{Checkpointer: c, Manifest: s.Manifest()})
	killed.Pass(cut, false)
	if whole("ckpt-killed") {
		t.Fatal("the marker is in the store after a pass cut short")
	}
	if n := len(storetest.Objects(t, target.Bucket, "ckpt-killed/")); n >= shards {
		t.Fatalf("the cut pass stored %d shards of %d: not cut in the middle", n, shards)
	}
	next := newSyncerTarget(t, cfg, dir, target, Options{Adopt: true})
	final, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	must(t, next.Final(final))
	if !whole("ckpt-killed") {
		t.Fatal("the final sync did not store the marker")
	}
}

func newSyncerTarget(t *testing.T, cfg Config, dir string, target stores.Target, opts Options) *Syncer {
	t.Helper()
	s, err := New(cfg, dir, target, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// TestCommitMarkerInAnEventPass: a pass over the paths events marked (the
// marker only) walks the marker's folder: a shard no event named, not in the
// store, holds the marker back; the state's waiting marker goes once the
// marker is deleted unstored.
func TestCommitMarkerInAnEventPass(t *testing.T) {
	dir := t.TempDir()
	checkpointFolder(t, dir, "ckpt-9", 3, time.Now().Add(-time.Hour))
	cfg := testConfig()
	cfg.CommitMarkers = []string{"commit_success.txt"}
	b := memblob.OpenBucket(nil)
	saved := &lastSaved{}
	s := newSyncer(t, cfg, dir, b, Options{Markers: saved})
	scope := map[string]struct{}{"ckpt-9/commit_success.txt": {}}
	st, err := s.pass(context.Background(), false, scope)
	if err != nil {
		t.Fatal(err)
	}
	if st.Uploaded != 0 || st.Pending != 1 {
		t.Fatalf("event pass = %+v, want the marker pending", st)
	}
	if got := saved.get(); !slices.Equal(got, []string{"ckpt-9/commit_success.txt"}) {
		t.Fatalf("the state's waiting markers = %q, want the marker", got)
	}
	must(t, os.Remove(filepath.Join(dir, "ckpt-9", "commit_success.txt")))
	if st := pass(t, s, false); st.Uploaded != 3 {
		t.Fatalf("full pass = %+v, want the 3 shards", st)
	}
	if got := saved.get(); len(got) != 0 {
		t.Fatalf("the state's waiting markers = %q after the marker was deleted, want none", got)
	}
}
