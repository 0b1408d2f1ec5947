package resume

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// withSmallRanges makes every object of 256 KiB or more come in ranges of
// 64 KiB, 4 at a time, synced in the background every 256 KiB, for the test.
func withSmallRanges(t *testing.T) {
	saved := restoreTuning
	restoreTuning.rangeCutoff, restoreTuning.rangeSize, restoreTuning.rangeStreams = 256<<10, 64<<10, 4
	restoreTuning.flushBytes = 256 << 10
	t.Cleanup(func() { restoreTuning = saved })
}

// s3Servers are the two S3 test servers the ranged restore runs against.
var s3Servers = []struct {
	name    string
	fixture func(testing.TB) storetest.Fixture
}{{"s3", storetest.S3}, {"s3_minio", storetest.MinIO}}

// s3ThroughProxy returns a bucket on the fixture's S3 server, the same
// bucket reached through a counting proxy, and the proxy's counts.
func s3ThroughProxy(t *testing.T, f storetest.Fixture) (direct, proxied *blob.Bucket, traffic *storetest.Traffic) {
	t.Helper()
	proxy, traffic := storetest.CountingProxy(t, f.Endpoint)
	return f.Open(t), openS3Via(t, f, proxy, ""), traffic
}

// openS3Via opens the fixture's bucket through endpoint, with more URL
// parameters (e.g. "&checksum=when_required").
func openS3Via(t *testing.T, f storetest.Fixture, endpoint, params string) *blob.Bucket {
	t.Helper()
	bucket := strings.SplitN(f.Conn.Schema.Bucket, "/", 4)[2] // s3://BUCKET/team/artifacts
	conn, err := stores.Resolve("s3://" + bucket + "/team/artifacts?endpoint=" + endpoint + params)
	if err != nil {
		t.Fatal(err)
	}
	server := "S3"
	if f.Server == "minio" {
		server = "MINIO"
	}
	s, err := stores.Open(context.Background(), conn, stores.Options{Getenv: func(name string) string {
		switch name {
		case "AWS_ACCESS_KEY_ID":
			return os.Getenv("COLLECTOR_TEST_" + server + "_ACCESS_KEY")
		case "AWS_SECRET_ACCESS_KEY":
			return os.Getenv("COLLECTOR_TEST_" + server + "_SECRET_KEY")
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Bucket()
}

// flipProxy starts a reverse proxy to the S3 server at endpoint that flips
// one bit of the byte at offset at of an object in the answer to the ranged
// GET that carries it, and returns the proxy's base URL.
func flipProxy(t *testing.T, endpoint string, at int64) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		var first, last, size int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &size); err == nil && first <= at && at <= last {
			resp.Body = &flipReader{r: resp.Body, at: at - first}
		}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// flipReader flips the lowest bit of the byte at offset at of what it reads.
type flipReader struct {
	r    io.ReadCloser
	at   int64
	read int64
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if i := f.at - f.read; i >= 0 && i < int64(n) {
		p[i] ^= 1
	}
	f.read += int64(n)
	return n, err
}

func (f *flipReader) Close() error { return f.r.Close() }

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
	for _, srv := range s3Servers {
		t.Run(srv.name, func(t *testing.T) {
			root, proxied, traffic := s3ThroughProxy(t, srv.fixture(t))
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
	check := func(t *testing.T, b *blob.Bucket, known Manifest, sum string) {
		t.Helper()
		dir := t.TempDir()
		_, _, err := Restore(context.Background(), b, dir, RestoreOptions{Known: known})
		if err == nil {
			t.Fatal("restore of a damaged object: no error")
		}
		if !strings.Contains(err.Error(), `"outputs/ckpt/model.pt"`) || !strings.Contains(err.Error(), sum) {
			t.Errorf("error %q does not name the key and the %s", err, sum)
		}
		assertTree(t, dir, map[string]string{})
	}

	for _, srv := range s3Servers {
		t.Run(srv.name, func(t *testing.T) {
			// An object the server keeps no CRC32 for (uploaded without one, it
			// computes a CRC64NVME): the bytes are hashed.
			noCRC32 := func(t *testing.T) *blob.Bucket {
				f := srv.fixture(t)
				b := blob.PrefixedBucket(openS3Via(t, f, f.Endpoint, "&checksum=when_required"), "run/")
				t.Cleanup(func() { b.Close() })
				return b
			}
			t.Run("metadata", func(t *testing.T) { // the object's own sha256 says it is damaged
				b := noCRC32(t)
				putKey(t, b, "outputs/ckpt/model.pt", damaged, sha(data))
				check(t, b, nil, "sha256")
			})
			t.Run("state", func(t *testing.T) { // the run's state and the object's metadata agree, the bytes do not
				b := noCRC32(t)
				putKey(t, b, "outputs/ckpt/model.pt", damaged, sha(data))
				check(t, b, Manifest{"ckpt/model.pt": {Size: int64(len(data)), SHA256: digest(data)}}, "sha256")
			})
			// An object with the full-object CRC32 the collector's uploads carry:
			// a bit flipped on the way fails the check against it.
			for _, c := range []struct {
				name  string
				known Manifest
			}{{"in transit", Manifest{"ckpt/model.pt": {Size: int64(len(data)), SHA256: digest(data)}}}, {"in transit, no state", nil}} {
				t.Run(c.name, func(t *testing.T) {
					f := srv.fixture(t)
					putKey(t, blob.PrefixedBucket(f.Open(t), "run/"), "outputs/ckpt/model.pt", data, sha(data))
					b := blob.PrefixedBucket(openS3Via(t, f, flipProxy(t, f.Endpoint, int64(len(data)/2)), ""), "run/")
					defer b.Close()
					check(t, b, c.known, "crc32")
				})
			}
		})
	}
}

// openS3 returns a fresh bucket on the S3 test server.
func openS3(t *testing.T) *blob.Bucket {
	b := blob.PrefixedBucket(storetest.S3(t).Open(t), "run/")
	t.Cleanup(func() { b.Close() })
	return b
}
