package sync

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"time"

	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/stores"
)

// permanent reports whether err will not go away by retrying soon: a local
// file the collector may not read, refused credentials, a missing bucket, a
// request the store rejected (a 4xx) or a feature it does not support
// (stores.ErrRefused). Throttling (503 SlowDown, 429), timeouts, 5xx answers
// and broken connections are transient.
func permanent(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, stores.ErrTooLarge) || errors.Is(err, stores.ErrRefused) ||
		errors.Is(err, fs.ErrPermission) {
		return true
	}
	switch gcerrors.Code(err) {
	case gcerrors.PermissionDenied, gcerrors.NotFound, gcerrors.InvalidArgument,
		gcerrors.FailedPrecondition, gcerrors.Unimplemented, gcerrors.AlreadyExists:
		return true
	}
	return false
}

// backoff is a capped exponential backoff with full jitter.
type backoff struct {
	base, cap time.Duration
	attempt   int
}

// next returns how long to wait before the next attempt.
func (b *backoff) next() time.Duration {
	d := b.base << min(b.attempt, 16)
	b.attempt++
	if d <= 0 || d > b.cap {
		d = b.cap
	}
	return d/2 + rand.N(d/2+1)
}

// retry runs op until it succeeds, fails permanently, has been tried
// attempts times, or ctx ends; it waits with backoff between tries.
func retry(ctx context.Context, attempts int, op func() error) error {
	b := backoff{base: 100 * time.Millisecond, cap: 5 * time.Second}
	for i := 1; ; i++ {
		err := op()
		if err == nil || i >= attempts || permanent(err) || errors.Is(err, errChanged) {
			return err
		}
		t := time.NewTimer(b.next())
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
