package stores

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/internal/backoff"
)

// listRetries is how many times in a row a listing starts again after an
// object went while it was listed, without getting past the key it had
// reached. A folder store walks its whole tree for a page of keys, so beside
// busy writers most walks may fail: the listing starts again at once, then
// after pauses (up to a second) that let a burst of writes pass.
const listRetries = 50

// ListIterator is a blob.ListIterator that goes on past an object that went
// while it was listed. A folder store (gocloud's fileblob) reads a folder,
// then looks at each file it found; a file renamed into place or deleted in
// between fails the whole listing with NotFound, which any writer beside the
// reader (a replica, the running collector, a temporary file being renamed)
// can cause. The iterator then lists again from the start, leaving out the
// keys it has already returned: listings are in key order.
type ListIterator struct {
	bucket  *blob.Bucket
	opts    *blob.ListOptions
	it      *blob.ListIterator
	last    string
	started bool
	retries int
	pause   backoff.Backoff
}

// List lists bucket as bucket.List(opts) does, through a ListIterator.
func List(bucket *blob.Bucket, opts *blob.ListOptions) *ListIterator {
	return &ListIterator{bucket: bucket, opts: opts, it: bucket.List(opts),
		pause: backoff.Backoff{Min: 10 * time.Millisecond, Max: time.Second}}
}

// Next returns the next object, or io.EOF at the end, as
// blob.ListIterator.Next does.
func (l *ListIterator) Next(ctx context.Context) (*blob.ListObject, error) {
	for {
		obj, err := l.it.Next(ctx)
		if err != nil {
			if !vanished(err) || l.retries >= listRetries || ctx.Err() != nil {
				return nil, err
			}
			if l.retries > 0 && !l.pause.Wait(ctx) {
				return nil, err
			}
			l.retries++
			l.it = l.bucket.List(l.opts)
			continue
		}
		if l.started && obj.Key <= l.last {
			continue // returned before the listing started again
		}
		l.last, l.started = obj.Key, true
		l.retries = 0
		l.pause.Reset()
		return obj, nil
	}
}

// vanished tells whether a listing failed on a file that went while a folder
// store listed it (not a bucket that is not there, which is NotFound too).
func vanished(err error) bool {
	var pathErr *fs.PathError
	return gcerrors.Code(err) == gcerrors.NotFound && errors.As(err, &pathErr)
}
