package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// TestOnlyWhatWasSeenIsDeleted: the Syncer deletes from the store only files
// it saw in the folder since it started and then saw deleted (DESIGN.md, the
// ownership rule). An entry of the manifest whose file it never saw (an
// earlier attempt's file, not restored) stays in the store and in the
// manifest, unchanged, by full scans and by passes over marked paths alike.
func TestOnlyWhatWasSeenIsDeleted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := memblob.OpenBucket(nil)
	must(t, b.WriteAll(ctx, "earlier.txt", []byte("earlier attempt"), nil))
	must(t, b.WriteAll(ctx, "restored.txt", []byte("restored"), nil))
	write(t, dir, "restored.txt", "restored")
	fi, err := os.Stat(filepath.Join(dir, "restored.txt"))
	must(t, err)
	earlier := resume.Entry{Size: 15, ModTime: 1234, SHA256: resume.Digest{0xe}}
	manifest := resume.Manifest{
		"earlier.txt":  &earlier,
		"restored.txt": {Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Inode: resume.InodeOf(fi)},
	}
	s := newSyncer(t, testConfig(), dir, b, Options{Manifest: manifest})
	inStore := func() []string { return keys(storetest.Objects(t, b, "")) }
	has := func(key string) bool { ok, _ := b.Exists(ctx, key); return ok }

	if st := pass(t, s, false); st.Uploaded+st.Deleted != 0 || !has("earlier.txt") {
		t.Fatalf("first pass = %+v, store holds %v; want nothing done and earlier.txt kept", st, inStore())
	}
	if got := s.Manifest()["earlier.txt"]; got == nil || *got != earlier {
		t.Errorf("manifest entry of the file never seen = %+v, want it unchanged (%+v)", got, earlier)
	}

	// Seen at the start (restored), then deleted: deleted.
	must(t, os.Remove(filepath.Join(dir, "restored.txt")))
	if st := pass(t, s, false); st.Deleted != 1 || has("restored.txt") || !has("earlier.txt") {
		t.Fatalf("pass after the restored file was deleted = %+v, store holds %v; want restored.txt deleted, earlier.txt kept", st, inStore())
	}

	// Seen by a pass over marked paths, then deleted: deleted; the marked
	// path of the file never seen is not.
	write(t, dir, "new.txt", "new")
	scope := map[string]struct{}{"new.txt": {}, "earlier.txt": {}}
	if _, err := s.pass(ctx, false, scope); err != nil || !has("new.txt") {
		t.Fatalf("new.txt not uploaded (%v)", err)
	}
	must(t, os.Remove(filepath.Join(dir, "new.txt")))
	if st, err := s.pass(ctx, false, scope); err != nil || st.Deleted != 1 || has("new.txt") || !has("earlier.txt") {
		t.Fatalf("pass over new.txt and earlier.txt = %+v, %v; store holds %v; want new.txt deleted, earlier.txt kept", st, err, inStore())
	}

	// The job writes the earlier attempt's file again: from now on it is
	// this attempt's, uploaded, and deleted when the job deletes it.
	write(t, dir, "earlier.txt", "this attempt")
	if st := pass(t, s, false); st.Uploaded != 1 {
		t.Fatalf("pass after earlier.txt was written again = %+v, want it uploaded", st)
	}
	must(t, os.Remove(filepath.Join(dir, "earlier.txt")))
	if st := pass(t, s, false); st.Deleted != 1 || has("earlier.txt") {
		t.Fatalf("pass after earlier.txt was seen and deleted = %+v, store holds %v; want it deleted", st, inStore())
	}
	if m := s.Manifest(); len(m) != 0 {
		t.Errorf("manifest = %v, want empty as the store", m)
	}
}

// TestSharedFolderDeletesOnlyItsOwnVersion: with Options.Shared (replicas
// of a distributed run writing one outputs folder), a file this Syncer
// stored and then saw deleted is deleted from the store only while the
// object is still its version; once another collector stored its own
// version of the path, that version stays, and the path leaves this
// Syncer's manifest.
func TestSharedFolderDeletesOnlyItsOwnVersion(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, testConfig(), dir, b, Options{Shared: true})
	write(t, dir, "mine.txt", "mine")
	write(t, dir, "shared.txt", "replica a")
	if st := pass(t, s, false); st.Uploaded != 2 {
		t.Fatalf("first pass = %+v, want 2 uploaded", st)
	}
	// Another replica stores its version of shared.txt, with its hash.
	other := []byte("replica b's version")
	sum := sha256.Sum256(other)
	must(t, b.WriteAll(ctx, "shared.txt", other, &blob.WriterOptions{Metadata: map[string]string{stores.HashMetadataKey: hex.EncodeToString(sum[:])}}))

	must(t, os.Remove(filepath.Join(dir, "mine.txt")))
	must(t, os.Remove(filepath.Join(dir, "shared.txt")))
	pass(t, s, false)
	if ok, _ := b.Exists(ctx, "mine.txt"); ok {
		t.Error("mine.txt, this Syncer's own version, is still in the store after its file was deleted")
	}
	got, err := b.ReadAll(ctx, "shared.txt")
	if err != nil || string(got) != string(other) {
		t.Errorf("shared.txt in the store = %q, %v; want the other replica's version kept", got, err)
	}
	if m := s.Manifest(); m["shared.txt"] != nil || m["mine.txt"] != nil {
		t.Errorf("manifest after the deletions holds shared.txt: %v, mine.txt: %v; want neither", m["shared.txt"] != nil, m["mine.txt"] != nil)
	}
}
