package stores

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// ReplicaMetadataKey is the object metadata key naming the replica of a
// distributed run that stored the object (Target.ForReplica). A folder store
// keeps it in the file's extended attribute "user.collector.replica".
const ReplicaMetadataKey = "replica"

// ReplicaOf is the replica that stored an object, from its attributes; ""
// for one stored without a name (a single-replica run, a folder store
// without extended attributes, an earlier version).
func ReplicaOf(attrs *blob.Attributes) string { return attrs.Metadata[ReplicaMetadataKey] }

// ForReplica returns the target with every object written through it (its
// Upload, PutBytes and Resumable) carrying the replica's name under
// ReplicaMetadataKey. "" is a single-replica run's target, whose objects
// carry no name: t itself.
func (t Target) ForReplica(name string) Target {
	if name == "" {
		return t
	}
	t.replica = name
	if r, ok := t.Resumable.(redactingUploader); ok {
		r.replica = name
		t.Resumable = r
	} else if t.Resumable != nil {
		t.Resumable = redactingUploader{u: t.Resumable, drv: t.drv, replica: name}
	}
	return t
}

// Replica is the name ForReplica gave the target; "" for none.
func (t Target) Replica() string { return t.replica }

// metadata is what an object written through t carries besides its bytes:
// the SHA-256 of sums and the replica's name, each when known.
func (t Target) metadata(sums Sums) map[string]string {
	var md map[string]string
	if sums.SHA256 != nil {
		md = map[string]string{HashMetadataKey: fmt.Sprintf("%x", sums.SHA256)}
	}
	return withReplica(md, t.replica)
}

// withReplica returns md with the replica's name added (a copy), or md as it
// is when the name is "".
func withReplica(md map[string]string, replica string) map[string]string {
	if replica == "" {
		return md
	}
	md = maps.Clone(md)
	if md == nil {
		md = map[string]string{}
	}
	md[ReplicaMetadataKey] = replica
	return md
}

// metadataKeeper is a Driver whose objects keep their metadata outside the
// bucket's attributes: the folder store, in extended attributes. key is in
// the whole bucket.
type metadataKeeper interface {
	Metadata(key string) (map[string]string, error)
}

// copier is a Driver that copies objects itself rather than through its
// bucket: the folder store, which links the file (its extended attributes
// with it) and makes the copy durable. keys are in the whole bucket.
type copier interface {
	Copy(ctx context.Context, dst, src string) error
}

// Attributes returns the attributes of the object at key, its metadata
// included where the store keeps it apart from the bucket (a folder store's
// extended attributes). Its error is redacted; gcerrors.Code tells a missing
// object (NotFound).
func (t Target) Attributes(ctx context.Context, key string) (*blob.Attributes, error) {
	attrs, err := t.Bucket.Attributes(ctx, key)
	if err != nil {
		return nil, storeError(t.drv, err)
	}
	if k, ok := t.drv.(metadataKeeper); ok {
		md, err := k.Metadata(t.prefix + key)
		if err != nil {
			return nil, storeError(t.drv, fmt.Errorf("attributes %q: %w", key, err))
		}
		if len(md) > 0 {
			attrs.Metadata = maps.Clone(attrs.Metadata)
			if attrs.Metadata == nil {
				attrs.Metadata = map[string]string{}
			}
			maps.Copy(attrs.Metadata, md)
		}
	}
	return attrs, nil
}

// Copy copies the object at src to dst with its metadata, in the store where
// it can (S3 CopyObject, a GCS rewrite, an Azure copy from URL; a hard link
// on a folder store), replacing what dst held. Its error is redacted.
func (t Target) Copy(ctx context.Context, dst, src string) error {
	if c, ok := t.drv.(copier); ok {
		if err := c.Copy(ctx, t.prefix+dst, t.prefix+src); err != nil {
			return Redact(fmt.Errorf("copy %q to %q: %w", src, dst, err))
		}
		return nil
	}
	if err := t.Bucket.Copy(ctx, dst, src, nil); err != nil {
		return storeError(t.drv, fmt.Errorf("copy %q to %q: %w", src, dst, err))
	}
	return nil
}

// Precondition makes a write conditional on what the store holds at its key:
// nothing (IfAbsent), or the object whose ETag Attributes gave (IfETag).
// The zero Precondition is none. A folder store checks an ETag just before
// its rename, not atomically with it.
type Precondition struct {
	IfAbsent bool
	IfETag   string
	// IfGeneration is the object's generation, where the store checks a
	// write against that rather than an ETag (GCS); Target.Matching sets it.
	IfGeneration int64
}

// matcher is a Driver whose writes are checked against something else than
// an object's ETag: GCS, its generation.
type matcher interface {
	Match(attrs *blob.Attributes, pre *Precondition)
}

// Matching is the Precondition that a write finds the object attrs
// describes (from Attributes) still there.
func (t Target) Matching(attrs *blob.Attributes) Precondition {
	pre := Precondition{IfETag: attrs.ETag}
	if m, ok := t.drv.(matcher); ok {
		m.Match(attrs, &pre)
	}
	return pre
}

// ErrPrecondition matches a write the store refused because its
// Precondition did not hold: another writer changed the object since it
// was looked at.
var ErrPrecondition = errors.New("the object changed since it was looked at")

// conditionalPutter is a bytesPutter that can make its write conditional:
// S3 (If-None-Match, If-Match).
type conditionalPutter interface {
	PutBytesIf(ctx context.Context, key string, data []byte, sums Sums, metadata map[string]string, pre Precondition) error
}

// conditionalFolder is a putter that can make its write conditional: the
// folder store (a link that fails when the object is there, the ETag
// checked just before the rename).
type conditionalFolder interface {
	PutIf(ctx context.Context, key string, r io.Reader, metadata map[string]string, pre Precondition) error
}

// conditioner is a Driver whose bucket writer takes a Precondition in its
// options: Azure (access conditions), GCS (object conditions).
type conditioner interface {
	Condition(opts *blob.WriterOptions, pre Precondition)
}

// PutBytesIf is PutBytes under pre (S3, Azure, GCS, a folder store); a
// write refused for it matches ErrPrecondition.
func (t Target) PutBytesIf(ctx context.Context, key string, data []byte, sums Sums, pre Precondition) error {
	if p, ok := t.drv.(conditionalPutter); ok && pre != (Precondition{}) {
		if err := p.PutBytesIf(ctx, t.prefix+key, data, sums, t.metadata(sums), pre); err != nil {
			if errors.Is(err, ErrPrecondition) {
				return fmt.Errorf("upload %q: %w", key, ErrPrecondition)
			}
			return storeError(t.drv, fmt.Errorf("upload %q: %w", key, err))
		}
		return nil
	}
	if p, ok := t.drv.(conditionalFolder); ok && pre != (Precondition{}) {
		if err := p.PutIf(ctx, t.prefix+key, bytes.NewReader(data), t.metadata(sums), pre); err != nil {
			if errors.Is(err, ErrPrecondition) {
				return fmt.Errorf("upload %q: %w", key, ErrPrecondition)
			}
			return Redact(fmt.Errorf("upload %q: %w", key, err))
		}
		return nil
	}
	if c, ok := t.drv.(conditioner); ok && pre != (Precondition{}) {
		opts := &blob.WriterOptions{ContentType: "application/octet-stream", ContentMD5: sums.MD5, Metadata: t.metadata(sums)}
		t.drv.Verify(opts, sums)
		c.Condition(opts, pre)
		err := upload(ctx, t.drv, t.Bucket, key, bytes.NewReader(data), opts)
		if code := gcerrors.Code(err); code == gcerrors.FailedPrecondition || code == gcerrors.AlreadyExists {
			return fmt.Errorf("upload %q: %w", key, ErrPrecondition)
		}
		return err
	}
	if _, ok := t.drv.(bytesPutter); !ok {
		return t.Upload(ctx, key, bytes.NewReader(data), sums, 0, 0)
	}
	return t.PutBytes(ctx, key, data, sums)
}
