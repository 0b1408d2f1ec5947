package stores

import (
	"context"
	"io"

	"gocloud.dev/blob"
)

// Ahead opens the readers of objects in a given order, up to n ahead of
// the one its caller reads: a store a network hop away costs a round trip
// per object, and a run's series are hundreds or thousands of small
// objects. A reader opened ahead holds what its connection buffers, not
// the whole object. It is not safe for concurrent use.
type Ahead struct {
	ctx    context.Context
	bucket *blob.Bucket
	keys   []string // not requested yet
	n      int
	opened []*opening
}

// opening is a reader being opened ahead of its turn.
type opening struct {
	key  string
	done chan struct{}
	r    *blob.Reader
	err  error
}

// OpenAhead returns an Ahead over the objects of keys, in that order,
// opening up to n at once (at least 1).
func OpenAhead(ctx context.Context, bucket *blob.Bucket, keys []string, n int) *Ahead {
	return &Ahead{ctx: ctx, bucket: bucket, keys: keys, n: max(n, 1)}
}

// Next returns the next object's key and reader, which the caller closes;
// io.EOF after the last, ctx's error once it ended. An error opening the
// reader does not name the key: the caller has it.
func (a *Ahead) Next() (string, *blob.Reader, error) {
	a.request()
	if len(a.opened) == 0 {
		return "", nil, io.EOF
	}
	o := a.opened[0]
	a.opened = a.opened[1:]
	a.request()
	<-o.done
	if err := a.ctx.Err(); err != nil && o.err == nil {
		o.r.Close() // ended meanwhile: a store that does not look at ctx opened it all the same
		return o.key, nil, err
	}
	return o.key, o.r, o.err
}

// request starts opening the next readers, up to n.
func (a *Ahead) request() {
	for len(a.opened) < a.n && len(a.keys) > 0 {
		o := &opening{key: a.keys[0], done: make(chan struct{})}
		a.keys = a.keys[1:]
		a.opened = append(a.opened, o)
		go func() {
			defer close(o.done)
			o.r, o.err = a.bucket.NewReader(a.ctx, o.key, nil)
		}()
	}
}

// Close closes the readers opened and not handed out by Next, and opens
// no more.
func (a *Ahead) Close() {
	for _, o := range a.opened {
		<-o.done
		if o.r != nil {
			o.r.Close()
		}
	}
	a.opened, a.keys = nil, nil
}
