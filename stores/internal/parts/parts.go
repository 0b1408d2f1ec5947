package parts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"maps"
	"slices"
	"strings"
	stdsync "sync"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/mlsidecar/collector/stores"
)

// Checksum is the part Checksum format: base64 of the big-endian CRC32 (IEEE).
func Checksum(data []byte) string {
	return CRC32Base64(crc32.ChecksumIEEE(data))
}

// CRC32Base64 is S3's form of a CRC32: base64 of its 4 big-endian bytes.
func CRC32Base64(crc uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc)
	return base64.StdEncoding.EncodeToString(b[:])
}

// IsID tells whether id could be one NewID made: hex digits.
func IsID(id string) bool { return id != "" && strings.Trim(id, "0123456789abcdef") == "" }

// NewID returns a random upload name: 32 hex digits.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// Tracker applies completed parts to the stores.Progress and saves it, one save at
// a time, each with the full current state.
type Tracker struct {
	mu      stdsync.Mutex
	p       *stores.Progress
	journal stores.Journal
}

// NewTracker returns a Tracker that updates p and saves it to journal (nil: saves nothing).
func NewTracker(p *stores.Progress, journal stores.Journal) *Tracker {
	return &Tracker{p: p, journal: journal}
}

// Start sets the upload's ID and the parts the store holds, and saves.
func (t *Tracker) Start(ctx context.Context, id string, done map[int32]stores.Part) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.ID = id
	t.p.Parts = make([]stores.Part, 0, len(done))
	for _, pt := range done {
		t.p.Parts = append(t.p.Parts, pt)
	}
	slices.SortFunc(t.p.Parts, func(a, b stores.Part) int { return int(a.Number - b.Number) })
	return t.saveLocked(ctx)
}

// Add records a completed part and saves.
func (t *Tracker) Add(ctx context.Context, pt stores.Part) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, found := slices.BinarySearchFunc(t.p.Parts, pt.Number, func(a stores.Part, n int32) int { return int(a.Number - n) })
	if found {
		t.p.Parts[i] = pt
	} else {
		t.p.Parts = slices.Insert(t.p.Parts, i, pt)
	}
	return t.saveLocked(ctx)
}

func (t *Tracker) saveLocked(ctx context.Context) error {
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

// Parts returns the completed parts in order.
func (t *Tracker) Parts() []stores.Part {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.p.Parts)
}

// SendFunc stores part n, whose bytes are data with the given Checksum, and
// returns the completed part.
type SendFunc func(ctx context.Context, n int32, data []byte, sum string) (stores.Part, error)

// Sums are the checksums of a whole file, taken as its parts are read.
type Sums struct {
	SHA256 []byte // the content hash: the manifest's and the metadata's
	CRC32  uint32 // IEEE: S3's full-object Checksum
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

// SendParts reads the whole file from r, part after part, and hashes it as
// it goes; the parts of todo it sends as well, with at most concurrency in
// flight, each in its own PartSize buffer, recording each completed part
// with t. The parts not in todo (the store holds them) are read only for the
// hash. One sequential read serves both: there is no pass over the file
// before the upload, and the hash is of the very bytes sent.
func SendParts(ctx context.Context, r io.ReaderAt, p *stores.Progress, todo []int32, concurrency int, t *Tracker, send SendFunc) (Sums, error) {
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
		for n := int32(1); int64(n) <= max(p.NumParts(), 1); n++ {
			if err := ctx.Err(); err != nil {
				return err // select would pick a ready worker half the time
			}
			off, size := p.PartRange(n)
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
				pt, err := send(ctx, j.n, j.data, Checksum(j.data))
				if err != nil {
					return fmt.Errorf("upload part %d of %q: %w", j.n, p.Key, err)
				}
				free <- j.data[:cap(j.data)]
				if err := t.Add(ctx, pt); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Sums{}, err
	}
	// Stopped means stopped, even if every part made it: the caller commits
	// nothing after it cancelled, and a later Upload finishes the job.
	if err := parent.Err(); err != nil {
		return Sums{}, err
	}
	return Sums{SHA256: h.sha.Sum(nil), CRC32: h.crc}, nil
}

// WithHash returns a copy of metadata with the SHA-256 (hex) under
// stores.HashMetadataKey.
func WithHash(metadata map[string]string, sha256 []byte) map[string]string {
	md := make(map[string]string, len(metadata)+1)
	maps.Copy(md, metadata)
	md[stores.HashMetadataKey] = hex.EncodeToString(sha256)
	return md
}

// HashFile reads the whole file of p from r only to hash it, and checks
// with r's Verify, if it has one, that the file did not change meanwhile.
func HashFile(ctx context.Context, r io.ReaderAt, p *stores.Progress) (Sums, error) {
	Sums, err := SendParts(ctx, r, p, nil, 0, nil, nil)
	if err != nil {
		return Sums, err
	}
	return Sums, Verify(r, p.Key)
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

// Missing returns the part numbers of p that done lacks, in order.
func Missing(p *stores.Progress, done map[int32]stores.Part) []int32 {
	var todo []int32
	for n := int32(1); int64(n) <= p.NumParts(); n++ {
		if _, ok := done[n]; !ok {
			todo = append(todo, n)
		}
	}
	return todo
}

// Verify calls r's Verify, if it has one.
func Verify(r io.ReaderAt, key string) error {
	if v, ok := r.(stores.Verifier); ok {
		if err := v.Verify(); err != nil {
			return fmt.Errorf("upload %q: %w", key, err)
		}
	}
	return nil
}

// AlreadyThere tells whether b holds p's object, whole, with the size of the
// file and its SHA-256 in the metadata: an upload committed before a crash
// that lost its record. It hashes the file only when the object could be it.
func AlreadyThere(ctx context.Context, b *blob.Bucket, r io.ReaderAt, p *stores.Progress) (sum []byte, there bool, err error) {
	if b == nil {
		return nil, false, nil
	}
	attrs, err := b.Attributes(ctx, p.Key)
	if err != nil || attrs.Size != p.Size || attrs.Metadata[stores.HashMetadataKey] == "" {
		return nil, false, nil
	}
	sums, err := HashFile(ctx, r, p)
	if err != nil {
		return nil, false, err
	}
	return sums.SHA256, attrs.Metadata[stores.HashMetadataKey] == hex.EncodeToString(sums.SHA256), nil
}
