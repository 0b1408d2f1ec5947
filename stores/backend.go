package stores

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	stdsync "sync"

	"gocloud.dev/blob"
)

// Backend opens the stores of one kind. Each package under stores/ (s3, gcs,
// azure, file) implements one and registers it with Register when it is
// imported; the collector imports all four.
type Backend interface {
	// Open opens the whole bucket of c (container, folder): Open in this
	// package roots it at the connection's prefix. loc is c's parsed
	// schema.bucket (zero for host_path and volume_claim), creds its
	// credentials, log where the kind's client library logs (never nil). A
	// *ConfigError is a bad setting; any other error says the store cannot
	// be used.
	Open(ctx context.Context, c Connection, loc BucketURL, creds Credentials, log *slog.Logger) (Driver, error)
}

// Driver is one open store: the *blob.Bucket gocloud gives for it, and what
// gocloud cannot do there.
type Driver interface {
	// Bucket is the whole bucket, container or folder.
	Bucket() *blob.Bucket
	// Resumable returns the uploader of large objects whose keys, in
	// Bucket, start with prefix ("" or ending in "/"), or nil when the kind
	// has none: then large objects go through the bucket's own writer.
	Resumable(prefix string) Uploader
	// Verify asks the store to check the bytes of one upload through
	// Bucket: it sets in opts what the backend's SDK takes (a CRC32C, a
	// CRC64 per block), from sums where it needs them.
	Verify(opts *blob.WriterOptions, sums Sums)
	// Limits are the store's limits on one object and its parts.
	Limits() Limits
}

// putter is a Driver that writes single-call uploads itself rather than
// through its bucket's writer: the folder store, whose objects must be on
// disk (file and folder fsync'd) before Upload returns. key is in the
// whole bucket. metadata, when not nil, is the object's (Target.ForReplica).
type putter interface {
	Put(ctx context.Context, key string, r io.Reader, metadata map[string]string) error
}

// bytesPutter is a Driver that sends an object held in memory in one request
// itself, without the bucket writer's goroutine, pipe and streaming upload
// manager: S3, where that is one PutObject from the caller's goroutine. key
// is in the whole bucket.
type bytesPutter interface {
	PutBytes(ctx context.Context, key string, data []byte, sums Sums, metadata map[string]string) error
}

// Sums are what is known of an object's bytes before it is uploaded.
type Sums struct {
	SHA256 []byte // kept in the metadata under HashMetadataKey
	MD5    []byte // optional: the store checks it on a single-request upload
	CRC32C uint32 // optional (0: unknown): GCS checks it against the object
}

var (
	backendsMu stdsync.RWMutex
	backends   = map[string]Backend{}
)

// Register makes a backend the opener of a store kind. It panics when the
// kind has one already: two packages claim it.
func Register(kind string, b Backend) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	if _, dup := backends[kind]; dup {
		panic(fmt.Sprintf("stores: a backend for kind %q is registered twice", kind))
	}
	backends[kind] = b
}

func backendFor(kind string) Backend {
	backendsMu.RLock()
	defer backendsMu.RUnlock()
	return backends[kind]
}

// Store is an open artifacts store.
type Store struct {
	// Conn is the connection the store was opened from.
	Conn   Connection
	drv    Driver
	prefix string // the connection's prefix in the bucket ("" or ending in "/")
	// base is the driver's bucket. It is only ever wrapped, never used
	// itself: blob.PrefixedBucket marks the bucket it wraps closed, so every
	// view of the store is a new wrapper of base.
	base *blob.Bucket
}

// Bucket is the store's root: the bucket rooted at the connection's prefix.
// Each call returns a new *blob.Bucket over the store's one client, which
// the caller may wrap in turn; closing any of them closes the store.
func (s *Store) Bucket() *blob.Bucket { return s.Sub("") }

// Sub is the store's bucket rooted at prefix ("" or ending in "/", relative
// to the store's root): a new *blob.Bucket each call, as for Bucket.
func (s *Store) Sub(prefix string) *blob.Bucket { return blob.PrefixedBucket(s.base, s.prefix+prefix) }

// Limits are the store's limits on one object and its parts.
func (s *Store) Limits() Limits { return s.drv.Limits() }

// Close closes the bucket.
func (s *Store) Close() error { return storeError(s.drv, blob.PrefixedBucket(s.base, "").Close()) }

// Target returns the place under prefix ("" or ending in "/", relative to
// the store's root) where a component writes.
func (s *Store) Target(prefix string) Target {
	var resumable Uploader
	if u := s.drv.Resumable(s.prefix + prefix); u != nil {
		resumable = redactingUploader{u: u, drv: s.drv}
	}
	return Target{
		Bucket:    s.Sub(prefix),
		Resumable: resumable,
		drv:       s.drv,
		prefix:    s.prefix + prefix,
	}
}

// Target is a place in a store that a component writes to: a bucket rooted
// at a key prefix, the backend's resumable uploader for the same keys, and
// the backend's checks on what is uploaded.
type Target struct {
	// Bucket is rooted at the target's prefix.
	Bucket *blob.Bucket
	// Resumable uploads large objects in parts that survive a restart; nil
	// when the kind has none. Its errors are redacted, and a refusal
	// matches ErrRefused.
	Resumable Uploader
	drv       Driver
	prefix    string // the target's prefix in the driver's bucket
	replica   string // ForReplica's
}

// Limits are the store's limits on one object and its parts; none for a
// Target made without a store.
func (t Target) Limits() Limits {
	if t.drv == nil {
		return Limits{}
	}
	return t.drv.Limits()
}

// Upload writes r to key in one call of the bucket's writer, with the SHA-256
// of sums in the metadata and the store asked to verify what it receives.
// partSize and concurrency tune a streamed upload of a large object (0: the
// driver's defaults). A folder store writes the file itself, and it is on
// disk when Upload returns. Like the package's Upload, it redacts its
// error; a refusal by the store matches ErrRefused.
func (t Target) Upload(ctx context.Context, key string, r io.Reader, sums Sums, partSize, concurrency int) error {
	if p, ok := t.drv.(putter); ok {
		var md map[string]string // a folder store keeps metadata only for a replica
		if t.replica != "" {
			md = t.metadata(sums)
		}
		if err := p.Put(ctx, t.prefix+key, r, md); err != nil {
			return Redact(fmt.Errorf("upload %q: %w", key, err))
		}
		return nil
	}
	opts := &blob.WriterOptions{
		ContentType:    "application/octet-stream",
		ContentMD5:     sums.MD5,
		BufferSize:     partSize,
		MaxConcurrency: concurrency,
	}
	opts.Metadata = t.metadata(sums)
	if t.drv != nil {
		t.drv.Verify(opts, sums)
	}
	return upload(ctx, t.drv, t.Bucket, key, r, opts)
}

// PutBytes writes a small object held in memory to key in one request, with
// the SHA-256 of sums in the metadata and the store asked to verify what it
// receives, as Upload does. It is the path of every small file, so it
// avoids the streaming machinery where the backend can.
func (t Target) PutBytes(ctx context.Context, key string, data []byte, sums Sums) error {
	if p, ok := t.drv.(bytesPutter); ok {
		if err := p.PutBytes(ctx, t.prefix+key, data, sums, t.metadata(sums)); err != nil {
			return storeError(t.drv, fmt.Errorf("upload %q: %w", key, err))
		}
		return nil
	}
	return t.Upload(ctx, key, bytes.NewReader(data), sums, 0, 0)
}

// IdleConnsPerHost is the fewest idle connections to the store the
// backends' HTTP clients keep. The SDKs' default (10) is below the
// collector's parallel uploads (workers, parts in flight): every request
// beyond it would dial a new connection and leave one in TIME_WAIT.
const IdleConnsPerHost = 64

// IdleConns is how many idle connections a client keeps for a caller that
// sends up to requests at once: as many, and IdleConnsPerHost at least. A
// client holds no more than were in flight at once.
func IdleConns(requests int) int {
	return max(IdleConnsPerHost, requests)
}

// PooledBackend is a Backend whose client keeps idle connections to the
// store: Open in this package opens it with OpenPooled, telling it how many
// to keep (IdleConns of Options.Requests).
type PooledBackend interface {
	Backend
	OpenPooled(ctx context.Context, c Connection, loc BucketURL, creds Credentials, log *slog.Logger, idleConns int) (Driver, error)
}
