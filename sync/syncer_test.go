package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Settle = 0
	cfg.PartSize = 5 << 20
	cfg.MemoryBudget = 32 << 20
	return cfg
}

func write(t *testing.T, dir, rel, data string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newSyncer(t *testing.T, cfg Config, dir string, b *blob.Bucket, opts Options) *Syncer {
	t.Helper()
	s, err := New(cfg, dir, stores.Target{Bucket: b}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pass(t *testing.T, s *Syncer, final bool) PassStats {
	t.Helper()
	st, err := s.Pass(context.Background(), final)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// inStore fails the test for each key the store does not hold.
func inStore(t *testing.T, b *blob.Bucket, keys ...string) {
	t.Helper()
	for _, key := range keys {
		if ok, _ := b.Exists(context.Background(), key); !ok {
			t.Errorf("%s is not in the store", key)
		}
	}
}

func mirrors(t *testing.T, dir string, b *blob.Bucket) {
	t.Helper()
	if diff := storetest.Diff(storetest.Folder(t, dir), storetest.Objects(t, b, "")); diff != "" {
		t.Fatalf("store does not mirror the folder:\n%s", diff)
	}
}

func TestPassUploadsWithHashMetadata(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.txt", "alpha")
	write(t, dir, "deep/er/b.bin", "beta")
	write(t, dir, "empty", "")
	big := make([]byte, 6<<20+123) // above the part size: the streaming path
	for i := range big {
		big[i] = byte(i * 7)
	}
	write(t, dir, "big.bin", string(big))
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, testConfig(), dir, b, Options{})
	if st := pass(t, s, false); st.Uploaded != 4 || st.Failed != 0 {
		t.Fatalf("stats = %+v, want 4 uploaded", st)
	}
	mirrors(t, dir, b)
	for rel, data := range map[string]string{"a.txt": "alpha", "big.bin": string(big)} {
		sum := sha256.Sum256([]byte(data))
		want := hex.EncodeToString(sum[:])
		attrs, err := b.Attributes(context.Background(), rel)
		if err != nil {
			t.Fatal(err)
		}
		if got := attrs.Metadata[stores.HashMetadataKey]; got != want {
			t.Errorf("%s: sha256 metadata = %q, want %q", rel, got, want)
		}
		if got := s.Manifest()[rel].SHA256.String(); got != want {
			t.Errorf("%s: manifest sha256 = %q, want %q", rel, got, want)
		}
	}
}

func TestUnchangedFilesCostNoRequest(t *testing.T) {
	dir := t.TempDir()
	for i := range 50 {
		write(t, dir, filepath.Join("d", string(rune('a'+i%26)), "f"+string(rune('a'+i/26))), "x")
	}
	b, faulty := storetest.NewFaulty(memblob.OpenBucket(nil), 1)
	s := newSyncer(t, testConfig(), dir, b, Options{})
	pass(t, s, false)
	before := faulty.Requests.Load()
	if st := pass(t, s, false); st.Unchanged != 50 || st.Uploaded != 0 {
		t.Fatalf("second pass = %+v, want 50 unchanged", st)
	}
	if got := faulty.Requests.Load() - before; got != 0 {
		t.Errorf("second pass made %d requests to the store, want 0", got)
	}
}

func TestFailedUploadIsRetriedNotMarkedDone(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.txt", "alpha")
	write(t, dir, "b.txt", "beta")
	b, faulty := storetest.NewFaulty(memblob.OpenBucket(nil), 1)
	s := newSyncer(t, testConfig(), dir, b, Options{})
	faulty.SetFailureRate(1)
	if st := pass(t, s, false); st.Failed != 2 || st.Uploaded != 0 {
		t.Fatalf("pass during outage = %+v, want 2 failed", st)
	}
	if len(s.Manifest()) != 0 {
		t.Fatalf("manifest after failed uploads = %v, want empty", s.Manifest())
	}
	faulty.SetFailureRate(0)
	if st := pass(t, s, false); st.Uploaded != 2 {
		t.Fatalf("pass after outage = %+v, want 2 uploaded", st)
	}
	mirrors(t, dir, b)
}

func TestStoreFailing30PercentThenRecovering(t *testing.T) {
	dir := t.TempDir()
	for i := range 200 {
		write(t, dir, filepath.Join("f", string(rune('a'+i%20)), "n"+string(rune('a'+i/20))+".txt"), "content "+string(rune('a'+i%26)))
	}
	inner := memblob.OpenBucket(nil)
	b, faulty := storetest.NewFaulty(inner, 42)
	s := newSyncer(t, testConfig(), dir, b, Options{})
	faulty.SetFailureRate(0.3)
	for range 3 {
		st := pass(t, s, false)
		if st.Failed == 0 && st.Uploaded+st.Unchanged < 200 {
			t.Fatalf("pass = %+v: failures not counted", st)
		}
	}
	// Whatever landed while failing is whole.
	for rel, data := range storetest.Objects(t, inner, "") {
		want, _ := os.ReadFile(filepath.Join(dir, rel))
		if string(data) != string(want) {
			t.Fatalf("%s is torn in the store", rel)
		}
	}
	faulty.SetFailureRate(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Final(ctx); err != nil {
		t.Fatal(err)
	}
	mirrors(t, dir, inner)
	if faulty.Failures.Load() == 0 {
		t.Fatal("no failure was injected")
	}
}

// TestFinalGivesUpOnRefusals: a final sync whose only failures are answers
// that retrying does not change (here a 403 on every write) ends after a
// second pass, with an error naming a file and the store's answer, instead
// of holding the job's end for the whole shutdown timeout; an outage (a 503)
// is still retried until the timeout.
func TestFinalGivesUpOnRefusals(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "model.pt", "weights")
	b, faulty := storetest.NewFaulty(memblob.OpenBucket(nil), 7)
	cfg := testConfig()
	cfg.ShutdownTimeout = 3 * time.Second
	s := newSyncer(t, cfg, dir, b, Options{})

	faulty.RefuseWrites.Store(true)
	start := time.Now()
	err := s.Final(context.Background())
	if err == nil || !strings.Contains(err.Error(), "model.pt") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("final sync against a store refusing writes: %v; want an error naming model.pt and the 403", err)
	}
	if took := time.Since(start); took >= cfg.ShutdownTimeout {
		t.Errorf("final sync took %v to give up on a refusal; want well under the shutdown timeout (%v)", took, cfg.ShutdownTimeout)
	}

	faulty.RefuseWrites.Store(false)
	faulty.SetFailureRate(1)
	start = time.Now()
	if err := s.Final(context.Background()); err == nil || !strings.Contains(err.Error(), "without progress") {
		t.Fatalf("final sync during an outage: %v; want it to give up after the shutdown timeout", err)
	}
	if took := time.Since(start); took < cfg.ShutdownTimeout {
		t.Errorf("final sync gave up on an outage after %v; want it to retry for the shutdown timeout (%v)", took, cfg.ShutdownTimeout)
	}
}

func TestDeletedFilesAreDeletedUnlessKept(t *testing.T) {
	for _, keep := range []bool{false, true} {
		dir := t.TempDir()
		write(t, dir, "ckpt-1.pt", "one")
		write(t, dir, "ckpt-2.pt", "two")
		b := memblob.OpenBucket(nil)
		cfg := testConfig()
		cfg.KeepDeleted = keep
		s := newSyncer(t, cfg, dir, b, Options{})
		pass(t, s, false)
		os.Remove(filepath.Join(dir, "ckpt-1.pt"))
		st := pass(t, s, false)
		exists, _ := b.Exists(context.Background(), "ckpt-1.pt")
		if keep && (!exists || st.Deleted != 0) {
			t.Errorf("keep-deleted: object gone or deletion counted (%+v)", st)
		}
		if !keep {
			if exists || st.Deleted != 1 {
				t.Errorf("deleted file still in the store (%+v)", st)
			}
			mirrors(t, dir, b)
		}
	}
}

func TestDefaultExcludes(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "keep.txt", "k")
	write(t, dir, ".git/HEAD", "ref")
	write(t, dir, "model.pt.tmp", "partial")
	write(t, dir, "download.partial", "partial")
	write(t, dir, ".nfs000123", "nfs")
	write(t, dir, "notes.txt.swp", "vim")
	write(t, dir, "sub/.git/config", "nested repo")
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, testConfig(), dir, b, Options{})
	pass(t, s, true)
	got := storetest.Objects(t, b, "")
	if len(got) != 1 || got["keep.txt"] == nil {
		t.Errorf("store holds %v, want only keep.txt", keys(got))
	}
}

func TestIncludeLimitsTheSync(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "ckpt/latest.pt", "l")
	write(t, dir, "ckpt/old.pt", "o")
	write(t, dir, "metrics.csv", "m")
	b := memblob.OpenBucket(nil)
	cfg := testConfig()
	cfg.Include = Globs{"latest.*", "*.csv"}
	s := newSyncer(t, cfg, dir, b, Options{})
	pass(t, s, true)
	got := storetest.Objects(t, b, "")
	if len(got) != 2 || got["ckpt/latest.pt"] == nil || got["metrics.csv"] == nil {
		t.Errorf("store holds %v", keys(got))
	}
}

func TestTempThenRenameUploadsOnceUnderFinalName(t *testing.T) {
	dir := t.TempDir()
	b, faulty := storetest.NewFaulty(memblob.OpenBucket(nil), 1)
	s := newSyncer(t, testConfig(), dir, b, Options{})
	write(t, dir, "model.pt.tmp", "half")
	pass(t, s, false)
	write(t, dir, "model.pt.tmp", "whole model")
	if err := os.Rename(filepath.Join(dir, "model.pt.tmp"), filepath.Join(dir, "model.pt")); err != nil {
		t.Fatal(err)
	}
	if st := pass(t, s, false); st.Uploaded != 1 {
		t.Fatalf("stats = %+v, want 1 upload", st)
	}
	before := faulty.Requests.Load()
	pass(t, s, false)
	if faulty.Requests.Load() != before {
		t.Error("renamed file uploaded again")
	}
	got := storetest.Objects(t, b, "")
	if len(got) != 1 || string(got["model.pt"]) != "whole model" {
		t.Errorf("store holds %v", keys(got))
	}
}

func TestSettle(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "ckpt.pt", "v1")
	fi, _ := os.Stat(filepath.Join(dir, "ckpt.pt"))
	now := fi.ModTime().Add(500 * time.Millisecond)
	b := memblob.OpenBucket(nil)
	cfg := testConfig()
	cfg.Settle = 2 * time.Second
	s := newSyncer(t, cfg, dir, b, Options{Now: func() time.Time { return now }})
	if st := pass(t, s, false); st.Pending != 1 || st.Uploaded != 0 {
		t.Fatalf("unsettled file: %+v, want pending", st)
	}
	now = fi.ModTime().Add(3 * time.Second)
	if st := pass(t, s, false); st.Uploaded != 1 {
		t.Fatalf("settled file: %+v, want uploaded", st)
	}
	write(t, dir, "ckpt.pt", "v2, still being written")
	fi, _ = os.Stat(filepath.Join(dir, "ckpt.pt"))
	now = fi.ModTime()
	if st := pass(t, s, true); st.Uploaded != 1 {
		t.Fatalf("final pass must take unsettled files: %+v", st)
	}
	mirrors(t, dir, b)
}

// TestFileThatNeverSettles: a small file appended to all the time (a
// training log, a metrics file) goes up as it is once it has been held back
// for a sync interval, and again an interval later; a large one that keeps
// changing waits to settle (reading it would be for nothing).
func TestFileThatNeverSettles(t *testing.T) {
	dir := t.TempDir()
	b := memblob.OpenBucket(nil)
	cfg := testConfig()
	cfg.Settle, cfg.Interval = 2*time.Second, 10*time.Second
	now := time.Now()
	s := newSyncer(t, cfg, dir, b, Options{Now: func() time.Time { return now }})
	big := strings.Repeat("x", int(cfg.PartSize))
	lines := ""
	var uploadedAt []int
	for sec := 0; sec <= 24; sec += 3 {
		// Both written half a second before each pass.
		lines += "step\n"
		write(t, dir, "metrics.csv", lines)
		write(t, dir, "big.bin", big+lines)
		for _, f := range []string{"metrics.csv", "big.bin"} {
			if err := os.Chtimes(filepath.Join(dir, f), now.Add(-500*time.Millisecond), now.Add(-500*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
		st := pass(t, s, false)
		if st.Uploaded > 0 {
			uploadedAt = append(uploadedAt, sec)
		}
		if _, err := b.Attributes(context.Background(), "big.bin"); err == nil {
			t.Fatalf("at %d s: the large file that keeps changing was uploaded", sec)
		}
		now = now.Add(3 * time.Second)
	}
	// Held from 0 s: up at the first pass 10 s later (12 s), held again
	// from the next (15 s), up again at 27 s, after the loop.
	if want := []int{12}; len(uploadedAt) != len(want) || uploadedAt[0] != want[0] {
		t.Errorf("small file uploaded at %v s, want %v", uploadedAt, want)
	}
	if got, err := b.ReadAll(context.Background(), "metrics.csv"); err != nil || strings.Count(string(got), "step") != 5 {
		t.Errorf("metrics.csv in the store: %q, %v; want the 5 lines it had at 12 s", got, err)
	}
}

// TestUnreadableFolder: a folder that cannot be read any more (its mode
// changed, an I/O error) is not a deleted one: its objects stay in the store,
// the pass counts it failed, and the final sync gives up on it as on any
// refusal, naming it. Before, its files were deleted from the store.
func TestUnreadableFolder(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "open/o.txt", "o")
	write(t, dir, "closed/c.txt", "c")
	write(t, dir, "closed/deeper/d.txt", "d")
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, testConfig(), dir, b, Options{})
	if st := pass(t, s, false); st.Uploaded != 3 {
		t.Fatalf("first pass: %+v", st)
	}
	closed := filepath.Join(dir, "closed")
	s.scan.openDir = func(name string) (*os.File, error) {
		if name == closed {
			return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EACCES}
		}
		return os.Open(name)
	}
	if st := pass(t, s, false); st.Deleted != 0 || st.Failed != 1 || st.Refused != 1 {
		t.Errorf("pass over an unreadable folder: %+v; want nothing deleted, 1 failed and refused", st)
	}
	inStore(t, b, "closed/c.txt", "closed/deeper/d.txt", "open/o.txt")
	err := s.Final(context.Background())
	if err == nil || !strings.Contains(err.Error(), "closed: cannot read it") || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("final sync: %v; want it to give up naming the folder", err)
	}
	// Readable again: in sync, nothing lost.
	s.scan.openDir = nil
	os.Remove(filepath.Join(dir, "closed/c.txt"))
	if st := pass(t, s, false); st.Deleted != 1 || st.Failed != 0 {
		t.Errorf("pass once readable again, one file deleted meanwhile: %+v", st)
	}
	mirrors(t, dir, b)
}

// TestUnmountedOutputsDeleteNothing: when the outputs folder is on another
// file system than at the start (its volume unmounted, the empty folder
// under it left), the files it no longer shows are not deleted from the
// store; what it holds is still uploaded.
func TestUnmountedOutputsDeleteNothing(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.txt", "a")
	write(t, dir, "sub/b.txt", "b")
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, testConfig(), dir, b, Options{})
	if st := pass(t, s, false); st.Uploaded != 2 {
		t.Fatalf("first pass: %+v", st)
	}
	if s.scan.rootDev == 0 {
		t.Fatal("the outputs folder's file system was not recorded")
	}
	mounted := s.scan.rootDev
	s.scan.rootDev = mounted + 1 // as if what is there now were another file system
	os.RemoveAll(filepath.Join(dir, "sub"))
	os.Remove(filepath.Join(dir, "a.txt"))
	write(t, dir, "new.txt", "n")
	if st := pass(t, s, false); st.Deleted != 0 || st.Uploaded != 1 {
		t.Errorf("pass over another file system: %+v; want nothing deleted, the new file uploaded", st)
	}
	inStore(t, b, "a.txt", "sub/b.txt", "new.txt")
	s.scan.rootDev = mounted // back: deletions resume
	if st := pass(t, s, false); st.Deleted != 2 {
		t.Errorf("pass once back: %+v; want the 2 files deleted meanwhile deleted", st)
	}
	mirrors(t, dir, b)
}

func TestSymlinks(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret-token")
	if err := os.WriteFile(outside, []byte("do not exfiltrate"), 0o600); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "real/model.pt", "weights")
	must(t, os.Symlink(outside, filepath.Join(dir, "token")))
	must(t, os.Symlink("/etc", filepath.Join(dir, "etc")))
	must(t, os.Symlink("real/model.pt", filepath.Join(dir, "latest.pt")))
	must(t, os.Symlink("real", filepath.Join(dir, "alias")))
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, testConfig(), dir, b, Options{})
	pass(t, s, true)
	got := storetest.Objects(t, b, "")
	if len(got) != 2 || string(got["latest.pt"]) != "weights" || got["real/model.pt"] == nil {
		t.Errorf("store holds %v; want real/model.pt and latest.pt (a link inside the tree) only", keys(got))
	}
}

func TestStoreInsideOutputsIsNotSynced(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.txt", "a")
	write(t, dir, "artifacts/run/outputs/a.txt", "a")
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, testConfig(), dir, b, Options{SkipDirs: []string{filepath.Join(dir, "artifacts")}})
	pass(t, s, true)
	if got := storetest.Objects(t, b, ""); len(got) != 1 {
		t.Errorf("store holds %v, want only a.txt", keys(got))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// signalled is a Checkpointer that closes ch once the store holds rel.
type signalled struct {
	order
	rel  string
	ch   chan struct{}
	once stdsync.Once
}

func (c *signalled) Record(rel string, e *resume.Entry) {
	if rel == c.rel && e != nil {
		c.once.Do(func() { close(c.ch) })
	}
}

func TestRunSyncsOnEventsWithoutWaitingForTheInterval(t *testing.T) {
	dir := t.TempDir()
	b := memblob.OpenBucket(nil)
	cfg := testConfig()
	cfg.Interval = time.Hour // no tick during the test: only events can bring a pass
	cfg.Settle = 100 * time.Millisecond
	stored := &signalled{rel: "new/folder/metrics.csv", ch: make(chan struct{})}
	s := newSyncer(t, cfg, dir, b, Options{Checkpointer: stored})
	watching := make(chan struct{})
	watch := s.watch
	s.watch = func() (*watcher, error) {
		defer close(watching) // every folder is watched once newWatcher returns
		return watch()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, context.Background()) }()
	<-watching
	write(t, dir, "new/folder/metrics.csv", "step,loss\n")
	select {
	case <-stored.ch:
	case <-time.After(5 * time.Second):
		t.Fatal("an event did not bring a pass within 5 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mirrors(t, dir, b)
}

func TestIncrementalPassStatsOnlyDirtyPathsUnlessRescan(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.txt", "a")
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, testConfig(), dir, b, Options{})
	pass(t, s, false)
	w, err := newWatcher(s.root, s.scan.ignored, s.log)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// A file the watcher never saw (as on NFS, where inotify is silent).
	write(t, dir, "unseen.txt", "u")
	st, err := s.incremental(context.Background(), context.Background(), w)
	if err != nil || st.Uploaded != 0 || st.Unchanged != 0 {
		t.Fatalf("incremental pass without events = %+v, %v; want nothing looked at", st, err)
	}
	w.requestRescan() // an overflow, say
	st, err = s.incremental(context.Background(), context.Background(), w)
	if err != nil || st.Uploaded != 1 {
		t.Fatalf("pass after a rescan request = %+v, %v; want the unseen file uploaded", st, err)
	}
	mirrors(t, dir, b)
}

// TestAdoptUnrecordedUploads: a collector killed after uploading files but
// before its checkpoint leaves objects its state does not know. The next
// start records the ones whose content matches instead of uploading them
// again, and uploads the one that differs.
func TestAdoptUnrecordedUploads(t *testing.T) {
	dir := t.TempDir()
	b := memblob.OpenBucket(nil)
	ctx := context.Background()
	killed := &blob.WriterOptions{Metadata: map[string]string{"by": "the killed collector"}}
	for rel, data := range map[string]string{"a.txt": "alpha", "deep/b.txt": "beta", "c.txt": "old gamma"} {
		write(t, dir, rel, data)
		if err := b.WriteAll(ctx, rel, []byte(data), killed); err != nil {
			t.Fatal(err)
		}
	}
	write(t, dir, "c.txt", "new gamma") // changed after the kill: same size, other bytes
	write(t, dir, "d.txt", "delta")     // never uploaded

	s := newSyncer(t, testConfig(), dir, b, Options{Adopt: true})
	if st := pass(t, s, false); st.Uploaded != 4 || st.Failed != 0 {
		t.Fatalf("stats = %+v, want 4 files recorded", st)
	}
	mirrors(t, dir, b)
	for rel, adopted := range map[string]bool{"a.txt": true, "deep/b.txt": true, "c.txt": false, "d.txt": false} {
		attrs, err := b.Attributes(ctx, rel)
		if err != nil {
			t.Fatal(err)
		}
		if got := attrs.Metadata["by"] != ""; got != adopted {
			t.Errorf("%s: kept the killed collector's object = %v, want %v", rel, got, adopted)
		}
		if _, ok := s.Manifest()[rel]; !ok {
			t.Errorf("%s: not in the manifest", rel)
		}
	}
}

// TestAdoptAfterACanceledPass: a wrapped command that exits at once cancels
// the first pass while it lists the store; the final pass lists it then,
// and does not upload again what a killed collector had uploaded.
func TestAdoptAfterACanceledPass(t *testing.T) {
	dir := t.TempDir()
	b := memblob.OpenBucket(nil)
	killed := &blob.WriterOptions{Metadata: map[string]string{"by": "the killed collector"}}
	write(t, dir, "a.txt", "alpha")
	if err := b.WriteAll(context.Background(), "a.txt", []byte("alpha"), killed); err != nil {
		t.Fatal(err)
	}
	s := newSyncer(t, testConfig(), dir, b, Options{Adopt: true})
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = s.Pass(canceled, false)
	if err := s.Final(context.Background()); err != nil {
		t.Fatal(err)
	}
	attrs, err := b.Attributes(context.Background(), "a.txt")
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Metadata["by"] == "" {
		t.Error("a.txt was uploaded again: the final pass did not list the store after the first pass was canceled")
	}
}

// stopAfterFirst is a Checkpointer that ends the run (stop) once the store
// holds one file.
type stopAfterFirst struct {
	order
	once stdsync.Once
	stop context.CancelFunc
}

func (c *stopAfterFirst) Record(string, *resume.Entry) { c.once.Do(c.stop) }

// TestAdoptAfterAPassTheRunEnded: the run ends (stop) during the first
// pass, which hands out no more files; the final pass lists the store again
// and adopts the rest of what a killed collector had uploaded, rather than
// uploading it again.
func TestAdoptAfterAPassTheRunEnded(t *testing.T) {
	dir := t.TempDir()
	b := memblob.OpenBucket(nil)
	killed := &blob.WriterOptions{Metadata: map[string]string{"by": "the killed collector"}}
	rels := []string{"a.txt", "b.txt", "c.txt", "d.txt"}
	for _, rel := range rels {
		write(t, dir, rel, rel)
		must(t, b.WriteAll(context.Background(), rel, []byte(rel), killed))
	}
	cfg := testConfig()
	cfg.Workers, cfg.Requests = 1, 1
	stop, end := context.WithCancel(context.Background())
	s := newSyncer(t, cfg, dir, b, Options{Adopt: true, Checkpointer: &stopAfterFirst{stop: end}})
	if st, err := s.passUntil(stop, context.Background(), false, nil); err != nil || st.Uploaded == len(rels) {
		t.Fatalf("first pass = %+v, %v; want it ended by the stop before the last file", st, err)
	}
	must(t, s.Final(context.Background()))
	for _, rel := range rels {
		attrs, err := b.Attributes(context.Background(), rel)
		if err != nil {
			t.Fatal(err)
		}
		if attrs.Metadata["by"] == "" {
			t.Errorf("%s was uploaded again: the final pass did not list the store after the first was ended by the stop", rel)
		}
	}
}
