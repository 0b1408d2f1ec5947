package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/stores"
	// The backends of every kind.
	_ "github.com/mlsidecar/collector/stores/azure"
	_ "github.com/mlsidecar/collector/stores/file"
	_ "github.com/mlsidecar/collector/stores/gcs"
	_ "github.com/mlsidecar/collector/stores/s3"
)

// Fixture is one store with a fresh bucket.
type Fixture struct {
	Kind string
	// Server names the server behind an S3 fixture, "versitygw" or
	// "minio", and Endpoint is its URL.
	Server, Endpoint string
	// Connections is the path of a connections file whose artifactsStore is this store.
	Connections string
	// Env is the environment the collector needs for it (KEY=VALUE).
	Env []string
	// Conn is the artifacts store connection, as the collector resolves it.
	Conn stores.Connection
}

// Getenv returns a lookup over the fixture's Env, then the process's.
func (f Fixture) Getenv(name string) string {
	for _, kv := range f.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return os.Getenv(name)
}

// Open opens the store root the collector writes to.
func (f Fixture) Open(t testing.TB) *blob.Bucket {
	return f.OpenStore(t).Bucket()
}

// OpenStore opens the store the collector writes to.
func (f Fixture) OpenStore(t testing.TB) *stores.Store {
	t.Helper()
	s, err := stores.Open(context.Background(), f.Conn, stores.Options{Getenv: f.Getenv})
	if err != nil {
		t.Fatalf("open %s: %v", f.Kind, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// AzuriteKey is Azurite's well-known development account key.
const AzuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// All returns a fixture for every kind, in the order of stores.Kinds.
func All(t *testing.T) []Fixture {
	return []Fixture{HostPath(t), VolumeClaim(t), S3(t), GCS(t), Azure(t)}
}

// Each runs fn as a subtest for every kind that is available, named after
// the kind; S3 runs twice, on versitygw ("s3") and on MinIO ("s3_minio").
func Each(t *testing.T, fn func(t *testing.T, f Fixture)) {
	for _, k := range eachFixture() {
		t.Run(k.name, func(t *testing.T) { fn(t, k.fixture(t)) })
	}
}

type namedFixture struct {
	name    string
	fixture func(testing.TB) Fixture
}

func eachFixture() []namedFixture {
	var out []namedFixture
	for _, kind := range stores.Kinds {
		switch kind {
		case stores.KindHostPath:
			out = append(out, namedFixture{kind, HostPath})
		case stores.KindVolumeClaim:
			out = append(out, namedFixture{kind, VolumeClaim})
		case stores.KindS3:
			out = append(out, namedFixture{kind, S3}, namedFixture{kind + "_minio", MinIO})
		case stores.KindGCS:
			out = append(out, namedFixture{kind, GCS})
		case stores.KindWASB:
			out = append(out, namedFixture{kind, Azure})
		}
	}
	return out
}

// server returns the test server variable, or skips (fails under
// COLLECTOR_TEST_SERVERS=1) when it is not set.
func server(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("COLLECTOR_TEST_SERVERS") == "1" {
			t.Fatalf("%s is not set although COLLECTOR_TEST_SERVERS=1", name)
		}
		t.Skipf("%s not set: run the tests with scripts/test.sh (make test) to start the store servers", name)
	}
	return v
}

// UniqueName returns a bucket name that is new for this test.
func UniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", prefix, time.Now().UnixNano()%1e9, hex.EncodeToString(b))
}

func writeCatalog(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "connections.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t testing.TB, path string, getenv func(string) string) stores.Connection {
	t.Helper()
	cat, err := stores.LoadCatalog(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := stores.Resolve("", cat)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// HostPath is a host_path store in a temp folder.
func HostPath(t testing.TB) Fixture {
	dir := filepath.Join(t.TempDir(), "artifacts")
	path := writeCatalog(t, fmt.Sprintf(`artifactsStore:
  name: local-artifacts
  kind: host_path
  schema:
    mountPath: %q
    hostPath: /data/artifacts
`, dir))
	return Fixture{Kind: stores.KindHostPath, Connections: path, Conn: mustLoad(t, path, os.Getenv)}
}

// VolumeClaim is a volume_claim store mounted at another temp folder.
func VolumeClaim(t testing.TB) Fixture {
	dir := filepath.Join(t.TempDir(), "mnt", "pvc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := writeCatalog(t, fmt.Sprintf(`connections:
  - name: unrelated
    kind: gcs
    schema: {bucket: "gs://other/"}
artifactsStore:
  name: outputs-pvc
  kind: volume_claim
  schema:
    mountPath: %q
    volumeClaim: outputs-2-pvc
`, dir))
	return Fixture{Kind: stores.KindVolumeClaim, Connections: path, Conn: mustLoad(t, path, os.Getenv)}
}

// S3 is a fresh bucket on the S3-compatible test server (versitygw),
// reached through a connection whose secret is a folder of key files.
func S3(t testing.TB) Fixture {
	endpoint := server(t, "COLLECTOR_TEST_S3_ENDPOINT")
	key, secret := server(t, "COLLECTOR_TEST_S3_ACCESS_KEY"), server(t, "COLLECTOR_TEST_S3_SECRET_KEY")
	return s3Fixture(t, "versitygw", endpoint, key, secret)
}

// MinIO is S3 on the second S3 server, MinIO in its default mode: a client
// that works on only one of the two has a bug. It skips when
// COLLECTOR_TEST_MINIO_ENDPOINT is not set (servers started before MinIO
// joined them); scripts/test.sh always sets it.
func MinIO(t testing.TB) Fixture {
	t.Helper()
	endpoint := os.Getenv("COLLECTOR_TEST_MINIO_ENDPOINT")
	if endpoint == "" {
		t.Skip("COLLECTOR_TEST_MINIO_ENDPOINT not set: run the tests with scripts/test.sh (make test), or start the servers again (scripts/servers.sh stop; scripts/servers.sh start)")
	}
	key, secret := server(t, "COLLECTOR_TEST_MINIO_ACCESS_KEY"), server(t, "COLLECTOR_TEST_MINIO_SECRET_KEY")
	return s3Fixture(t, "minio", endpoint, key, secret)
}

func s3Fixture(t testing.TB, name, endpoint, key, secret string) Fixture {
	t.Helper()
	bucket := UniqueName("s3")
	client := S3Client(endpoint, key, secret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create S3 bucket %s: %v", bucket, err)
	}
	secretDir := filepath.Join(t.TempDir(), "s3-secret")
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_ENDPOINT_URL": endpoint} {
		if err := os.MkdirAll(secretDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(secretDir, k), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := writeCatalog(t, fmt.Sprintf(`artifactsStore:
  name: s3-artifacts
  kind: s3
  schema: {bucket: "s3://%s/team/artifacts"}
  secret:
    name: s3-secret
    mountPath: %q
`, bucket, secretDir))
	return Fixture{Kind: stores.KindS3, Server: name, Endpoint: endpoint, Connections: path, Conn: mustLoad(t, path, os.Getenv)}
}

// S3Client returns a client for the test server.
func S3Client(endpoint, key, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  awscreds.NewStaticCredentialsProvider(key, secret, ""),
	})
}

// GCS is a fresh bucket on fake-gcs-server. The collector's environment
// (Env) reaches it through a front that answers resumable-upload status
// queries and cancellations as GCS does (see gcsFront).
func GCS(t testing.TB) Fixture {
	direct := server(t, "COLLECTOR_TEST_GCS_HOST")
	host := gcsFrontFor(direct).host
	// For this test process's own storage clients, which read and write
	// whole objects: straight to the server, without the front's hop (which
	// doubles the time of reading a large object). Process-wide (not
	// t.Setenv) so that parallel tests can use it, and only GCS clients
	// read it.
	os.Setenv("STORAGE_EMULATOR_HOST", direct)
	bucket := UniqueName("gcs")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := storage.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Bucket(bucket).Create(ctx, "test-project", nil); err != nil {
		t.Fatalf("create GCS bucket %s: %v", bucket, err)
	}
	path := writeCatalog(t, fmt.Sprintf(`{"artifactsStore": {"name": "gcs-artifacts", "kind": "gcs",
  "schema": {"bucket": "gs://%s/prefix"}, "secret": {"name": "gcs-secret"}}}`, bucket))
	return Fixture{Kind: stores.KindGCS, Connections: path, Env: []string{"STORAGE_EMULATOR_HOST=" + host},
		Conn: mustLoad(t, path, os.Getenv)}
}

// Azure is a fresh container on Azurite, reached with a connection string in
// the environment (Polyaxon's AZURE_CONNECTION_STRING).
func Azure(t testing.TB) Fixture {
	endpoint := server(t, "COLLECTOR_TEST_AZURE_ENDPOINT")
	account, key := server(t, "COLLECTOR_TEST_AZURE_ACCOUNT"), server(t, "COLLECTOR_TEST_AZURE_KEY")
	connString := fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;", account, key, endpoint)
	name := UniqueName("az")
	client, err := container.NewClientFromConnectionString(connString, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.Create(ctx, nil); err != nil {
		t.Fatalf("create Azure container %s: %v", name, err)
	}
	path := writeCatalog(t, fmt.Sprintf(`artifactsStore:
  name: azure-artifacts
  kind: wasb
  schema: {bucket: "wasbs://%s@%s.blob.core.windows.net/runs"}
  secret: {name: az-secret}
`, name, account))
	env := []string{"AZURE_CONNECTION_STRING=" + connString}
	f := Fixture{Kind: stores.KindWASB, Connections: path, Env: env}
	f.Conn = mustLoad(t, path, f.Getenv)
	return f
}

// Objects reads every object under prefix into a map keyed by the rest of its key.
func Objects(t testing.TB, b *blob.Bucket, prefix string) map[string][]byte {
	t.Helper()
	// A listing of a folder store that is being written to can fail on a
	// file gone between reading the folder and looking at the file (a temp
	// file renamed into place): list again.
	for attempt := 1; ; attempt++ {
		got, err := objects(b, prefix)
		if err == nil {
			return got
		}
		if gcerrors.Code(err) != gcerrors.NotFound || attempt == 5 {
			t.Fatal(err)
		}
	}
}

func objects(b *blob.Bucket, prefix string) (map[string][]byte, error) {
	ctx := context.Background()
	got := map[string][]byte{}
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", prefix, err)
		}
		if obj.IsDir {
			continue
		}
		data, err := b.ReadAll(ctx, obj.Key)
		if gcerrors.Code(err) == gcerrors.NotFound {
			// Gone since the listing, as a store that is being written to
			// allows: a host path's temp file renamed into place, say.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %q: %w", obj.Key, err)
		}
		got[strings.TrimPrefix(obj.Key, prefix)] = data
	}
}

// Folder reads every regular file under dir into a map keyed by slash path.
func Folder(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Diff describes how two file sets differ, or returns "" when they are equal.
func Diff(want, got map[string][]byte) string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("missing %q (%d bytes)", k, len(w)))
		case !bytes.Equal(w, g):
			out = append(out, fmt.Sprintf("differs %q: want %d bytes, got %d", k, len(w), len(g)))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("unexpected %q", k))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
