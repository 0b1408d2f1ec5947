package stores_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/mlsidecar/collector/stores"
)

// TestListPastVanishingFiles: a folder store listed while writers beside it
// rename temporary files into place and delete them (as replicas and the
// running collector do) lists every file that stays, once each, in order,
// without an error; bucket.List alone fails on such a file.
func TestListPastVanishingFiles(t *testing.T) {
	dir := t.TempDir()
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{Metadata: fileblob.MetadataDontWrite, NoTempDir: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	const stay = 600
	for i := range stay {
		if err := b.WriteAll(ctx, fmt.Sprintf("run/d%d/f%03d", i%6, i), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var churned atomic.Int64
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				d := filepath.Join(dir, "run", fmt.Sprintf("d%d", n%6))
				tmp := filepath.Join(d, fmt.Sprintf("g%d-%d.tmp", w, n))
				if err := os.WriteFile(tmp, []byte("y"), 0o644); err != nil {
					t.Error(err)
					return
				}
				final := filepath.Join(d, fmt.Sprintf("g%d-%d", w, n%50))
				if err := os.Rename(tmp, final); err != nil {
					t.Error(err)
					return
				}
				if n%3 == 0 {
					os.Remove(final)
				}
				churned.Add(1)
			}
		}()
	}
	rawFailures := 0
	for round := range 60 {
		if _, err := listAll(ctx, b.List(&blob.ListOptions{Prefix: "run/"})); err != nil {
			rawFailures++
		}
		keys, err := listAll(ctx, stores.List(b, &blob.ListOptions{Prefix: "run/"}))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		seen := 0
		for i, k := range keys {
			if i > 0 && k <= keys[i-1] {
				t.Fatalf("round %d: %q after %q: not in order, or twice", round, k, keys[i-1])
			}
			var d, f int
			if _, err := fmt.Sscanf(k, "run/d%d/f%d", &d, &f); err == nil {
				seen++
			}
		}
		if seen != stay {
			t.Fatalf("round %d: listed %d of the %d files that stay", round, seen, stay)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d renames and deletes beside the listings; bucket.List failed in %d of 60 rounds", churned.Load(), rawFailures)
}

type nexter interface {
	Next(context.Context) (*blob.ListObject, error)
}

func listAll(ctx context.Context, it nexter) ([]string, error) {
	var keys []string
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return keys, nil
		}
		if err != nil {
			return keys, err
		}
		keys = append(keys, obj.Key)
	}
}
