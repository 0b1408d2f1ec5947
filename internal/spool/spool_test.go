package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	stdsync "sync"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
	"github.com/mlsidecar/collector/sync"
)

func newSpool(t *testing.T, dir string, b *blob.Bucket) *Spool {
	t.Helper()
	cfg := sync.DefaultConfig()
	cfg.Interval = 50 * time.Millisecond
	cfg.ShutdownTimeout = 2 * time.Second
	s, err := New(Config{Dir: dir, Target: stores.Target{Bucket: b}, Sync: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recorder is a producer's record of the chunks the store holds.
type recorder struct {
	mu     stdsync.Mutex
	stored []string
	fail   error
}

func (r *recorder) record(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.stored = append(r.stored, name)
	return nil
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.stored...)
}

func writeChunk(t *testing.T, p *Producer, name, data string) {
	t.Helper()
	c, err := p.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := c.Seal(); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, b *blob.Bucket, key string) string {
	t.Helper()
	got, err := b.ReadAll(context.Background(), key)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	return string(got)
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// A sealed chunk reaches the store under its name while the run goes on;
// the producer is told, and only then does the chunk leave the spool. An
// open chunk never reaches the store.
func TestSealedChunksReachTheStoreAndLeaveTheSpool(t *testing.T) {
	dir, b := t.TempDir(), memblob.OpenBucket(nil)
	s := newSpool(t, dir, b)
	var rec recorder
	p, err := s.Producer("logs", rec.record)
	if err != nil {
		t.Fatal(err)
	}
	stop, end := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(stop, context.Background()) }()

	writeChunk(t, p, "a-1-000001.jsonl.gz", "first")
	open, err := p.Create("a-1-000002.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	open.Write([]byte("still being written"))
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.names()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := rec.names(); len(got) != 1 || got[0] != "a-1-000001.jsonl.gz" {
		t.Fatalf("stored while running: %v, want the sealed chunk", got)
	}
	if got := read(t, b, "logs/a-1-000001.jsonl.gz"); got != "first" {
		t.Errorf("store holds %q", got)
	}
	if ok, _ := b.Exists(context.Background(), "logs/a-1-000002.jsonl.gz"); ok {
		t.Error("an open chunk reached the store")
	}

	// The run ends: the producer seals its last chunk before it is done, and
	// the final upload waits for it.
	end()
	time.Sleep(100 * time.Millisecond)
	if err := open.Seal(); err != nil {
		t.Fatal(err)
	}
	p.Done()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := read(t, b, "logs/a-1-000002.jsonl.gz"); got != "still being written" {
		t.Errorf("store holds %q", got)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("left in the spool: %v", got)
	}
}

// A chunk the store refuses stays in the spool and goes as soon as the store
// is back; a chunk its producer could not record stays for the next start.
func TestChunksWaitOutAStoreOutage(t *testing.T) {
	dir := t.TempDir()
	inner := memblob.OpenBucket(nil)
	b, faulty := storetest.NewFaulty(inner, 1)
	faulty.SetFailureRate(1)
	s := newSpool(t, dir, b)
	var rec recorder
	p, _ := s.Producer("resources", rec.record)
	stop, end := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(stop, context.Background()) }()
	writeChunk(t, p, "1-000001.jsonl.gz", "sample")
	time.Sleep(300 * time.Millisecond)
	if got := rec.names(); len(got) != 0 {
		t.Fatalf("stored during the outage: %v", got)
	}
	if got := files(t, dir); len(got) != 1 {
		t.Fatalf("spool holds %v, want the chunk", got)
	}
	faulty.SetFailureRate(0)
	end()
	p.Done()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := read(t, inner, "resources/1-000001.jsonl.gz"); got != "sample" {
		t.Errorf("store holds %q", got)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("left in the spool: %v", got)
	}
}

func TestChunkKeptWhenItsProducerCannotRecordIt(t *testing.T) {
	dir, b := t.TempDir(), memblob.OpenBucket(nil)
	s := newSpool(t, dir, b)
	rec := recorder{fail: errors.New("disk full")}
	p, _ := s.Producer("logs", rec.record)
	writeChunk(t, p, "x.jsonl.gz", "lines")
	p.Done()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); len(got) != 1 || got[0] != "logs/x.jsonl.gz" {
		t.Errorf("spool holds %v, want the chunk kept for the next start", got)
	}

	// The next start uploads it again, under the same name.
	s2 := newSpool(t, dir, b)
	var rec2 recorder
	p2, _ := s2.Producer("logs", rec2.record)
	if sealed, _ := p2.Sealed(); len(sealed) != 1 {
		t.Fatalf("sealed chunks at start: %v", sealed)
	}
	p2.Done()
	if err := s2.Run(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rec2.names(); len(got) != 1 || got[0] != "x.jsonl.gz" {
		t.Errorf("stored on the next start: %v", got)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("left in the spool: %v", got)
	}
}

func TestOpenChunksOfAnEarlierRun(t *testing.T) {
	dir, b := t.TempDir(), memblob.OpenBucket(nil)
	s := newSpool(t, dir, b)
	p, _ := s.Producer("logs", func(string) error { return nil })
	for _, n := range []string{"keep", "drop"} {
		c, _ := p.Create(n)
		c.Write([]byte(n))
		c.f.Close() // killed: never sealed
	}
	names, err := p.OpenChunks()
	if err != nil || len(names) != 2 {
		t.Fatalf("open chunks = %v, %v", names, err)
	}
	if err := p.Recover("keep"); err != nil {
		t.Fatal(err)
	}
	if err := p.Discard("drop"); err != nil {
		t.Fatal(err)
	}
	p.Done()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := read(t, b, "logs/keep"); got != "keep" {
		t.Errorf("store holds %q", got)
	}
	if ok, _ := b.Exists(context.Background(), "logs/drop"); ok {
		t.Error("a discarded chunk reached the store")
	}
}

func TestBadNames(t *testing.T) {
	s := newSpool(t, t.TempDir(), memblob.OpenBucket(nil))
	for _, f := range []string{"", ".open", "a/b"} {
		if _, err := s.Producer(f, nil); err == nil {
			t.Errorf("Producer(%q) accepted", f)
		}
	}
	p, _ := s.Producer("logs", nil)
	if _, err := s.Producer("logs", nil); err == nil {
		t.Error("a second producer of logs accepted")
	}
	for _, n := range []string{"", ".hidden", "a/b", ".."} {
		if _, err := p.Create(n); err == nil {
			t.Errorf("Create(%q) accepted", n)
		}
	}
}
