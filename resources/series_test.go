package resources

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlsidecar/collector/spool"
)

// TestEarlierVersionsChunks: a spool that an earlier version left, its
// chunks sealed under the names resource chunks had then
// (<seq>-a<attempt>.jsonl.gz), is taken over by a retry on the same disk:
// those chunks reach the store under their names and are counted once, and
// the retry's own chunks carry on the series under spool.ChunkName's names.
func TestEarlierVersionsChunks(t *testing.T) {
	store, spoolDir, state := newStore(t), t.TempDir(), &memState{}

	// Attempt 1 seals chunks, but its spool never uploads them.
	r1 := newRig(t, store, spoolDir, state, Config{Attempt: 1, Interval: 50 * time.Millisecond, ChunkAge: 100 * time.Millisecond})
	stop1, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r1.sampler.Run(stop1, context.Background()) }()
	r1.waitSamples(6)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sealed := filepath.Join(spoolDir, Folder)
	names, _ := filepath.Glob(filepath.Join(sealed, "*.jsonl.gz"))
	if len(names) < 2 {
		t.Fatalf("attempt 1 sealed %d chunks, want 2 or more", len(names))
	}
	var old []string
	for _, n := range names {
		series, attempt, seq, ok := spool.ParseChunkName(filepath.Base(n))
		if !ok || series != Series || attempt != 1 {
			t.Fatalf("attempt 1's chunk %s", n)
		}
		name := fmt.Sprintf("%06d-a%d.jsonl.gz", seq, attempt)
		if err := os.Rename(n, filepath.Join(sealed, name)); err != nil {
			t.Fatal(err)
		}
		old = append(old, name)
	}

	// Attempt 2, of this version, on the same disk.
	r2 := newRig(t, store, spoolDir, state, Config{Attempt: 2, Interval: 50 * time.Millisecond, ChunkAge: 100 * time.Millisecond})
	stop := r2.start()
	r2.waitSamples(r1.sampler.Summary().Samples + 4)
	stop()

	ctx := context.Background()
	for _, name := range old {
		if ok, err := r2.store.Exists(ctx, r2.run+"/resources/"+name); !ok || err != nil {
			t.Errorf("the earlier version's chunk %s is not in the store (%v)", name, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(sealed, "*")); len(left) != 0 {
		t.Errorf("left in the spool: %v", left)
	}
	s, recs := r2.summary(), r2.series()
	if s.Samples != len(recs) {
		t.Errorf("the summary counts %d samples; the store holds %d records", s.Samples, len(recs))
	}
	if got, want := fmt.Sprint(s.Attempts), "[1 2]"; got != want {
		t.Errorf("attempts = %s, want %s", got, want)
	}
	// In name order the records are in time order: the earlier names
	// sort before the new ones.
	for i := 1; i < len(recs); i++ {
		a, _ := time.Parse(time.RFC3339Nano, recs[i-1]["timestamp"].(string))
		b, _ := time.Parse(time.RFC3339Nano, recs[i]["timestamp"].(string))
		if b.Before(a) {
			t.Fatalf("record %d (%v) is older than the one before (%v)", i, b, a)
		}
	}
	iter := r2.store.List(nil)
	for {
		obj, err := iter.Next(ctx)
		if err != nil {
			break
		}
		name := strings.TrimPrefix(obj.Key, r2.run+"/resources/")
		if series, attempt, _, ok := spool.ParseChunkName(name); ok && attempt == 2 && series != Series {
			t.Errorf("attempt 2's chunk %s is not of the series %q", name, Series)
		}
	}
	var sec section
	if ok, err := state.Load(&sec); !ok || err != nil || sec.Stored < len(old) {
		t.Errorf("state: %d chunks stored in sequence (%v), want at least the %d earlier ones", sec.Stored, err, len(old))
	}
}
