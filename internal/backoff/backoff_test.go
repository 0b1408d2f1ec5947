package backoff

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestNext: each delay lies in [d/2, d] for d = Min doubled per try, capped
// at Max; Reset starts over.
func TestNext(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for i, d := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		d *= time.Millisecond
		if got := b.Next(); got < d/2 || got > d {
			t.Errorf("try %d: delay %v, want within [%v, %v]", i+1, got, d/2, d)
		}
	}
	b.Reset()
	if got := b.Next(); got > 100*time.Millisecond {
		t.Errorf("after Reset: delay %v, want at most 100ms", got)
	}
}

// TestWait: Wait sleeps the delay, and returns false at once when the
// context ends.
func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := Backoff{Min: time.Second, Max: time.Second}
		start := time.Now()
		if !b.Wait(context.Background()) {
			t.Fatal("Wait returned false with a live context")
		}
		if got := time.Since(start); got < 500*time.Millisecond || got > time.Second {
			t.Errorf("waited %v, want within [500ms, 1s]", got)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if b.Wait(ctx) {
			t.Error("Wait returned true with an ended context")
		}
	})
}
