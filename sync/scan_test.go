package sync

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/stores/storetest"
)

// TestIncrementalPassDoesNotFollowLinkedFolders: a pass over the paths that
// events marked applies the scan's symlink policy to their folders too. A
// file under a link to a folder outside the outputs folder is never uploaded,
// and one under a link to a folder inside is not either (the scan does not
// follow links to folders), so the next scan does not undo the pass.
func TestIncrementalPassDoesNotFollowLinkedFolders(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	write(t, outside, "secret.txt", "do not exfiltrate")
	write(t, outside, "deeper/key.pem", "do not exfiltrate either")
	write(t, dir, "real/model.pt", "weights")
	must(t, os.Symlink(outside, filepath.Join(dir, "link")))
	must(t, os.Symlink("real", filepath.Join(dir, "alias")))
	b := memblob.OpenBucket(nil)
	s := newSyncer(t, testConfig(), dir, b, Options{})
	scope := map[string]struct{}{
		"link/secret.txt": {}, "link/deeper/key.pem": {}, "alias/model.pt": {}, "real/model.pt": {},
	}
	st, err := s.pass(context.Background(), true, scope)
	if err != nil {
		t.Fatal(err)
	}
	got := storetest.Objects(t, b, "")
	if len(got) != 1 || string(got["real/model.pt"]) != "weights" {
		t.Errorf("store holds %v after a pass over the marked paths (%+v); want real/model.pt only", keys(got), st)
	}
	if st := pass(t, s, true); st.Uploaded+st.Deleted != 0 {
		t.Errorf("the scan after the incremental pass changed the store: %+v", st)
	}
}
