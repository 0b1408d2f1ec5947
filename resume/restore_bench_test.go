package resume

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// BenchmarkRestoreS3 restores, from the S3 test server into an empty
// folder, many small files and one large file, as a retried job's restore
// does (the state, read from the store, knows every hash). The sizes can be
// changed with RESTORE_BENCH_FILES (default 2,000 files of 4 KiB) and
// RESTORE_BENCH_MIB (default 256).
//
//	go test -run '^$' -bench RestoreS3 -benchtime 1x -cpuprofile cpu.out ./resume
func BenchmarkRestoreS3(b *testing.B) {
	files, mib := envInt(b, "RESTORE_BENCH_FILES", 2000), envInt(b, "RESTORE_BENCH_MIB", 256)
	root := storetest.S3(b).Open(b)
	var smallObjs []benchObject
	for i := range files {
		smallObjs = append(smallObjs, benchObject{rel: fmt.Sprintf("d%02d/f%05d.bin", i%100, i), size: 4 << 10})
	}
	bigObjs := []benchObject{{rel: "big/model.bin", size: int64(mib) << 20}}

	for _, c := range []struct {
		name string
		objs []benchObject
	}{{"small", smallObjs}, {"large", bigObjs}} {
		bucket := blob.PrefixedBucket(root, c.name+"-run/")
		b.Cleanup(func() { bucket.Close() })
		known := Manifest{}
		for _, o := range putRandom(b, bucket, c.objs) {
			known[o.rel] = &Entry{Size: o.size, SHA256: hexDigest(o.sum)}
		}
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				dir := filepath.Join(b.TempDir(), "outputs")
				_, stats, err := Restore(context.Background(), bucket, dir, RestoreOptions{Known: known})
				if err != nil {
					b.Fatal(err)
				}
				if stats.Files != len(known) {
					b.Fatalf("restored %d files, want %d", stats.Files, len(known))
				}
				b.ReportMetric(float64(stats.Took.Milliseconds()), "ms/restore")
			}
		})
	}
}

type benchObject struct {
	rel, sum string
	size     int64
}

// putRandom writes objects of random bytes under outputs/ with their sha256
// metadata, and returns them with their hashes.
func putRandom(tb testing.TB, b *blob.Bucket, objs []benchObject) []benchObject {
	tb.Helper()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(16)
	for i := range objs {
		g.Go(func() error {
			data := make([]byte, objs[i].size)
			rand.Read(data)
			objs[i].sum = sha(data)
			opts := &blob.WriterOptions{Metadata: map[string]string{stores.HashMetadataKey: objs[i].sum}}
			return b.WriteAll(ctx, OutputsPrefix+objs[i].rel, data, opts)
		})
	}
	if err := g.Wait(); err != nil {
		tb.Fatal(err)
	}
	return objs
}

func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		tb.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}
