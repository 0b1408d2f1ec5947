package sync

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/internal/backoff"
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

// retry runs op until it succeeds, fails permanently, has been tried
// attempts times, or ctx ends; it waits with backoff between tries.
func retry(ctx context.Context, attempts int, op func() error) error {
	b := backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for i := 1; ; i++ {
		err := op()
		if err == nil || i >= attempts || permanent(err) || errors.Is(err, errChanged) {
			return err
		}
		if !b.Wait(ctx) {
			return err
		}
	}
}

// uploadAttempts is how often a pass tries one file when the store's errors
// are transient; after that the file waits for the next pass.
const uploadAttempts = 4

// retry is retry with uploadAttempts, counting the tries after the first.
func (s *Syncer) retry(ctx context.Context, op func() error) error {
	tries := 0
	err := retry(ctx, uploadAttempts, func() error {
		if tries++; tries > 1 {
			s.totals.retries.Add(1)
		}
		return op()
	})
	return err
}
