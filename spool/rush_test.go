package spool

import (
	"context"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"
)

// Without an interval chunks wait for the end; after a Rush the chunk open
// at that moment is due, and it and the chunks sealed before reach the
// store while the run goes on.
func TestRushSealsAndSendsWithoutAnInterval(t *testing.T) {
	dir, b := t.TempDir(), memblob.OpenBucket(nil)
	up := &bucketUploader{b: b}
	s, err := New(Config{Dir: dir, Uploader: up})
	if err != nil {
		t.Fatal(err)
	}
	rec := recorder{got: make(chan struct{}, 4)}
	p, _ := s.Producer("logs", rec.record)
	w, _ := p.Writer("main", BestSpeed, SealAt{Age: time.Hour})
	stop, end := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(stop, context.Background()) }()
	writeChunk(t, w, 0, "sealed before\n")
	if err := w.Open(1, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.Append([]byte("open at the notice\n"))
	if w.Due(time.Now()) {
		t.Fatal("a chunk an hour from its age is due before the Rush")
	}
	select {
	case <-s.Rushed():
		t.Fatal("Rushed is closed before the Rush")
	default:
	}
	s.Rush()
	<-s.Rushed()
	s.Rush() // a second notice: no panic
	if !w.Due(time.Now()) {
		t.Fatal("the chunk open at the Rush is not due")
	}
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := w.Seal(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-rec.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("stored before the end: %v, want both chunks", rec.names())
		}
	}
	if got := read(t, b, "logs/"+ChunkName("main", 1, 1)); got != "open at the notice\n" {
		t.Errorf("the rushed chunk holds %q", got)
	}
	if err := w.Open(1, 2, time.Now().Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if w.Due(time.Now().Add(time.Millisecond)) {
		t.Error("a chunk opened after the Rush is due at once")
	}
	w.Abort()
	end()
	p.Done()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
