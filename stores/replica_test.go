package stores_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"testing"

	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/stores"
)

// TestReplicaNameOnEveryObject: every object written through a replica's
// target (one request, the bucket's writer, the resumable upload) carries
// the replica's name, read back through Target.Attributes on every kind (a
// folder store keeps it in an extended attribute); Copy keeps the bytes and
// the name where the source is replaced afterwards; a target without a
// replica writes no name.
func TestReplicaNameOnEveryObject(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		target := e.store.Target(runPrefix).ForReplica("worker-1")
		small := []byte("a small file")
		sha, md := sha256.Sum256(small), md5.Sum(small)
		if err := target.PutBytes(ctx, "small.txt", small, stores.Sums{SHA256: sha[:], MD5: md[:]}); err != nil {
			t.Fatal(err)
		}
		if err := target.Upload(ctx, "written.txt", bytes.NewReader(small), stores.Sums{SHA256: sha[:]}, 0, 0); err != nil {
			t.Fatal(err)
		}
		large := bigFile()[:2*partSize+1]
		p := stores.Progress{Key: "large.bin", Size: int64(len(large)), PartSize: partSize}
		if _, err := target.Resumable.Upload(ctx, bytes.NewReader(large), &p, nil, concurrency, nil); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"small.txt", "written.txt", "large.bin"} {
			attrs, err := target.Attributes(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if got := attrs.Metadata[stores.ReplicaMetadataKey]; got != "worker-1" {
				t.Errorf("%s: replica metadata = %q, want worker-1 (metadata %v)", key, got, attrs.Metadata)
			}
		}
		// A copy aside, then the source replaced by another replica's.
		if err := target.Copy(ctx, "small.txt.replica-worker-1", "small.txt"); err != nil {
			t.Fatal(err)
		}
		other := []byte("the chief's version")
		sha2, md2 := sha256.Sum256(other), md5.Sum(other)
		if err := e.store.Target(runPrefix).ForReplica("chief-0").PutBytes(ctx, "small.txt", other, stores.Sums{SHA256: sha2[:], MD5: md2[:]}); err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]struct {
			replica string
			data    []byte
		}{"small.txt": {"chief-0", other}, "small.txt.replica-worker-1": {"worker-1", small}} {
			attrs, err := target.Attributes(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if got := attrs.Metadata[stores.ReplicaMetadataKey]; got != want.replica {
				t.Errorf("%s: replica metadata = %q, want %s", key, got, want.replica)
			}
			got, err := e.bucket.ReadAll(ctx, key)
			if err != nil || !bytes.Equal(got, want.data) {
				t.Errorf("%s: %q, %v; want %q", key, got, err, want.data)
			}
		}
		if err := e.store.Target(runPrefix).PutBytes(ctx, "single.txt", small, stores.Sums{SHA256: sha[:], MD5: md[:]}); err != nil {
			t.Fatal(err)
		}
		if attrs, err := e.store.Target(runPrefix).Attributes(ctx, "single.txt"); err != nil || attrs.Metadata[stores.ReplicaMetadataKey] != "" {
			t.Errorf("single-replica object: %v, %v; want no replica metadata", attrs, err)
		}
		if _, err := target.Attributes(ctx, "missing.txt"); gcerrors.Code(err) != gcerrors.NotFound {
			t.Errorf("Attributes of a missing object: %v, want NotFound", err)
		}
	})
}

// TestPutBytesIf: on S3 (versitygw, MinIO), GCS and Azure a small write under a
// Precondition fails with ErrPrecondition when the object is there for
// IfAbsent, or is another than the ETag says for IfETag, and goes through
// when it holds; on a folder store too (a link, an ETag checked before the
// rename).
func TestPutBytesIf(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		target := e.store.Target(runPrefix).ForReplica("worker-1")
		put := func(data string, pre stores.Precondition) error {
			sha, md := sha256.Sum256([]byte(data)), md5.Sum([]byte(data))
			return target.PutBytesIf(ctx, "cond.txt", []byte(data), stores.Sums{SHA256: sha[:], MD5: md[:]}, pre)
		}
		if err := put("first", stores.Precondition{IfAbsent: true}); err != nil {
			t.Fatal(err)
		}
		attrs, err := target.Attributes(ctx, "cond.txt")
		if err != nil {
			t.Fatal(err)
		}
		if err := put("second", target.Matching(attrs)); err != nil {
			t.Fatalf("write under the current version: %v", err)
		}
		for name, pre := range map[string]stores.Precondition{"absent": {IfAbsent: true}, "stale version": target.Matching(attrs)} {
			if err := put("third", pre); !errors.Is(err, stores.ErrPrecondition) {
				t.Errorf("%s: %v; want ErrPrecondition", name, err)
			}
		}
		if got, _ := e.bucket.ReadAll(ctx, "cond.txt"); string(got) != "second" {
			t.Errorf("cond.txt = %q after refused writes, want second", got)
		}
	})
}
