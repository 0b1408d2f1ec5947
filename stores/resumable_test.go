package stores_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/internal/escape"
	"github.com/mlsidecar/collector/stores/storetest"
)

const (
	mib         = 1 << 20
	partSize    = 5 * mib // S3's smallest part but the last
	fileSize    = 40 * mib
	concurrency = 4
	runPrefix   = "run/outputs/"
)

// kind is one store kind the suite runs against.
type kind struct {
	name    string
	fixture func(testing.TB) storetest.Fixture
	// target is the Target the caller builds for the fixture's store.
	target func(t *testing.T, f storetest.Fixture) location
	// checksum is what the store keeps of a whole object's content:
	// sha256Metadata, fullObjectCRC32, or nothing (file stores, whose
	// objects are the files).
	checksum string
	// reads is how many times a fresh upload reads the file.
	reads int
	// inFlight counts what the store holds of uploads of key in flight:
	// multipart uploads, partial files or uncommitted blocks.
	inFlight func(t *testing.T, e *env, key string) int
	// abortDrops tells whether Abort removes the parts from the store.
	abortDrops bool
	// stale leaves an upload of key that an earlier attempt lost track of;
	// nil where there is nothing to clean.
	stale func(t *testing.T, e *env, key string)
}

const (
	sha256Metadata  = "metadata sha256"
	fullObjectCRC32 = "S3 full-object CRC32"
)

var kinds = []kind{
	{
		name:       stores.KindHostPath,
		fixture:    storetest.HostPath,
		target:     fileTarget,
		inFlight:   partialFiles,
		abortDrops: true,
		stale:      stalePartial,
		reads:      1,
	},
	{
		name:       stores.KindVolumeClaim,
		fixture:    storetest.VolumeClaim,
		target:     fileTarget,
		inFlight:   partialFiles,
		abortDrops: true,
		stale:      stalePartial,
		reads:      1,
	},
	s3Kind(stores.KindS3, storetest.S3, fullObjectCRC32, 1),
	s3Kind(stores.KindS3+"_minio", storetest.MinIO, fullObjectCRC32, 1),
	// For S3-compatible servers without S3's flexible checksums: the file
	// is hashed before the upload, for the metadata.
	s3Kind(stores.KindS3+"_when_required", func(t testing.TB) storetest.Fixture {
		f := storetest.S3(t)
		f.Conn.Schema.Bucket += "?checksum=when_required"
		return f
	}, sha256Metadata, 2),
	{
		name:    stores.KindGCS,
		fixture: storetest.GCS,
		target: func(t *testing.T, f storetest.Fixture) location {
			u := mustParse(t, f.Conn.Schema.Bucket) // gs://bucket/prefix
			return location{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/") + "/" + runPrefix}
		},
		checksum: sha256Metadata,
		// A new upload hashes the file first: GCS takes the metadata when
		// the session starts.
		reads:      2,
		inFlight:   gcsSessions,
		abortDrops: true,
		// No stale hook: GCS cannot list upload sessions, and one that an
		// earlier attempt lost holds no object; it expires after a week.
	},
	{
		name:    stores.KindWASB,
		fixture: storetest.Azure,
		target: func(t *testing.T, f storetest.Fixture) location {
			u := mustParse(t, f.Conn.Schema.Bucket) // wasbs://container@account.../runs
			return location{Bucket: u.User.Username(), Prefix: strings.Trim(u.Path, "/") + "/" + runPrefix}
		},
		checksum: sha256Metadata,
		reads:    1,
		inFlight: azureBlocks,
	},
}

func s3Kind(name string, fixture func(testing.TB) storetest.Fixture, checksum string, reads int) kind {
	return kind{
		name:    name,
		fixture: fixture,
		target: func(t *testing.T, f storetest.Fixture) location {
			u := mustParse(t, f.Conn.Schema.Bucket) // s3://bucket/team/artifacts
			return location{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/") + "/" + runPrefix}
		},
		checksum:   checksum,
		reads:      reads,
		inFlight:   s3Uploads,
		abortDrops: true,
		stale: func(t *testing.T, e *env, key string) {
			_, err := e.s3Client(t).CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{
				Bucket: aws.String(e.target.Bucket), Key: aws.String(escape.S3Key(e.target.Prefix + key)),
			})
			if err != nil {
				t.Fatal(err)
			}
		},
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// location is where a run's outputs are, as the store's SDK names them, for
// checks below *blob.Bucket.
type location struct {
	Bucket string // the S3 bucket or Azure container
	Prefix string // the key prefix in it, ending in "/"
	Dir    string // a folder store's folder
}

func fileTarget(t *testing.T, f storetest.Fixture) location {
	return location{Dir: f.Conn.Schema.MountPath, Prefix: runPrefix}
}

// env is one fresh store, opened as the caller opens it.
type env struct {
	kind    kind
	fixture storetest.Fixture
	store   *stores.Store
	root    *blob.Bucket // the connection's root
	bucket  *blob.Bucket // the run's outputs
	target  location
}

// each runs fn against every store kind that is available.
func each(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			f := k.fixture(t)
			store := f.OpenStore(t)
			root := store.Bucket()
			fn(t, &env{kind: k, fixture: f, store: store, root: root, bucket: blob.PrefixedBucket(root, runPrefix), target: k.target(t, f)})
		})
	}
}

// uploader returns a new Uploader, as a restarted collector builds one.
func (e *env) uploader(t *testing.T) *checkedUploader {
	t.Helper()
	u := e.store.Target(runPrefix).Resumable
	if u == nil {
		t.Fatalf("%s has no resumable uploader", e.kind.name)
	}
	return &checkedUploader{t: t, u: u}
}

// checkedUploader checks that every Upload that succeeds returns the SHA-256
// of the file's bytes.
type checkedUploader struct {
	t *testing.T
	u stores.Uploader
}

func (c *checkedUploader) Upload(ctx context.Context, r io.ReaderAt, p *stores.Progress, metadata map[string]string, concurrency int, j stores.Journal) error {
	c.t.Helper()
	size := p.Size
	sum, err := c.u.Upload(ctx, r, p, metadata, concurrency, j)
	if err != nil {
		return err
	}
	if cr, ok := r.(*countingReader); ok {
		r = cr.r // not counted: the test counts the uploader's reads
	}
	want := sha256.New()
	if _, err := io.Copy(want, io.NewSectionReader(r, 0, size)); err != nil {
		c.t.Fatal(err)
	}
	if !bytes.Equal(sum, want.Sum(nil)) {
		c.t.Errorf("Upload returned sha256 %x, want %x", sum, want.Sum(nil))
	}
	return nil
}

func (c *checkedUploader) Abort(ctx context.Context, p stores.Progress) error {
	return c.u.Abort(ctx, p)
}

func (e *env) s3Client(t *testing.T) *s3.Client {
	var c *s3.Client
	if !e.root.As(&c) {
		t.Fatal("not an S3 bucket")
	}
	return c
}

func s3Uploads(t *testing.T, e *env, key string) int {
	t.Helper()
	full := escape.S3Key(e.target.Prefix + key) // as the uploader names it
	out, err := e.s3Client(t).ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(e.target.Bucket), Prefix: aws.String(full),
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, up := range out.Uploads {
		if aws.ToString(up.Key) == full {
			n++
		}
	}
	return n
}

func partialFiles(t *testing.T, e *env, key string) int {
	t.Helper()
	final := filepath.Join(e.target.Dir, filepath.FromSlash(e.target.Prefix+key))
	entries, err := os.ReadDir(filepath.Dir(final))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, de := range entries {
		if stores.IsPartial(de.Name()) && strings.HasPrefix(de.Name(), "."+filepath.Base(final)+".") {
			n++
		}
	}
	return n
}

func stalePartial(t *testing.T, e *env, key string) {
	t.Helper()
	final := filepath.Join(e.target.Dir, filepath.FromSlash(e.target.Prefix+key))
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+".collector-part-0123abcd")
	if err := os.WriteFile(stale, []byte("left by a crash"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func azureBlocks(t *testing.T, e *env, key string) int {
	t.Helper()
	var c *container.Client
	if !e.root.As(&c) {
		t.Fatal("not an Azure bucket")
	}
	resp, err := c.NewBlockBlobClient(e.target.Prefix+key).GetBlockList(context.Background(), blockblob.BlockListTypeUncommitted, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.UncommittedBlocks)
}

// gcsSessions counts the open upload sessions of key, as the GCS test
// server's front saw them start and end (GCS has no call that lists them).
func gcsSessions(t *testing.T, e *env, key string) int {
	t.Helper()
	return storetest.GCSUploadsInFlight(e.target.Bucket, escape.GCSKey(e.target.Prefix+key))
}

// journal keeps every Progress saved, after a round trip through JSON as the
// caller's state file would, and cancels the upload once a save holds
// cancelAt parts.
type journal struct {
	mu       stdsync.Mutex
	saves    []stores.Progress
	cancelAt int
	cancel   context.CancelFunc
}

func (j *journal) SaveProgress(ctx context.Context, p stores.Progress) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	var saved stores.Progress
	if err := json.Unmarshal(data, &saved); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.saves = append(j.saves, saved)
	if j.cancel != nil && len(p.Parts) >= j.cancelAt {
		j.cancel()
	}
	return nil
}

func (j *journal) last(t *testing.T) stores.Progress {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.saves) == 0 {
		t.Fatal("no progress saved")
	}
	return j.saves[len(j.saves)-1]
}

// countingReader counts the bytes read from the file.
type countingReader struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// bigFile is the 40 MiB of random bytes the tests upload, or a slice of it.
var bigFile = stdsync.OnceValue(func() []byte {
	b := make([]byte, fileSize)
	_, _ = rand.Read(b)
	return b
})

// file is a file to upload: its bytes, SHA-256 (hex), Progress and metadata
// (none: the sync engine gives none).
type file struct {
	key      string
	data     []byte
	sha      string
	progress stores.Progress
	metadata map[string]string
}

func newFile(key string, data []byte, partSize int64) file {
	sum := sha256.Sum256(data)
	return file{
		key:      key,
		data:     data,
		sha:      hex.EncodeToString(sum[:]),
		progress: stores.Progress{Key: key, Size: int64(len(data)), ModTime: 1700000000e9, Inode: 42, PartSize: partSize},
	}
}

// checkStored checks that the store holds f whole, with its checksum (S3's
// full-object CRC32; Azure's metadata SHA-256), and nothing of its upload
// besides.
func checkStored(t *testing.T, e *env, f file) {
	t.Helper()
	ctx := context.Background()
	got, err := e.bucket.ReadAll(ctx, f.key)
	if err != nil {
		t.Fatalf("read %q: %v", f.key, err)
	}
	if !bytes.Equal(got, f.data) {
		t.Fatalf("%q: store holds %d bytes that differ from the file's %d", f.key, len(got), len(f.data))
	}
	if e.kind.checksum != "" {
		attrs, err := e.bucket.Attributes(ctx, f.key)
		if err != nil {
			t.Fatal(err)
		}
		if e.kind.checksum == fullObjectCRC32 {
			// The server checked the whole file's CRC32 against the parts'
			// and keeps it.
			out, err := e.s3Client(t).HeadObject(ctx, &s3.HeadObjectInput{
				Bucket: aws.String(e.target.Bucket), Key: aws.String(escape.S3Key(e.target.Prefix + f.key)), ChecksumMode: types.ChecksumModeEnabled,
			})
			if err != nil {
				t.Fatal(err)
			}
			var crc [4]byte
			binary.BigEndian.PutUint32(crc[:], crc32.ChecksumIEEE(f.data))
			if got, want := aws.ToString(out.ChecksumCRC32), base64.StdEncoding.EncodeToString(crc[:]); got != want || out.ChecksumType != types.ChecksumTypeFullObject {
				t.Errorf("%q: object checksum %s CRC32 %q, want FULL_OBJECT %q", f.key, out.ChecksumType, got, want)
			}
		} else if got := attrs.Metadata[stores.HashMetadataKey]; got != f.sha {
			t.Errorf("%q: metadata sha256 = %q, want %q", f.key, got, f.sha)
		}
		if got, want := attrs.ContentType, "application/octet-stream"; got != want {
			t.Errorf("%q: content type = %q, want %q", f.key, got, want)
		}
	}
	if n := e.kind.inFlight(t, e, f.key); n != 0 {
		t.Errorf("%q: %d uploads/parts left in flight after success", f.key, n)
	}
}

func checkAbsent(t *testing.T, e *env, key string) {
	t.Helper()
	if ok, err := e.bucket.Exists(context.Background(), key); err != nil || ok {
		t.Errorf("%q exists (%v) although the upload did not complete", key, err)
	}
}

// interrupted starts an upload of f and cancels it once 3 parts are saved,
// as a SIGKILL would stop it, and returns the Progress last saved.
func interrupted(t *testing.T, e *env, f file) stores.Progress {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j := &journal{cancelAt: 3, cancel: cancel}
	p := f.progress
	err := e.uploader(t).Upload(ctx, bytes.NewReader(f.data), &p, f.metadata, concurrency, j)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted upload: got %v, want context.Canceled", err)
	}
	saved := j.last(t)
	if saved.ID == "" || len(saved.Parts) < 3 {
		t.Fatalf("saved progress has ID %q and %d parts, want an ID and at least 3 parts", saved.ID, len(saved.Parts))
	}
	if j.saves[0].ID == "" || len(j.saves[0].Parts) != 0 {
		t.Errorf("first save has ID %q and %d parts, want the ID and no parts", j.saves[0].ID, len(j.saves[0].Parts))
	}
	checkAbsent(t, e, f.key)
	if n := e.kind.inFlight(t, e, f.key); n == 0 {
		t.Errorf("nothing of the interrupted upload is in the store")
	}
	return saved
}

func TestUpload(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		f := newFile("model/weights.bin", bigFile(), partSize)
		j := &journal{}
		p := f.progress
		r := &countingReader{r: bytes.NewReader(f.data)}
		if err := e.uploader(t).Upload(context.Background(), r, &p, f.metadata, concurrency, j); err != nil {
			t.Fatal(err)
		}
		checkStored(t, e, f)
		if got, want := r.n.Load(), int64(e.kind.reads*fileSize); got != want {
			t.Errorf("read %d bytes of the file, want %d (%d times its size)", got, want, e.kind.reads)
		}
		if got, want := len(j.saves), 1+fileSize/partSize; got != want {
			t.Errorf("%d progress saves, want %d (the start and one per part)", got, want)
		}
		last := j.last(t)
		if got, want := len(last.Parts), fileSize/partSize; got != want {
			t.Errorf("last save has %d parts, want %d", got, want)
		}
		for i, pt := range last.Parts {
			if pt.Number != int32(i+1) || pt.Size != partSize || pt.Checksum == "" {
				t.Errorf("part %d recorded as %+v", i+1, pt)
			}
		}
		if p.ID != last.ID || len(p.Parts) != len(last.Parts) {
			t.Errorf("Progress after Upload (ID %q, %d parts) is not the last saved (ID %q, %d parts)", p.ID, len(p.Parts), last.ID, len(last.Parts))
		}
	})
}

func TestResume(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		f := newFile("model/weights.bin", bigFile(), partSize)
		saved := interrupted(t, e, f)

		// A restarted collector: a new Uploader and the Progress from its state file.
		r := &countingReader{r: bytes.NewReader(f.data)}
		p := saved
		j := &journal{}
		if err := e.uploader(t).Upload(context.Background(), r, &p, f.metadata, concurrency, j); err != nil {
			t.Fatal(err)
		}
		checkStored(t, e, f)
		if p.ID != saved.ID {
			t.Errorf("resume started a new upload %q instead of continuing %q", p.ID, saved.ID)
		}
		// The file is read once, for the hash; only the parts the store
		// lacks are sent (one save each after the start).
		if got, want := r.n.Load(), int64(fileSize); got != want {
			t.Errorf("resume read %d bytes of the file, want %d (once)", got, want)
		}
		limit := fileSize/partSize - len(saved.Parts)
		if sent := len(j.saves) - 1; sent > limit || sent < 1 {
			t.Errorf("resume sent %d parts; want 1 to %d (%d parts were saved)", sent, limit, len(saved.Parts))
		}
	})
}

func TestResumeAfterAbort(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		f := newFile("model/weights.bin", bigFile(), partSize)
		saved := interrupted(t, e, f)
		ctx := context.Background()
		u := e.uploader(t)
		if err := u.Abort(ctx, saved); err != nil {
			t.Fatal(err)
		}
		if err := u.Abort(ctx, saved); err != nil {
			t.Fatalf("second Abort: %v", err)
		}
		if e.kind.abortDrops {
			if n := e.kind.inFlight(t, e, f.key); n != 0 {
				t.Errorf("%d uploads/parts left after Abort", n)
			}
		}
		checkAbsent(t, e, f.key)
		if !e.kind.abortDrops {
			return // the parts are still there: a resume would continue
		}
		// The store no longer knows the upload: it starts over.
		r := &countingReader{r: bytes.NewReader(f.data)}
		p := saved
		if err := u.Upload(ctx, r, &p, f.metadata, concurrency, &journal{}); err != nil {
			t.Fatal(err)
		}
		checkStored(t, e, f)
		if got, want := r.n.Load(), int64(e.kind.reads*fileSize); got != want {
			t.Errorf("read %d bytes, want %d (%d times the file)", got, want, e.kind.reads)
		}
		if p.ID == saved.ID {
			t.Errorf("upload id %q was reused after it was aborted", p.ID)
		}
	})
}

func TestResumeUnknownUpload(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		f := newFile("model/weights.bin", bigFile()[:12*mib], partSize)
		p := f.progress
		p.ID = "0123456789abcdef0123456789abcdef"
		p.Parts = []stores.Part{{Number: 1, Size: partSize, ETag: `"x"`, Checksum: "AAAAAA=="}, {Number: 2, Size: partSize}}
		r := &countingReader{r: bytes.NewReader(f.data)}
		if err := e.uploader(t).Upload(context.Background(), r, &p, f.metadata, concurrency, &journal{}); err != nil {
			t.Fatal(err)
		}
		checkStored(t, e, f)
		if got, want := r.n.Load(), int64(e.kind.reads*len(f.data)); got != want {
			t.Errorf("read %d bytes, want %d (%d times the file)", got, want, e.kind.reads)
		}
	})
}

// An upload completed just before a crash, which lost the checkpoint that
// said so, is not sent again.
func TestResumeCompletedUpload(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		f := newFile("model/weights.bin", bigFile()[:12*mib], partSize)
		j := &journal{}
		p := f.progress
		ctx := context.Background()
		if err := e.uploader(t).Upload(ctx, bytes.NewReader(f.data), &p, f.metadata, concurrency, j); err != nil {
			t.Fatal(err)
		}
		r := &countingReader{r: bytes.NewReader(f.data)}
		again := j.last(t)
		j2 := &journal{}
		if err := e.uploader(t).Upload(ctx, r, &again, f.metadata, concurrency, j2); err != nil {
			t.Fatal(err)
		}
		checkStored(t, e, f)
		if got, want := r.n.Load(), int64(len(f.data)); got != want {
			t.Errorf("read %d bytes of a file the store already holds, want %d (once, for the hash)", got, want)
		}
		if len(j2.saves) != 0 {
			t.Errorf("%d progress saves, want none: nothing is uploaded again", len(j2.saves))
		}
	})
}

// Uploads of the key that earlier attempts lost track of are gone once the
// file is uploaded.
func TestStaleUploadsCleaned(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		if e.kind.stale == nil {
			t.Skip("nothing to clean for this kind")
		}
		f := newFile("model/weights.bin", bigFile()[:12*mib], partSize)
		e.kind.stale(t, e, f.key)
		if n := e.kind.inFlight(t, e, f.key); n == 0 {
			t.Fatal("the stale upload is not there")
		}
		p := f.progress
		if err := e.uploader(t).Upload(context.Background(), bytes.NewReader(f.data), &p, f.metadata, concurrency, nil); err != nil {
			t.Fatal(err)
		}
		checkStored(t, e, f)
	})
}

// Keys land where the *blob.Bucket reads them, through the drivers' escaping.
func TestKeys(t *testing.T) {
	keys := []string{
		"plain.bin",
		"deep/a/b/c.bin",
		"up/../dots.bin",
		"ctl\x01char.bin",
		"lit__0x41__eral.bin",
		`odd "#%?\ chars & spaces.bin`,
		"unicode/模型-ä.bin",
	}
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		u := e.uploader(t)
		want := map[string][]byte{}
		for i, key := range keys {
			f := newFile(key, bigFile()[i*1000:i*1000+1500+i], partSize)
			p := f.progress
			if err := u.Upload(ctx, bytes.NewReader(f.data), &p, f.metadata, concurrency, nil); err != nil {
				t.Fatalf("%q: %v", key, err)
			}
			checkStored(t, e, f)
			want[key] = f.data
		}
		if d := storetest.Diff(want, storetest.Objects(t, e.bucket, "")); d != "" {
			t.Errorf("store listing differs:\n%s", d)
		}
	})
}

func TestEdgeSizes(t *testing.T) {
	cases := []struct {
		name     string
		size     int
		partSize int64
	}{
		{"empty", 0, partSize},
		{"one byte", 1, partSize},
		{"exactly one part", partSize, partSize},
		{"short last part", 2*partSize + 7, partSize},
	}
	each(t, func(t *testing.T, e *env) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f := newFile("edge/"+strings.ReplaceAll(tc.name, " ", "-"), bigFile()[:tc.size], tc.partSize)
				p := f.progress
				if err := e.uploader(t).Upload(context.Background(), bytes.NewReader(f.data), &p, f.metadata, concurrency, nil); err != nil {
					t.Fatal(err)
				}
				checkStored(t, e, f)
			})
		}
	})
}

var errChanged = errors.New("file changed while it was read")

// changingReader is a file that changed while it was uploaded.
type changingReader struct{ io.ReaderAt }

func (changingReader) Verify() error { return errChanged }

func TestFailuresCommitNothing(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		f := newFile("model/weights.bin", bigFile()[:12*mib], partSize)
		t.Run("file shorter than its size", func(t *testing.T) {
			p := f.progress
			err := e.uploader(t).Upload(ctx, bytes.NewReader(f.data[:7*mib]), &p, f.metadata, concurrency, nil)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("got %v, want io.ErrUnexpectedEOF", err)
			}
			checkAbsent(t, e, f.key)
			if err := e.uploader(t).Abort(ctx, p); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("file changed", func(t *testing.T) {
			p := f.progress
			err := e.uploader(t).Upload(ctx, changingReader{bytes.NewReader(f.data)}, &p, f.metadata, concurrency, nil)
			if !errors.Is(err, errChanged) {
				t.Errorf("got %v, want %v", err, errChanged)
			}
			checkAbsent(t, e, f.key)
			if err := e.uploader(t).Abort(ctx, p); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("journal fails", func(t *testing.T) {
			p := f.progress
			err := e.uploader(t).Upload(ctx, bytes.NewReader(f.data), &p, f.metadata, concurrency, failingJournal{})
			if !errors.Is(err, errDiskFull) {
				t.Errorf("got %v, want %v", err, errDiskFull)
			}
			checkAbsent(t, e, f.key)
			if err := e.uploader(t).Abort(ctx, p); err != nil {
				t.Fatal(err)
			}
		})
		if e.kind.abortDrops {
			if n := e.kind.inFlight(t, e, f.key); n != 0 {
				t.Errorf("%d uploads/parts left after Abort", n)
			}
		}
	})
}

var errDiskFull = errors.New("no space left on device")

type failingJournal struct{}

func (failingJournal) SaveProgress(context.Context, stores.Progress) error { return errDiskFull }

// A part of the partial file that no longer has its checksum is written again.
func TestResumeRewritesDamagedPart(t *testing.T) {
	for _, k := range kinds[:2] { // host_path and volume_claim
		t.Run(k.name, func(t *testing.T) {
			fx := k.fixture(t)
			store := fx.OpenStore(t)
			root := store.Bucket()
			e := &env{kind: k, store: store, root: root, bucket: blob.PrefixedBucket(root, runPrefix), target: k.target(t, fx)}
			f := newFile("model/weights.bin", bigFile(), partSize)
			saved := interrupted(t, e, f)
			final := filepath.Join(e.target.Dir, filepath.FromSlash(runPrefix+f.key))
			partial := filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+".collector-part-"+saved.ID)
			pf, err := os.OpenFile(partial, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			off := int64(saved.Parts[0].Number-1)*partSize + 1234
			if _, err := pf.WriteAt([]byte{f.data[off] ^ 0xff}, off); err != nil {
				t.Fatal(err)
			}
			pf.Close()

			r := &countingReader{r: bytes.NewReader(f.data)}
			p := saved
			j := &journal{}
			if err := e.uploader(t).Upload(context.Background(), r, &p, f.metadata, concurrency, j); err != nil {
				t.Fatal(err)
			}
			checkStored(t, e, f)
			if got, want := r.n.Load(), int64(fileSize); got != want {
				t.Errorf("resume read %d bytes, want %d (once)", got, want)
			}
			if got, want := len(j.saves)-1, fileSize/partSize-len(saved.Parts)+1; got != want {
				t.Errorf("resume wrote %d parts, want %d (the missing parts and the damaged one)", got, want)
			}
			fi, err := os.Stat(final)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fi.Mode().Perm(), os.FileMode(0o644); got != want {
				t.Errorf("mode %v, want %v", got, want)
			}
		})
	}
}

func TestNoResumableUploader(t *testing.T) {
	c, err := stores.Resolve("mem://")
	if err != nil {
		t.Fatal(err)
	}
	f := storetest.Fixture{Conn: c}
	if u := f.OpenStore(t).Target(runPrefix).Resumable; u != nil {
		t.Errorf("mem:// has a resumable uploader: %T", u)
	}
}

func TestIsPartial(t *testing.T) {
	for name, want := range map[string]bool{
		".weights.bin.collector-part-0123abcd":          true,
		"run/outputs/.weights.bin.collector-part-9f":    true,
		"weights.bin.collector-part-0123abcd":           false,
		".weights.bin.collector-part-":                  false,
		".weights.bin.collector-part-0123abcd/child":    false,
		".weights.bin.collector-part-0123ABCD-not-ours": false,
		"weights.bin": false,
	} {
		if got := stores.IsPartial(name); got != want {
			t.Errorf("IsPartial(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestPutBytes checks the path of every small file: one request, the bytes
// and the SHA-256 metadata readable through the bucket, keys escaped as the
// bucket escapes them, and bytes that do not match their MD5 never stored.
func TestPutBytes(t *testing.T) {
	keys := []string{"plain.txt", "deep/a/b/c.txt", "up/../dots.txt", "ctl\x01char.txt", `odd "#%?\ chars & spaces.txt`, "unicode/模型-ä.txt", "empty.txt"}
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		target := e.store.Target(runPrefix)
		want := map[string][]byte{}
		for i, key := range keys {
			data := bigFile()[i*100 : i*100+4096-i]
			if key == "empty.txt" {
				data = []byte{}
			}
			sum, md := sha256.Sum256(data), md5.Sum(data)
			if err := target.PutBytes(ctx, key, data, stores.Sums{SHA256: sum[:], MD5: md[:]}); err != nil {
				t.Fatalf("%q: %v", key, err)
			}
			attrs, err := e.bucket.Attributes(ctx, key)
			if err != nil {
				t.Fatalf("%q: %v", key, err)
			}
			if e.kind.checksum != "" {
				if got := attrs.Metadata[stores.HashMetadataKey]; got != hex.EncodeToString(sum[:]) {
					t.Errorf("%q: metadata sha256 = %q, want %x", key, got, sum)
				}
			}
			want[key] = data
		}
		if d := storetest.Diff(want, storetest.Objects(t, e.bucket, "")); d != "" {
			t.Errorf("store listing differs:\n%s", d)
		}
		if e.store.Conn.Kind == stores.KindHostPath || e.store.Conn.Kind == stores.KindVolumeClaim {
			return // a folder has no transfer to check
		}
		data := []byte("bytes that do not match their MD5")
		bad := md5.Sum([]byte("other bytes"))
		if err := target.PutBytes(ctx, "bad-md5.txt", data, stores.Sums{MD5: bad[:]}); err == nil {
			t.Error("upload with a wrong MD5 succeeded")
		}
		checkAbsent(t, e, "bad-md5.txt")
	})
}

// TestMissingBucketIsARefusal: an upload into a bucket or container that is
// gone is an answer trying again will not change, for every kind that has
// buckets, so the sync engine does not retry it within a pass.
func TestMissingBucketIsARefusal(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.store.Conn
		if c.Schema.Bucket == "" {
			return // a folder store creates its folders
		}
		u := mustParse(t, c.Schema.Bucket)
		missing := storetest.UniqueName("gone")
		if u.User != nil { // wasbs://container@account...
			u.User = url.User(missing)
		} else {
			u.Host = missing
		}
		c.Schema.Bucket = u.String()
		store, err := stores.Open(context.Background(), c, stores.Options{Getenv: e.fixture.Getenv})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		// Without sums, and with the sums the sync engine gives a small
		// file (gocloud's azureblob writer took another path with an MD5,
		// and panicked there when the upload failed, losing the answer).
		data := []byte("x")
		md := md5.Sum(data)
		sha := sha256.Sum256(data)
		for _, sums := range []stores.Sums{{}, {SHA256: sha[:], MD5: md[:]}} {
			err = store.Target(runPrefix).PutBytes(context.Background(), "x.txt", data, sums)
			if !errors.Is(err, stores.ErrRefused) {
				t.Errorf("upload into a missing bucket (MD5 %t): err = %v, want a refusal (ErrRefused)", sums.MD5 != nil, err)
			}
			if strings.Contains(fmt.Sprint(err), "driver failed") {
				t.Errorf("upload into a missing bucket (MD5 %t): the error does not say what the store answered: %v", sums.MD5 != nil, err)
			}
		}
	})
}

// TestResumeKeepsPartsTheJournalMissed: a collector killed after the store
// completed parts but before it recorded them (under load, the answer can
// wait a while for the process to read it) finds them in the store at the
// restart and does not send them again.
func TestResumeKeepsPartsTheJournalMissed(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		f := newFile("model/weights.bin", bigFile(), partSize)
		if e.store.Conn.Kind == stores.KindHostPath || e.store.Conn.Kind == stores.KindVolumeClaim {
			// A folder store trusts only the parts it recorded: writing one
			// again is a local write, not a transfer.
			return
		}
		saved := interrupted(t, e, f)
		p := saved
		p.Parts = nil // completed in the store, never recorded
		j := &journal{}
		if err := e.uploader(t).Upload(context.Background(), bytes.NewReader(f.data), &p, f.metadata, concurrency, j); err != nil {
			t.Fatal(err)
		}
		checkStored(t, e, f)
		if want := fileSize/partSize - len(saved.Parts); len(j.saves)-1 > want {
			t.Errorf("resume sent %d parts; the store held %d of %d, so want at most %d", len(j.saves)-1, len(saved.Parts), fileSize/partSize, want)
		}
	})
}

// TestResumeWhileTheCompleteIsInFlight: a collector was killed while it
// waited for the answer to its CompleteMultipartUpload; the server goes on
// with it, and lists no upload meanwhile (versitygw joins the parts under
// another name). The restarted collector finds every part recorded and no
// upload: it looks for the object again for a while, and finds the file
// there, instead of sending it all again.
func TestResumeWhileTheCompleteIsInFlight(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		if !strings.HasPrefix(e.kind.name, stores.KindS3) {
			return // S3 only: the others have no upload that vanishes while it completes
		}
		f := newFile("model/weights.bin", bigFile()[:12*mib], partSize)
		// The first collector's Complete goes out 2 s after its last part.
		whole := make(chan stores.Progress, 1)
		first := stores.JournalFunc(func(_ context.Context, p stores.Progress) error {
			if int64(len(p.Parts)) == p.NumParts() {
				whole <- p
				time.Sleep(2 * time.Second) // the behaviour: the Complete lands while the restart looks for the object
			}
			return nil
		})
		firstDone := make(chan error, 1)
		go func() {
			p := f.progress
			firstDone <- e.uploader(t).Upload(context.Background(), bytes.NewReader(f.data), &p, f.metadata, concurrency, first)
		}()
		recorded := <-whole
		recorded.ID = "an-upload-the-server-no-longer-lists"
		j := &journal{}
		start := time.Now()
		if err := e.uploader(t).Upload(context.Background(), bytes.NewReader(f.data), &recorded, f.metadata, concurrency, j); err != nil {
			t.Fatal(err)
		}
		if err := <-firstDone; err != nil {
			t.Fatal(err)
		}
		checkStored(t, e, f)
		if len(j.saves) != 0 {
			t.Errorf("the restarted upload saved progress %d times: it sent the file again instead of finding it", len(j.saves))
		}
		t.Logf("found the object after %v", time.Since(start).Round(time.Millisecond))
	})
}
