package file_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/mlsidecar/collector/stores"
)

// BenchmarkHostPathSmallFiles writes 1,000 files of 4 KiB to a host path
// store, one at a time and with the sync's 16 workers: through Target.Upload,
// the path of the outputs sync, which makes each object durable (durable),
// and through fileblob's writer, which does not fsync (fileblob). It
// measures what durability costs on the file system under the test's temp
// folder:
//
//	go test -run '^$' -bench HostPathSmallFiles -benchtime 5x ./stores/file
func BenchmarkHostPathSmallFiles(b *testing.B) {
	data := bytes.Repeat([]byte("x"), 4<<10)
	for _, bc := range []struct {
		path    string
		workers int
	}{{"fileblob", 1}, {"durable", 1}, {"fileblob", 16}, {"durable", 16}} {
		b.Run(fmt.Sprintf("%s/workers=%d", bc.path, bc.workers), func(b *testing.B) {
			workers := bc.workers
			ctx := context.Background()
			s, err := stores.Open(ctx, stores.Connection{Kind: stores.KindHostPath, Schema: stores.Schema{MountPath: b.TempDir()}}, stores.Options{ForWriting: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			t := s.Target("run/outputs/")
			b.ResetTimer()
			for i := range b.N {
				g, gctx := errgroup.WithContext(ctx)
				g.SetLimit(workers)
				for n := range 1000 {
					key := fmt.Sprintf("pass%d/dir%d/file%d.bin", i, n%10, n)
					g.Go(func() error {
						if bc.path == "fileblob" {
							return stores.Upload(gctx, t.Bucket, key, bytes.NewReader(data), nil)
						}
						return t.Upload(gctx, key, bytes.NewReader(data), stores.Sums{}, 0, 0)
					})
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/1000files")
		})
	}
}
