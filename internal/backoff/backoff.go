// Package backoff owns the collector's one retry delay: capped exponential
// growth with jitter, so that many collectors retrying one store do not
// retry in step.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential delay with jitter: the n-th delay is drawn
// from [d/2, d], where d is Min doubled n times and capped at Max. The zero
// value is not useful; set Min and Max.
type Backoff struct {
	Min, Max time.Duration
	attempt  int
}

// Next returns the delay before the next try.
func (b *Backoff) Next() time.Duration {
	d := b.Min << min(b.attempt, 30)
	b.attempt++
	if d <= 0 || d > b.Max {
		d = b.Max
	}
	return d/2 + rand.N(d/2+1)
}

// Reset starts the delays over from Min: the last try made progress.
func (b *Backoff) Reset() { b.attempt = 0 }

// Wait sleeps for the next delay; it returns false, at once, when ctx ends
// first.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
