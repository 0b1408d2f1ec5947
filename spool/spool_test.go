package spool

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
)

// bucketUploader is the sync engine's part in these tests: it copies a
// file into a bucket, and fails while down.
type bucketUploader struct {
	b     *blob.Bucket
	down  atomic.Bool
	calls atomic.Int64
}

var errDown = errors.New("store down")

func (u *bucketUploader) Upload(ctx context.Context, path, key string) error {
	u.calls.Add(1)
	if u.down.Load() {
		return errDown
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return u.b.WriteAll(ctx, key, data, nil)
}

func (u *bucketUploader) Refused(error) bool { return false }

func newSpool(t *testing.T, dir string, up Uploader) *Spool {
	t.Helper()
	s, err := New(Config{Dir: dir, Uploader: up, Interval: 50 * time.Millisecond, GiveUp: 2 * time.Second})
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
	got    chan struct{}
}

func (r *recorder) record(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.stored = append(r.stored, name)
	if r.got != nil {
		r.got <- struct{}{}
	}
	return nil
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.stored...)
}

func writeChunk(t *testing.T, w *Writer, seq uint64, data string) {
	t.Helper()
	if err := w.Open(1, seq, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.Append([]byte(data))
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := w.Seal(); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, b *blob.Bucket, key string) string {
	t.Helper()
	data, err := b.ReadAll(context.Background(), key)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	tmp := filepath.Join(t.TempDir(), "chunk")
	os.WriteFile(tmp, data, 0o644)
	got, err := ReadChunk(tmp)
	if err != nil {
		t.Fatal(err)
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
	s := newSpool(t, dir, &bucketUploader{b: b})
	rec := recorder{got: make(chan struct{}, 10)}
	p, err := s.Producer("logs", rec.record)
	if err != nil {
		t.Fatal(err)
	}
	stop, end := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(stop, context.Background()) }()

	w, _ := p.Writer("app", BestSpeed, SealAt{})
	writeChunk(t, w, 1, "first\n")
	if err := w.Open(1, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.Append([]byte("still being written\n"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rec.got:
	case <-time.After(10 * time.Second):
		t.Fatal("the sealed chunk was not stored while running")
	}
	if got := rec.names(); len(got) != 1 || got[0] != "app.000001.00000001.jsonl.gz" {
		t.Fatalf("stored while running: %v, want the sealed chunk", got)
	}
	if got := read(t, b, "logs/app.000001.00000001.jsonl.gz"); got != "first\n" {
		t.Errorf("store holds %q", got)
	}
	if ok, _ := b.Exists(context.Background(), "logs/app.000001.00000002.jsonl.gz"); ok {
		t.Error("an open chunk reached the store")
	}

	// The run ends: the producer seals its last chunk before it is done, and
	// the final upload waits for it.
	end()
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := w.Seal(); err != nil {
		t.Fatal(err)
	}
	p.Done()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := read(t, b, "logs/app.000001.00000002.jsonl.gz"); got != "still being written\n" {
		t.Errorf("store holds %q", got)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("left in the spool: %v", got)
	}
}

// With no sync interval, chunks go up only at the end, as the outputs do.
func TestNoIntervalUploadsAtTheEnd(t *testing.T) {
	dir, b := t.TempDir(), memblob.OpenBucket(nil)
	up := &bucketUploader{b: b}
	s, err := New(Config{Dir: dir, Uploader: up})
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	p, _ := s.Producer("resources", rec.record)
	w, _ := p.Writer("samples", DefaultCompression, SealAt{})
	stop, end := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(stop, context.Background()) }()
	writeChunk(t, w, 0, "sample\n")
	end()
	if up.calls.Load() != 0 {
		t.Error("a chunk was uploaded before the end")
	}
	p.Done()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := rec.names(); len(got) != 1 {
		t.Errorf("stored at the end: %v", got)
	}
}

// A chunk the store refuses stays in the spool and goes as soon as the store
// is back.
func TestChunksWaitOutAStoreOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, b := t.TempDir(), memblob.OpenBucket(nil)
		up := &bucketUploader{b: b}
		up.down.Store(true)
		s := newSpool(t, dir, up)
		var rec recorder
		p, _ := s.Producer("resources", rec.record)
		w, _ := p.Writer("samples", DefaultCompression, SealAt{})
		stop, end := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(stop, context.Background()) }()
		writeChunk(t, w, 0, "sample\n")
		for up.calls.Load() < 2 { // the spool has tried twice
			time.Sleep(10 * time.Millisecond) // on the bubble's clock
		}
		if got := rec.names(); len(got) != 0 {
			t.Fatalf("stored during the outage: %v", got)
		}
		if got := files(t, dir); len(got) != 1 {
			t.Fatalf("spool holds %v, want the chunk", got)
		}
		up.down.Store(false)
		end()
		p.Done()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := read(t, b, "resources/samples.000001.00000000.jsonl.gz"); got != "sample\n" {
			t.Errorf("store holds %q", got)
		}
		if got := files(t, dir); len(got) != 0 {
			t.Errorf("left in the spool: %v", got)
		}
	})
}

// A store that stays down ends the final upload after GiveUp, with an error
// that says how many chunks were left.
func TestFinalUploadGivesUp(t *testing.T) {
	dir := t.TempDir()
	up := &bucketUploader{b: memblob.OpenBucket(nil)}
	up.down.Store(true)
	s, err := New(Config{Dir: dir, Uploader: up, Interval: time.Second, GiveUp: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Producer("logs", nil)
	w, _ := p.Writer("app", BestSpeed, SealAt{})
	writeChunk(t, w, 1, "line\n")
	p.Done()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = s.Run(ctx, context.Background())
	if err == nil || !strings.Contains(err.Error(), "1 chunks not uploaded") || !strings.Contains(err.Error(), "store down") {
		t.Errorf("err = %v, want the final upload to give up naming the chunk left", err)
	}
}

func TestChunkKeptWhenItsProducerCannotRecordIt(t *testing.T) {
	dir, b := t.TempDir(), memblob.OpenBucket(nil)
	s := newSpool(t, dir, &bucketUploader{b: b})
	rec := recorder{fail: errors.New("disk full")}
	p, _ := s.Producer("logs", rec.record)
	w, _ := p.Writer("x", BestSpeed, SealAt{})
	writeChunk(t, w, 1, "lines\n")
	p.Done()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); len(got) != 1 || got[0] != "logs/x.000001.00000001.jsonl.gz" {
		t.Errorf("spool holds %v, want the chunk kept for the next start", got)
	}

	// The next start uploads it again, under the same name.
	s2 := newSpool(t, dir, &bucketUploader{b: b})
	var rec2 recorder
	p2, _ := s2.Producer("logs", rec2.record)
	if sealed, _ := p2.Sealed(); len(sealed) != 1 {
		t.Fatalf("sealed chunks at start: %v", sealed)
	}
	p2.Done()
	if err := s2.Run(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rec2.names(); len(got) != 1 || got[0] != "x.000001.00000001.jsonl.gz" {
		t.Errorf("stored on the next start: %v", got)
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("left in the spool: %v", got)
	}
}

// A chunk its producer removes from the spool before it is uploaded (a
// full spool's oldest) is not an error.
func TestChunkDroppedByItsProducer(t *testing.T) {
	dir, b := t.TempDir(), memblob.OpenBucket(nil)
	s := newSpool(t, dir, &bucketUploader{b: b})
	var rec recorder
	p, _ := s.Producer("logs", rec.record)
	w, _ := p.Writer("x", BestSpeed, SealAt{})
	writeChunk(t, w, 1, "lines\n")
	if err := os.Remove(p.SealedPath(w.Name())); err != nil {
		t.Fatal(err)
	}
	p.Done()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rec.names(); len(got) != 0 {
		t.Errorf("stored: %v", got)
	}
}

// A chunk a kill left open is sealed with its whole lines, or discarded.
func TestOpenChunksOfAnEarlierRun(t *testing.T) {
	dir, b := t.TempDir(), memblob.OpenBucket(nil)
	s := newSpool(t, dir, &bucketUploader{b: b})
	p, _ := s.Producer("logs", func(string) error { return nil })
	for i, series := range []string{"keep", "drop"} {
		w, _ := p.Writer(series, BestSpeed, SealAt{})
		if err := w.Open(1, uint64(i), time.Now()); err != nil {
			t.Fatal(err)
		}
		w.Append([]byte(series + "\ncut sho"))
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		w.f.Close() // killed: never sealed
	}
	names, err := p.OpenChunks()
	if err != nil || len(names) != 2 {
		t.Fatalf("open chunks = %v, %v", names, err)
	}
	if n, err := p.SealWholeLines(ChunkName("keep", 1, 0)); err != nil || n != 1 {
		t.Fatalf("SealWholeLines = %d, %v; want 1 line", n, err)
	}
	if err := p.Discard(ChunkName("drop", 1, 1)); err != nil {
		t.Fatal(err)
	}
	p.Done()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := read(t, b, "logs/"+ChunkName("keep", 1, 0)); got != "keep\n" {
		t.Errorf("store holds %q", got)
	}
	if ok, _ := b.Exists(context.Background(), "logs/"+ChunkName("drop", 1, 1)); ok {
		t.Error("a discarded chunk reached the store")
	}
}

func TestSealByAgeOrSize(t *testing.T) {
	s := newSpool(t, t.TempDir(), &bucketUploader{b: memblob.OpenBucket(nil)})
	p, _ := s.Producer("logs", nil)
	w, _ := p.Writer("x", BestSpeed, SealAt{Bytes: 100, Age: time.Minute})
	t0 := time.Now()
	if w.Due(t0) {
		t.Error("due with no chunk open")
	}
	w.Open(1, 1, t0)
	w.Append([]byte("a\n"))
	w.Flush()
	if w.Due(t0.Add(59 * time.Second)) {
		t.Error("due before its age and size")
	}
	if !w.Due(t0.Add(time.Minute)) {
		t.Error("not due at its age")
	}
	w.Append([]byte(strings.Repeat("incompressible? no, but long enough\n", 200)))
	w.Flush()
	if !w.Due(t0) {
		t.Errorf("not due at %d bytes", w.Size())
	}
}

func TestChunkNames(t *testing.T) {
	tests := []struct {
		name    string
		series  string
		attempt int
		seq     uint64
		ok      bool
	}{
		{"command.000002.00000017.jsonl.gz", "command", 2, 17, true},
		{"samples.000001.00000000.jsonl.gz", "samples", 1, 0, true},
		{"000012-a3.jsonl.gz", "", 3, 12, true}, // an earlier version's resource chunk
		{"summary.json", "", 0, 0, false},
		{"x.1.2.jsonl.gz", "", 0, 0, false},
	}
	for _, tt := range tests {
		series, attempt, seq, ok := ParseChunkName(tt.name)
		if series != tt.series || attempt != tt.attempt || seq != tt.seq || ok != tt.ok {
			t.Errorf("ParseChunkName(%q) = %q, %d, %d, %v", tt.name, series, attempt, seq, ok)
		}
		if tt.ok && tt.series != "" {
			if got := ChunkName(tt.series, tt.attempt, tt.seq); got != tt.name {
				t.Errorf("ChunkName = %q, want %q", got, tt.name)
			}
		}
	}
}

func TestBadNames(t *testing.T) {
	s := newSpool(t, t.TempDir(), &bucketUploader{b: memblob.OpenBucket(nil)})
	for _, f := range []string{"", ".open", "a/b"} {
		if _, err := s.Producer(f, nil); err == nil {
			t.Errorf("Producer(%q) accepted", f)
		}
	}
	p, _ := s.Producer("logs", nil)
	if _, err := s.Producer("logs", nil); err == nil {
		t.Error("a second producer of logs accepted")
	}
	for _, n := range []string{"", "A", "a/b", "a.b", ".."} {
		if _, err := p.Writer(n, BestSpeed, SealAt{}); err == nil {
			t.Errorf("Writer(%q) accepted", n)
		}
	}
}

// TestEncodeChunk: a chunk EncodeChunk makes reads back as its records.
func TestEncodeChunk(t *testing.T) {
	records := []byte("{\"a\":1}\n{\"a\":2}\n")
	path := filepath.Join(t.TempDir(), ChunkName("test", 1, 0))
	if err := os.WriteFile(path, EncodeChunk(records), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadChunk(path)
	if err != nil || !bytes.Equal(got, records) {
		t.Fatalf("ReadChunk = %q, %v; want %q", got, err, records)
	}
}
