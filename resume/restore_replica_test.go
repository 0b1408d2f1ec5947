package resume

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/stores"
)

// TestRestoreReplicaCopies: a replica's own restore brings a file it stored
// aside (its manifest's Key) back at the file's path, with the key kept in
// the manifest it returns; a path another replica's object holds now, with
// this replica's copy aside, comes back from the copy. Restoring the whole
// run (no Replica) takes the path's object as the store holds it.
func TestRestoreReplicaCopies(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	put := func(key, data, replica string) {
		t.Helper()
		if err := b.WriteAll(ctx, OutputsPrefix+key, []byte(data), &blob.WriterOptions{Metadata: map[string]string{stores.ReplicaMetadataKey: replica}}); err != nil {
			t.Fatal(err)
		}
	}
	put("m.pt", "chief's m", "chief-0")
	put("m.pt.replica-worker-1", "worker's m", "worker-1")
	put("n.pt", "chief's n", "chief-0")
	put("n.pt.replica-worker-1", "worker's n", "worker-1")
	put("own.txt", "worker's own", "worker-1")
	known := Manifest{
		"m.pt":    {Size: 10, ModTime: 1, SHA256: digest([]byte("worker's m")), Key: "m.pt.replica-worker-1"},
		"n.pt":    {Size: 10, ModTime: 1, SHA256: digest([]byte("worker's n"))}, // the chief took the path since
		"own.txt": {Size: 12, ModTime: 1, SHA256: digest([]byte("worker's own"))},
	}
	dir := t.TempDir()
	m, _, err := Restore(ctx, b, dir, RestoreOptions{Known: known, FromKnown: true, Replica: "worker-1"})
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]struct{ data, key string }{
		"m.pt": {"worker's m", "m.pt.replica-worker-1"}, "n.pt": {"worker's n", "n.pt.replica-worker-1"}, "own.txt": {"worker's own", ""},
	} {
		got, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil || string(got) != want.data {
			t.Errorf("%s = %q, %v; want %q", rel, got, err, want.data)
		}
		if e := m[rel]; e == nil || e.Key != want.key || e.SHA256 != digest([]byte(want.data)) {
			t.Errorf("%s's entry = %+v, want key %q and the copy's hash", rel, e, want.key)
		}
	}
	// The whole run, as the store holds it.
	all := t.TempDir()
	m, _, err = Restore(ctx, b, all, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(all, "n.pt")); string(got) != "chief's n" {
		t.Errorf("restore of the whole run: n.pt = %q, want the chief's", got)
	}
	if got, _ := os.ReadFile(filepath.Join(all, "n.pt.replica-worker-1")); string(got) != "worker's n" || len(m) != 5 {
		t.Errorf("restore of the whole run: n.pt.replica-worker-1 = %q, %d files; want the worker's copy and all 5", got, len(m))
	}
}
