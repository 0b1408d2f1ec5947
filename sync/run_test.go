package sync

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// partsSaved is a Checkpointer that closes started once a large upload has
// saved the progress of its first part.
type partsSaved struct {
	once    stdsync.Once
	started chan struct{}
}

func (p *partsSaved) Record(string, *resume.Entry)               {}
func (p *partsSaved) WantsManifest() bool                        { return false }
func (p *partsSaved) TakeManifest(resume.Manifest)               {}
func (p *partsSaved) Checkpoint(context.Context) error           { return nil }
func (p *partsSaved) DropProgress(context.Context, string) error { return nil }
func (p *partsSaved) SaveProgress(_ context.Context, pr stores.Progress) error {
	if len(pr.Parts) > 0 {
		p.once.Do(func() { close(p.started) })
	}
	return nil
}

// TestRunEndingMidUploadSendsEachPartOnce: the job ends (stop) while a
// pass is uploading a large file in parts, on the S3 server through a slow
// link. The pass in flight finishes its upload, and the final sync finds the
// file stored: every part crosses the link once, none is cut and sent again.
func TestRunEndingMidUploadSendsEachPartOnce(t *testing.T) {
	for name, fixture := range map[string]func(testing.TB) storetest.Fixture{"versitygw": storetest.S3, "minio": storetest.MinIO} {
		t.Run(name, func(t *testing.T) { runEndingMidUpload(t, fixture(t)) })
	}
}

func runEndingMidUpload(t *testing.T, f storetest.Fixture) {
	proxy, traffic := storetest.CountingProxy(t, f.Endpoint)
	traffic.BytesPerSecond.Store(20 << 20) // a 5 MiB part takes a quarter of a second
	f.Conn.Schema.Bucket += "?endpoint=" + proxy
	store, err := stores.Open(context.Background(), f.Conn, stores.Options{Getenv: f.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	dir := t.TempDir()
	const parts = 6
	data, _ := largeFile(t, dir, "model.pt", parts*5*mib)
	old := time.Now().Add(-time.Hour) // settled
	must(t, os.Chtimes(filepath.Join(dir, "model.pt"), old, old))
	cfg := testConfig()
	cfg.Interval = time.Hour // the first pass only, then the final sync
	cfg.PartConcurrency = 2
	ckpt := &partsSaved{started: make(chan struct{})}
	target := store.Target("run/outputs/")
	s, err := New(cfg, dir, target, Options{Checkpointer: ckpt})
	if err != nil {
		t.Fatal(err)
	}
	traffic.Reset()
	stop, end := context.WithCancel(context.Background())
	go func() {
		<-ckpt.started // the first part is in the store, the next ones on their way
		end()
	}()
	if err := s.Run(stop, context.Background()); err != nil {
		t.Fatal(err)
	}
	storeHolds(t, target, "model.pt", data)
	var sent int64
	sends := map[string]int{}
	for _, r := range traffic.Log() {
		if n := r.Query.Get("partNumber"); r.Method == http.MethodPut && n != "" {
			sends[n]++
			sent += r.Bytes
		}
	}
	if len(sends) != parts || sent != int64(len(data)) {
		t.Errorf("sent %d part requests of %d parts, %d bytes for a file of %d (%v); want each part once", sum(sends), len(sends), sent, len(data), sends)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
