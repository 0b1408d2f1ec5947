package resume

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// withSmallRanges makes every object of 256 KiB or more come in ranges of
// 64 KiB, 4 at a time, for the test.
func withSmallRanges(t *testing.T) {
	saved := restoreTuning
	restoreTuning.rangeCutoff, restoreTuning.rangeSize, restoreTuning.rangeStreams = 256<<10, 64<<10, 4
	t.Cleanup(func() { restoreTuning = saved })
}

// s3ThroughProxy returns a bucket on the S3 test server, the same bucket
// reached through a counting proxy, and the proxy's counts.
func s3ThroughProxy(t *testing.T) (direct, proxied *blob.Bucket, traffic *storetest.Traffic) {
	t.Helper()
	f := storetest.S3(t)
	proxy, traffic := storetest.CountingProxy(t, os.Getenv("COLLECTOR_TEST_S3_ENDPOINT"))
	bucket := strings.SplitN(f.Conn.Schema.Bucket, "/", 4)[2] // s3://BUCKET/team/artifacts
	conn, err := stores.Resolve("s3://" + bucket + "/team/artifacts?endpoint=" + proxy)
	if err != nil {
		t.Fatal(err)
	}
	s, err := stores.Open(context.Background(), conn, stores.Options{Getenv: func(name string) string {
		switch name {
		case "AWS_ACCESS_KEY_ID":
			return os.Getenv("COLLECTOR_TEST_S3_ACCESS_KEY")
		case "AWS_SECRET_ACCESS_KEY":
			return os.Getenv("COLLECTOR_TEST_S3_SECRET_KEY")
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return f.Open(t), s.Bucket(), traffic
}

// TestRestoreRanged: a large object comes back in parallel ranges, byte for
// byte, with its hash checked.
func TestRestoreRanged(t *testing.T) {
	withSmallRanges(t)
	data := make([]byte, 1<<20+12345) // 17 ranges, the last one short
	_, _ = rand.Read(data)
	files := map[string]string{"ckpt/model.pt": string(data), "small.txt": "small"}

	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			b := kind.open(t)
			known := put(t, b, files)
			dir := t.TempDir()
			m, stats, err := Restore(context.Background(), b, dir, RestoreOptions{Known: known})
			if err != nil {
				t.Fatal(err)
			}
			assertTree(t, dir, files)
			if got, want := m["ckpt/model.pt"].SHA256, digest(data); got != want {
				t.Errorf("manifest sha256 = %s, want %s", got, want)
			}
			if got, want := stats.Bytes, int64(len(data)+len("small")); got != want {
				t.Errorf("stats.Bytes = %d, want %d", got, want)
			}
		})
	}
	t.Run("s3", func(t *testing.T) {
		root, proxied, traffic := s3ThroughProxy(t)
		put(t, blob.PrefixedBucket(root, "run/"), files)
		b := blob.PrefixedBucket(proxied, "run/")
		defer b.Close()
		dir := t.TempDir()
		traffic.Reset()
		// No state: the hashes come from the objects' metadata.
		if _, _, err := Restore(context.Background(), b, dir, RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		assertTree(t, dir, files)
		// A listing, a HEAD and a GET per range of the large object, a HEAD
		// and a GET for the small one.
		if got, want := traffic.Requests("GET"), 1+17+1; got != want {
			t.Errorf("%d GET requests, want %d (one per range)", got, want)
		}
	})
}

// TestRestoreRangedDamaged: a large object whose bytes do not match its hash
// fails the restore, naming the key, and leaves nothing under its name (nor a
// temp file).
func TestRestoreRangedDamaged(t *testing.T) {
	withSmallRanges(t)
	data := make([]byte, 1<<20+12345)
	_, _ = rand.Read(data)
	damaged := bytes.Clone(data)
	damaged[len(damaged)/2] ^= 1
	check := func(t *testing.T, b *blob.Bucket, known Manifest) {
		t.Helper()
		dir := t.TempDir()
		_, _, err := Restore(context.Background(), b, dir, RestoreOptions{Known: known})
		if err == nil {
			t.Fatal("restore of a damaged object: no error")
		}
		if !strings.Contains(err.Error(), `"outputs/ckpt/model.pt"`) || !strings.Contains(err.Error(), "sha256") {
			t.Errorf("error %q does not name the key and the hash", err)
		}
		assertTree(t, dir, map[string]string{})
	}

	t.Run("metadata", func(t *testing.T) { // the object's own sha256 says it is damaged
		b := openS3(t)
		putKey(t, b, "outputs/ckpt/model.pt", damaged, sha(data))
		check(t, b, nil)
	})
	t.Run("state", func(t *testing.T) { // the run's state and the object's metadata agree, the bytes do not
		b := openS3(t)
		putKey(t, b, "outputs/ckpt/model.pt", damaged, sha(data))
		check(t, b, Manifest{"ckpt/model.pt": {Size: int64(len(data)), SHA256: digest(data)}})
	})
}

// openS3 returns a fresh bucket on the S3 test server.
func openS3(t *testing.T) *blob.Bucket {
	b := blob.PrefixedBucket(storetest.S3(t).Open(t), "run/")
	t.Cleanup(func() { b.Close() })
	return b
}
