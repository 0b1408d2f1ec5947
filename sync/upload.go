package sync

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"strings"
	stdsync "sync"

	"golang.org/x/sync/semaphore"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// errChanged says a file changed while it was being read; the upload was
// abandoned before the store committed it and the file stays pending.
var errChanged = errors.New("file changed while it was read")

// uploader puts one file into the bucket, inside the memory budget.
type uploader struct {
	target          stores.Target
	limits          stores.Limits // the store's, on one object
	partSize        int64         // the smallest part: --part-size
	partConcurrency int
	budget          int64
	mem             *semaphore.Weighted // the budget's

	resumable stores.Uploader // nil: large files go through the bucket's writer
	journal   Checkpointer
	// shared is the rule for paths other replicas write too (shared.go);
	// nil but for a replica in a shared folder.
	shared   *sharing
	mu       stdsync.Mutex
	inFlight map[string]stores.Progress // resumable uploads by key, as last saved
}

func newUploader(t stores.Target, cfg Config, opts Options) *uploader {
	budget := opts.Budget
	if budget == nil {
		budget = NewBudget(cfg.MemoryBudget)
	}
	u := &uploader{
		target:          t,
		limits:          t.Limits(),
		partSize:        int64(cfg.PartSize),
		partConcurrency: cfg.PartConcurrency,
		budget:          budget.size,
		mem:             budget.sem,
		inFlight:        map[string]stores.Progress{},
		shared:          newSharing(t, opts),
	}
	if t.Resumable != nil && opts.Checkpointer != nil {
		u.resumable, u.journal = t.Resumable, opts.Checkpointer
		for k, p := range opts.Uploads {
			u.inFlight[k] = p
		}
	}
	return u
}

// Budget is the memory that upload buffers may hold at once, shared by the
// Syncers given it in their Options.
type Budget struct {
	size int64
	sem  *semaphore.Weighted
}

// NewBudget returns a budget of size bytes.
func NewBudget(size ByteSize) *Budget {
	return &Budget{size: int64(size), sem: semaphore.NewWeighted(int64(size))}
}

// upload copies the file at abs to key if it is still the file the scan saw
// (want), and returns the manifest entry for what the store now holds.
//
// storedMD5, when set, is the MD5 of an object of the same size the store
// holds under key already: a small file with that MD5 is not sent again.
func (u *uploader) upload(ctx context.Context, abs, key string, want fileState, storedMD5 []byte) (resume.Entry, error) {
	return u.uploadIf(ctx, abs, key, want, storedMD5, stores.Precondition{})
}

// uploadIf is upload with a small file's write under pre, where the store
// checks it (a replica's write of a shared path: shared.go); a large file's
// is unconditional.
func (u *uploader) uploadIf(ctx context.Context, abs, key string, want fileState, storedMD5 []byte, pre stores.Precondition) (resume.Entry, error) {
	if err := u.limits.CheckSize(want.Size); err != nil {
		return resume.Entry{}, fmt.Errorf("upload %q: %w", key, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return resume.Entry{}, errChanged
		}
		return resume.Entry{}, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || stateOf(fi) != want {
		return resume.Entry{}, errChanged
	}
	if want.Size <= u.partSize {
		return u.uploadSmall(ctx, f, key, want, storedMD5, pre)
	}
	return u.uploadLarge(ctx, f, abs, key, want)
}

// uploadSmall reads the whole file once, checks it did not change while read,
// and uploads that snapshot in one request with its MD5 for the store to verify.
func (u *uploader) uploadSmall(ctx context.Context, f *os.File, key string, want fileState, storedMD5 []byte, pre stores.Precondition) (resume.Entry, error) {
	weight := max(want.Size, 1)
	if err := u.mem.Acquire(ctx, weight); err != nil {
		return resume.Entry{}, err
	}
	defer u.mem.Release(weight)
	buf := make([]byte, want.Size)
	if _, err := io.ReadFull(f, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return resume.Entry{}, errChanged // shrank while read
		}
		return resume.Entry{}, err
	}
	if fi, err := f.Stat(); err != nil || stateOf(fi) != want {
		return resume.Entry{}, errChanged
	}
	sum := sha256.Sum256(buf)
	md := md5.Sum(buf)
	if storedMD5 != nil && bytes.Equal(storedMD5, md[:]) {
		return entryFor(want, sum[:]), nil // uploaded before a kill, never recorded
	}
	if err := u.target.PutBytesIf(ctx, key, buf, stores.Sums{SHA256: sum[:], MD5: md[:]}, pre); err != nil {
		return resume.Entry{}, err
	}
	return entryFor(want, sum[:]), nil
}

// uploadLarge streams the file in parts, within the memory budget. A
// resumable upload hashes the parts as it reads and sends them. The ordinary
// upload (GCS) hashes the file first, for the object's metadata and CRC32C,
// which GCS takes when the upload starts; the stream is hashed again as it
// goes, and if the bytes or the file's identity differ at the end, the
// reader fails before the store commits the object.
func (u *uploader) uploadLarge(ctx context.Context, f *os.File, abs, key string, want fileState) (resume.Entry, error) {
	if u.resumable != nil {
		return u.uploadResumable(ctx, f, abs, key, want)
	}
	partSize := u.limits.PartSize(want.Size, u.partSize)
	concurrency, weight := u.share(partSize)

	sha := sha256.New()
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	buf := hashBuffers.Get().(*[]byte)
	_, err := io.CopyBuffer(io.MultiWriter(sha, crc), struct{ io.Reader }{io.NewSectionReader(f, 0, want.Size)}, *buf)
	hashBuffers.Put(buf)
	if err != nil {
		return resume.Entry{}, err
	}
	sum := sha.Sum(nil)
	if err := u.mem.Acquire(ctx, weight); err != nil {
		return resume.Entry{}, err
	}
	defer u.mem.Release(weight)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &verifyingReader{
		r:      io.NewSectionReader(f, 0, want.Size),
		h:      sha256.New(),
		want:   sum,
		cancel: cancel,
		unchanged: func() bool {
			fi, err := f.Stat()
			if err != nil || stateOf(fi) != want {
				return false
			}
			li, err := os.Stat(abs) // still the same file under that name?
			return err == nil && stateOf(li) == want
		},
	}
	if err := u.target.Upload(ctx, key, r, stores.Sums{SHA256: sum, CRC32C: crc.Sum32()}, int(partSize), concurrency); err != nil {
		if r.changed {
			return resume.Entry{}, errChanged
		}
		return resume.Entry{}, err
	}
	return entryFor(want, sum), nil
}

// share returns how many parts of partSize bytes one file may have in flight
// and the share of the memory budget it holds for them. Parts grow with the
// file where the store limits their number (S3: 10,000), so a file of more
// than that many budgets (640 GiB on S3 with the defaults) has parts above
// the whole budget: it is sent one part at a time and holds the whole
// budget, so that nothing else uploads meanwhile. The memory in use is then
// that one part, above the budget; it never exceeds max(budget, one part).
func (u *uploader) share(partSize int64) (concurrency int, weight int64) {
	concurrency = int(min(int64(u.partConcurrency), max(u.budget/partSize, 1)))
	return concurrency, min(partSize*int64(concurrency), u.budget)
}

// hashBuffers are the read buffers of the hash before a large upload: 1 MiB
// reads take a 2 GiB file in 2,048 system calls rather than 65,536.
var hashBuffers = stdsync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

func entryFor(st fileState, sum []byte) resume.Entry {
	return resume.Entry{Size: st.Size, ModTime: st.ModTime, Inode: st.Inode, SHA256: resume.Digest(sum)}
}

// verifyingReader hashes what it passes on; at the end it fails instead of
// returning io.EOF if the bytes or the file changed, and cancels the upload's
// context so that no driver commits the object.
type verifyingReader struct {
	r         io.Reader
	h         hash.Hash
	want      []byte
	unchanged func() bool
	cancel    context.CancelFunc
	changed   bool
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF && (!bytes.Equal(v.h.Sum(nil), v.want) || !v.unchanged()) {
		v.changed = true
		v.cancel()
		return n, errChanged
	}
	return n, err
}

// uploadResumable uploads a large file in parts whose progress is saved after
// each one, continuing the upload a killed collector left behind when it is
// still for the same file. A new upload gets the part size this file needs
// in this store (Limits.PartSize); one left behind keeps its own, which may
// differ (the part size or the file's was changed since), as long as the
// store still takes the file in parts of that size.
func (u *uploader) uploadResumable(ctx context.Context, f *os.File, abs, key string, want fileState) (resume.Entry, error) {
	u.mu.Lock()
	p, ok := u.inFlight[key]
	u.mu.Unlock()
	if ok && (p.Size != want.Size || p.ModTime != want.ModTime || p.Inode != want.Inode || !u.limits.Fits(want.Size, p.PartSize)) {
		// The file changed since, or the store does not take parts of
		// that size for it: its old parts are of no use.
		_ = u.resumable.Abort(ctx, p)
		ok = false
	}
	if !ok {
		p = stores.Progress{Key: key, Size: want.Size, ModTime: want.ModTime, Inode: want.Inode, PartSize: u.limits.PartSize(want.Size, u.partSize)}
	}
	concurrency, weight := u.share(p.PartSize)
	if err := u.mem.Acquire(ctx, weight); err != nil {
		return resume.Entry{}, err
	}
	defer u.mem.Release(weight)
	journal := stores.JournalFunc(func(ctx context.Context, p stores.Progress) error {
		u.mu.Lock()
		u.inFlight[key] = p
		u.mu.Unlock()
		return u.journal.SaveProgress(ctx, p)
	})
	r := &unchangedFile{f: f, abs: abs, want: want}
	sum, err := u.resumable.Upload(ctx, r, &p, nil, concurrency, journal)
	if err != nil {
		if errors.Is(err, errChanged) {
			_ = u.resumable.Abort(context.WithoutCancel(ctx), p)
			u.forget(ctx, key)
		}
		return resume.Entry{}, fmt.Errorf("upload %q: %w", key, err)
	}
	// The progress stays saved until the caller has recorded the file in
	// the manifest and calls forget: a kill in between must find one or
	// the other, or the whole file would be uploaded again.
	return entryFor(want, sum), nil
}

// forget drops a resumable upload's saved progress: after its file is in
// the manifest, or when the upload was abandoned. A key with none is fine.
func (u *uploader) forget(ctx context.Context, key string) {
	u.mu.Lock()
	_, ok := u.inFlight[key]
	delete(u.inFlight, key)
	u.mu.Unlock()
	if ok {
		_ = u.journal.DropProgress(context.WithoutCancel(ctx), key)
	}
}

// unchangedFile reads a file by offset for a resumable upload, and tells it
// before the commit whether the file is still the one the scan saw.
type unchangedFile struct {
	f    *os.File
	abs  string
	want fileState
}

func (u *unchangedFile) ReadAt(p []byte, off int64) (int, error) { return u.f.ReadAt(p, off) }

// Verify fails when the file changed since the scan saw it.
func (u *unchangedFile) Verify() error {
	fi, err := u.f.Stat()
	if err != nil || stateOf(fi) != u.want {
		return errChanged
	}
	if li, err := os.Stat(u.abs); err != nil || stateOf(li) != u.want {
		return errChanged
	}
	return nil
}

// abandonMissing aborts the resumable uploads whose files are gone.
func (u *uploader) abandonMissing(ctx context.Context, files map[string]fileState) {
	if u.resumable == nil {
		return
	}
	u.mu.Lock()
	var gone []stores.Progress
	for key, p := range u.inFlight {
		rel := key
		if u.shared != nil {
			rel = strings.TrimSuffix(key, resume.ReplicaCopyKey("", u.shared.replica)) // a copy's upload is its file's
		}
		if _, ok := files[rel]; !ok {
			gone = append(gone, p)
		}
	}
	u.mu.Unlock()
	for _, p := range gone {
		_ = u.resumable.Abort(ctx, p)
		u.forget(ctx, p.Key)
	}
}
