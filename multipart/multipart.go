package multipart

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"maps"
	"path/filepath"
	"slices"
	stdsync "sync"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/mlsidecar/collector/manifest"
)

// Progress is one resumable upload in flight, as it is checkpointed. It is
// JSON-serialisable; the caller persists it (see Journal).
type Progress struct {
	// Key is the object key, relative to the bucket given to New.
	Key string `json:"key"`
	// Size, ModTime (Unix nanoseconds) and Inode identify the file being
	// uploaded, so the caller can tell whether a saved Progress still
	// belongs to the file on disk. Upload uses only Size.
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime"`
	Inode   uint64 `json:"inode,omitempty"`
	// PartSize is the size of every part but the last.
	PartSize int64 `json:"partSize"`
	// ID names the upload in the store: the S3 upload id, the Azure block-id
	// prefix, or the host path's partial-file suffix. Empty before the upload
	// started.
	ID string `json:"id"`
	// Parts are the completed parts, in any order.
	Parts []Part `json:"parts,omitempty"`
}

// Part is one completed part of an upload.
type Part struct {
	Number int32 `json:"n"` // 1-based
	Size   int64 `json:"size"`
	// ETag is the store's tag for the part (S3).
	ETag string `json:"etag,omitempty"`
	// Checksum is the base64 of the big-endian CRC32 (IEEE) of the part's
	// bytes: what S3 verified, and what the host path checks on resume.
	Checksum string `json:"crc32,omitempty"`
}

// Journal persists progress. The caller implements it.
type Journal interface {
	// SaveProgress records p durably: it must be on disk when it returns. The
	// calls of one Upload are serialised, each with the full current
	// Progress, which the journal may keep (it is a copy).
	SaveProgress(ctx context.Context, p Progress) error
}

// JournalFunc is a function that is a Journal.
type JournalFunc func(ctx context.Context, p Progress) error

// SaveProgress calls f.
func (f JournalFunc) SaveProgress(ctx context.Context, p Progress) error { return f(ctx, p) }

// Uploader uploads one large file in parts that survive a restart.
type Uploader interface {
	// Upload sends the bytes of r (exactly p.Size bytes) to p.Key and
	// returns their SHA-256, taken in the same read: r is read once, in
	// order, and not before. If p.ID is set, it continues that upload: parts
	// the store already holds (checked against the store, not only against
	// p.Parts) are read again for the hash but not sent; an upload the store
	// no longer has starts over under a new ID, unless the object is already
	// there, whole, with this file's checksum (an upload completed just
	// before a crash), which ends it at once.
	//
	// It calls journal.SaveProgress after starting the upload (ID known) and
	// after each completed part (a nil journal saves nothing); a journal
	// error stops the upload. It updates *p as it goes, so p must not be read
	// until Upload returns. metadata goes on the final object; where the
	// store takes metadata at the commit (Azure), the SHA-256 is added under
	// manifest.HashMetadataKey. S3 takes metadata when the upload starts,
	// before the hash is known: there the object carries S3's full-object
	// CRC32, which the server checks against the parts at the commit and the
	// SDK against the bytes of every download; only a client built with
	// checksum=when_required (a server without S3's flexible checksums)
	// hashes the file before the upload, for the metadata. At most
	// concurrency parts are in flight, each read into a buffer of PartSize
	// bytes (memory = concurrency × PartSize). If r implements Verifier,
	// Verify is called after the last part is sent and before the object is
	// committed.
	//
	// On success the object exists, whole, and nothing of the upload is left
	// behind. On failure the upload stays in the store, to be continued with
	// the Progress last saved or dropped with Abort.
	Upload(ctx context.Context, r io.ReaderAt, p *Progress, metadata map[string]string, concurrency int, journal Journal) (sha256 []byte, err error)
	// Abort drops an upload in flight (its parts), e.g. when the file changed
	// since; an upload that no longer exists is not an error. Azure has no
	// way to drop staged blocks: there Abort does nothing and they expire.
	Abort(ctx context.Context, p Progress) error
}

// Verifier is implemented by a reader that can tell whether its source
// changed while it was read. Upload calls Verify before it commits the
// object; an error leaves the object as it was and is returned.
type Verifier interface {
	Verify() error
}

// Target locates the bucket's objects for the store's SDK, which needs what
// *blob.Bucket hides.
type Target struct {
	// Bucket is the real bucket (S3) or container (Azure) name.
	Bucket string
	// Prefix is the key prefix the *blob.Bucket given to New adds to keys
	// (blob.PrefixedBucket): the connection's prefix and the run's, e.g.
	// "team/artifacts/run/outputs/"; for a folder store, relative to Dir.
	Prefix string
	// Dir is the store's folder for host_path and volume_claim stores
	// (fileblob), where the bucket's keys are files; empty otherwise.
	Dir string
}

// New returns the resumable uploader for b, or ok=false when the store kind
// has none; then the caller uses an ordinary upload. A Target with Dir set
// gives the host path uploader; otherwise the kind is detected with b.As:
// *s3.Client (s3blob, which needs t.Bucket) or *container.Client
// (azureblob). GCS and others have none.
func New(b *blob.Bucket, t Target) (u Uploader, ok bool) {
	if t.Dir != "" {
		dir, err := filepath.Abs(t.Dir)
		if err != nil {
			return nil, false
		}
		return &fileUploader{dir: dir, prefix: t.Prefix}, true
	}
	if b == nil {
		return nil, false
	}
	var sc *s3.Client
	if b.As(&sc) && sc != nil {
		if t.Bucket == "" {
			return nil, false
		}
		return &s3Uploader{
			client:    sc,
			bucket:    t.Bucket,
			prefix:    t.Prefix,
			checksums: sc.Options().RequestChecksumCalculation != aws.RequestChecksumCalculationWhenRequired,
		}, true
	}
	var cc *container.Client
	if b.As(&cc) && cc != nil {
		return &azureUploader{client: cc, prefix: t.Prefix, b: b}, true
	}
	return nil, false
}

// check reports a Progress that cannot be uploaded.
func (p *Progress) check() error {
	switch {
	case p.Key == "":
		return errors.New("multipart: progress has no key")
	case p.Size < 0:
		return fmt.Errorf("multipart: %q: negative size %d", p.Key, p.Size)
	case p.PartSize <= 0:
		return fmt.Errorf("multipart: %q: part size %d is not positive", p.Key, p.PartSize)
	}
	return nil
}

// numParts is the number of parts of the file: 0 for an empty one.
func (p *Progress) numParts() int64 {
	return (p.Size + p.PartSize - 1) / p.PartSize
}

// partRange returns the offset and size of part n (1-based).
func (p *Progress) partRange(n int32) (off, size int64) {
	off = int64(n-1) * p.PartSize
	return off, min(p.PartSize, p.Size-off)
}

// recorded returns p.Parts by number, keeping only the ones that fit the file.
func (p *Progress) recorded() map[int32]Part {
	parts := make(map[int32]Part, len(p.Parts))
	n := p.numParts()
	for _, pt := range p.Parts {
		if pt.Number < 1 || int64(pt.Number) > n {
			continue
		}
		if _, size := p.partRange(pt.Number); pt.Size != size {
			continue
		}
		parts[pt.Number] = pt
	}
	return parts
}

// checksum is the part checksum format: base64 of the big-endian CRC32 (IEEE).
func checksum(data []byte) string {
	return crc32Base64(crc32.ChecksumIEEE(data))
}

// crc32Base64 is S3's form of a CRC32: base64 of its 4 big-endian bytes.
func crc32Base64(crc uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc)
	return base64.StdEncoding.EncodeToString(b[:])
}

// newID returns a random upload name: 32 hex digits.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// tracker applies completed parts to the Progress and saves it, one save at
// a time, each with the full current state.
type tracker struct {
	mu      stdsync.Mutex
	p       *Progress
	journal Journal
}

// start sets the upload's ID and the parts the store holds, and saves.
func (t *tracker) start(ctx context.Context, id string, done map[int32]Part) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.ID = id
	t.p.Parts = make([]Part, 0, len(done))
	for _, pt := range done {
		t.p.Parts = append(t.p.Parts, pt)
	}
	slices.SortFunc(t.p.Parts, func(a, b Part) int { return int(a.Number - b.Number) })
	return t.saveLocked(ctx)
}

// add records a completed part and saves.
func (t *tracker) add(ctx context.Context, pt Part) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, found := slices.BinarySearchFunc(t.p.Parts, pt.Number, func(a Part, n int32) int { return int(a.Number - n) })
	if found {
		t.p.Parts[i] = pt
	} else {
		t.p.Parts = slices.Insert(t.p.Parts, i, pt)
	}
	return t.saveLocked(ctx)
}

func (t *tracker) saveLocked(ctx context.Context) error {
	if t.journal == nil {
		return nil
	}
	snap := *t.p
	snap.Parts = slices.Clone(t.p.Parts)
	if err := t.journal.SaveProgress(ctx, snap); err != nil {
		return fmt.Errorf("save upload progress of %q: %w", t.p.Key, err)
	}
	return nil
}

// parts returns the completed parts in order.
func (t *tracker) parts() []Part {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.p.Parts)
}

// sendFunc stores part n, whose bytes are data with the given checksum, and
// returns the completed part.
type sendFunc func(ctx context.Context, n int32, data []byte, sum string) (Part, error)

// sums are the checksums of a whole file, taken as its parts are read.
type sums struct {
	sha256 []byte // the content hash: the manifest's and the metadata's
	crc32  uint32 // IEEE: S3's full-object checksum
}

// fileHash hashes a file's bytes, fed in order.
type fileHash struct {
	sha hash.Hash
	crc uint32
}

func (h *fileHash) Write(b []byte) (int, error) {
	h.sha.Write(b)
	h.crc = crc32.Update(h.crc, crc32.IEEETable, b)
	return len(b), nil
}

// readBuffers are the buffers that read the parts the store already holds,
// only to hash them.
var readBuffers = stdsync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// sendParts reads the whole file from r, part after part, and hashes it as
// it goes; the parts of todo it sends as well, with at most concurrency in
// flight, each in its own PartSize buffer, recording each completed part
// with t. The parts not in todo (the store holds them) are read only for the
// hash. One sequential read serves both: there is no pass over the file
// before the upload, and the hash is of the very bytes sent.
func sendParts(ctx context.Context, r io.ReaderAt, p *Progress, todo []int32, concurrency int, t *tracker, send sendFunc) (sums, error) {
	h := &fileHash{sha: sha256.New()}
	parent := ctx
	g, ctx := errgroup.WithContext(ctx)
	sending := make(map[int32]bool, len(todo))
	for _, n := range todo {
		sending[n] = true
	}
	workers := min(max(concurrency, 1), len(todo))
	type job struct {
		n    int32
		data []byte
	}
	jobs := make(chan job)
	free := make(chan []byte, workers)
	for range workers {
		free <- nil // allocated when first needed
	}
	g.Go(func() error {
		defer close(jobs)
		for n := int32(1); int64(n) <= max(p.numParts(), 1); n++ {
			if err := ctx.Err(); err != nil {
				return err // select would pick a ready worker half the time
			}
			off, size := p.partRange(n)
			if !sending[n] {
				if err := hashRange(r, off, size, h); err != nil {
					return fmt.Errorf("read part %d of %q at %d: %w", n, p.Key, off, err)
				}
				continue
			}
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				return ctx.Err()
			}
			if buf == nil {
				buf = make([]byte, min(p.PartSize, p.Size))
			}
			data := buf[:size]
			if k, err := r.ReadAt(data, off); k < len(data) {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("read part %d of %q at %d: %w", n, p.Key, off, err)
			}
			h.Write(data)
			select {
			case jobs <- job{n, data}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			for j := range jobs {
				if err := ctx.Err(); err != nil {
					return err
				}
				pt, err := send(ctx, j.n, j.data, checksum(j.data))
				if err != nil {
					return fmt.Errorf("upload part %d of %q: %w", j.n, p.Key, err)
				}
				free <- j.data[:cap(j.data)]
				if err := t.add(ctx, pt); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return sums{}, err
	}
	// Stopped means stopped, even if every part made it: the caller commits
	// nothing after it cancelled, and a later Upload finishes the job.
	if err := parent.Err(); err != nil {
		return sums{}, err
	}
	return sums{sha256: h.sha.Sum(nil), crc32: h.crc}, nil
}

// withHash returns a copy of metadata with the SHA-256 (hex) under
// manifest.HashMetadataKey.
func withHash(metadata map[string]string, sha256 []byte) map[string]string {
	md := make(map[string]string, len(metadata)+1)
	maps.Copy(md, metadata)
	md[manifest.HashMetadataKey] = hex.EncodeToString(sha256)
	return md
}

// hashFile reads the whole file of p from r only to hash it, and checks
// with r's Verify, if it has one, that the file did not change meanwhile.
func hashFile(ctx context.Context, r io.ReaderAt, p *Progress) (sums, error) {
	sums, err := sendParts(ctx, r, p, nil, 0, nil, nil)
	if err != nil {
		return sums, err
	}
	return sums, verify(r, p.Key)
}

// hashRange hashes size bytes of r at off into h.
func hashRange(r io.ReaderAt, off, size int64, h io.Writer) error {
	buf := readBuffers.Get().(*[]byte)
	defer readBuffers.Put(buf)
	n, err := io.CopyBuffer(h, io.NewSectionReader(r, off, size), *buf)
	if err == nil && n < size {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// missing returns the part numbers of p that done lacks, in order.
func missing(p *Progress, done map[int32]Part) []int32 {
	var todo []int32
	for n := int32(1); int64(n) <= p.numParts(); n++ {
		if _, ok := done[n]; !ok {
			todo = append(todo, n)
		}
	}
	return todo
}

// verify calls r's Verify, if it has one.
func verify(r io.ReaderAt, key string) error {
	if v, ok := r.(Verifier); ok {
		if err := v.Verify(); err != nil {
			return fmt.Errorf("upload %q: %w", key, err)
		}
	}
	return nil
}

// alreadyThere tells whether b holds p's object, whole, with the size of the
// file and its SHA-256 in the metadata: an upload committed before a crash
// that lost its record. It hashes the file only when the object could be it.
func alreadyThere(ctx context.Context, b *blob.Bucket, r io.ReaderAt, p *Progress) (sum []byte, there bool, err error) {
	if b == nil {
		return nil, false, nil
	}
	attrs, err := b.Attributes(ctx, p.Key)
	if err != nil || attrs.Size != p.Size || attrs.Metadata[manifest.HashMetadataKey] == "" {
		return nil, false, nil
	}
	sums, err := hashFile(ctx, r, p)
	if err != nil {
		return nil, false, err
	}
	return sums.sha256, attrs.Metadata[manifest.HashMetadataKey] == hex.EncodeToString(sums.sha256), nil
}
