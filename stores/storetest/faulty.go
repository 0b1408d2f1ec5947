package storetest

import (
	"context"
	"errors"
	"math/rand/v2"
	stdsync "sync"
	"sync/atomic"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// ErrInjected is the failure a Faulty store returns.
var ErrInjected = errors.New("injected store failure (503)")

// ErrRefusedWrite is what a Faulty store refusing writes returns: an
// answer that retrying does not change (403).
var ErrRefusedWrite = errors.New("injected refusal (403 AccessDenied)")

// Faulty is a store having a bad time: it wraps a bucket and fails a fraction
// of requests as Unavailable. A failed write is abandoned before the inner
// bucket commits it, as a real store would.
type Faulty struct {
	inner    *blob.Bucket
	mu       stdsync.Mutex
	rate     float64
	rng      *rand.Rand
	Requests atomic.Int64 // requests seen
	Failures atomic.Int64 // requests failed on purpose
	// RefuseWrites, when set, refuses every write with ErrRefusedWrite.
	RefuseWrites atomic.Bool
}

// NewFaulty returns a bucket over inner whose failures f controls.
func NewFaulty(inner *blob.Bucket, seed uint64) (*blob.Bucket, *Faulty) {
	f := &Faulty{inner: inner, rng: rand.New(rand.NewPCG(seed, seed))}
	return blob.NewBucket(&faultyDriver{f}), f
}

// SetFailureRate sets the fraction of requests that fail, 0 to 1.
func (f *Faulty) SetFailureRate(rate float64) {
	f.mu.Lock()
	f.rate = rate
	f.mu.Unlock()
}

// fail counts a request and tells whether to fail it.
func (f *Faulty) fail() bool {
	f.Requests.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() < f.rate {
		f.Failures.Add(1)
		return true
	}
	return false
}

type faultyDriver struct{ f *Faulty }

func (d *faultyDriver) ErrorCode(err error) gcerrors.ErrorCode {
	if errors.Is(err, ErrInjected) {
		return gcerrors.Internal
	}
	if errors.Is(err, ErrRefusedWrite) {
		return gcerrors.PermissionDenied
	}
	return gcerrors.Code(err)
}

func (d *faultyDriver) As(any) bool             { return false }
func (d *faultyDriver) ErrorAs(error, any) bool { return false }
func (d *faultyDriver) Close() error            { return nil }

func (d *faultyDriver) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", errors.ErrUnsupported
}

func (d *faultyDriver) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	if d.f.fail() {
		return nil, ErrInjected
	}
	a, err := d.f.inner.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	return &driver.Attributes{
		CacheControl: a.CacheControl, ContentDisposition: a.ContentDisposition, ContentEncoding: a.ContentEncoding,
		ContentLanguage: a.ContentLanguage, ContentType: a.ContentType, Metadata: a.Metadata,
		CreateTime: a.CreateTime, ModTime: a.ModTime, Size: a.Size, MD5: a.MD5, ETag: a.ETag,
	}, nil
}

func (d *faultyDriver) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if d.f.fail() {
		return nil, ErrInjected
	}
	token := opts.PageToken
	if token == nil {
		token = blob.FirstPageToken
	}
	size := opts.PageSize
	if size <= 0 {
		size = 1000
	}
	objs, next, err := d.f.inner.ListPage(ctx, token, size, &blob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter})
	if err != nil {
		return nil, err
	}
	page := &driver.ListPage{NextPageToken: next}
	for _, o := range objs {
		page.Objects = append(page.Objects, &driver.ListObject{Key: o.Key, ModTime: o.ModTime, Size: o.Size, MD5: o.MD5, IsDir: o.IsDir})
	}
	return page, nil
}

func (d *faultyDriver) NewRangeReader(ctx context.Context, key string, offset, length int64, _ *driver.ReaderOptions) (driver.Reader, error) {
	if d.f.fail() {
		return nil, ErrInjected
	}
	r, err := d.f.inner.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		return nil, err
	}
	return &faultyReader{r: r}, nil
}

type faultyReader struct{ r *blob.Reader }

func (r *faultyReader) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r *faultyReader) Close() error               { return r.r.Close() }
func (r *faultyReader) As(any) bool                { return false }
func (r *faultyReader) Attributes() *driver.ReaderAttributes {
	return &driver.ReaderAttributes{ContentType: r.r.ContentType(), ModTime: r.r.ModTime(), Size: r.r.Size()}
}

func (d *faultyDriver) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	ctx, cancel := context.WithCancel(ctx)
	w, err := d.f.inner.NewWriter(ctx, key, &blob.WriterOptions{
		ContentType: contentType, Metadata: opts.Metadata, ContentMD5: opts.ContentMD5,
		CacheControl: opts.CacheControl, ContentEncoding: opts.ContentEncoding,
	})
	if err != nil {
		cancel()
		return nil, err
	}
	return &faultyWriter{d: d, w: w, cancel: cancel}, nil
}

type faultyWriter struct {
	d      *faultyDriver
	w      *blob.Writer
	cancel context.CancelFunc
}

func (w *faultyWriter) Write(p []byte) (int, error) { return w.w.Write(p) }

func (w *faultyWriter) Close() error {
	defer w.cancel()
	if w.d.f.RefuseWrites.Load() {
		w.cancel()
		_ = w.w.Close()
		return ErrRefusedWrite
	}
	if w.d.f.fail() {
		w.cancel() // abandon: the inner bucket must not commit
		_ = w.w.Close()
		return ErrInjected
	}
	return w.w.Close()
}

func (d *faultyDriver) Copy(ctx context.Context, dst, src string, _ *driver.CopyOptions) error {
	if d.f.fail() {
		return ErrInjected
	}
	return d.f.inner.Copy(ctx, dst, src, nil)
}

func (d *faultyDriver) Delete(ctx context.Context, key string, _ *driver.DeleteOptions) error {
	if d.f.fail() {
		return ErrInjected
	}
	return d.f.inner.Delete(ctx, key)
}
