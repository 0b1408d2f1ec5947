package resume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"gocloud.dev/blob/memblob"
)

// TestRestoreCommitsInBatches: files are put in place in batches while the
// downloads go on; a restore canceled midway leaves whole files only under
// their final names (no temp files), and the next one restores the rest and
// downloads none of those again.
func TestRestoreCommitsInBatches(t *testing.T) {
	saved := restoreTuning
	restoreTuning.commitFiles, restoreTuning.syncfsFiles = 4, 2
	t.Cleanup(func() { restoreTuning = saved })

	b := memblob.OpenBucket(nil)
	defer b.Close()
	files := map[string]string{}
	for i := range 60 {
		files[fmt.Sprintf("d%d/part-%02d.bin", i%3, i)] = strings.Repeat(string(rune('a'+i%26)), 8<<10+i)
	}
	put(t, b, files)
	dir := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var downloaded atomic.Int32
	log := slog.New(&onRecord{msg: "restored", do: func() {
		if downloaded.Add(1) == 30 {
			cancel()
		}
	}})
	_, _, err := Restore(ctx, b, dir, RestoreOptions{Workers: 4, Logger: log})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	got := tree(t, dir) // temp files would be listed too
	if len(got) < 30 || len(got) == len(files) {
		t.Errorf("%d files in place after 30 downloads and a cancel, want at least 30 and not all %d", len(got), len(files))
	}
	for rel, data := range got {
		if files[rel] != data {
			t.Errorf("%s: %d bytes left, not the object's", rel, len(data))
		}
	}

	_, stats, err := Restore(context.Background(), b, dir, RestoreOptions{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	assertTree(t, dir, files)
	if stats.Skipped != len(got) {
		t.Errorf("second restore skipped %d files, want the %d in place", stats.Skipped, len(got))
	}
}
