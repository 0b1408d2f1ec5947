package stores

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"regexp"
)

// HashMetadataKey is the object metadata key under which the SHA-256 (hex) of
// an uploaded file is kept, so a later pass or a restore can verify it
// without downloading.
const HashMetadataKey = "sha256"

// Progress is one resumable upload in flight, as it is checkpointed. It is
// JSON-serialisable; the caller persists it (see Journal).
type Progress struct {
	// Key is the object key, relative to the prefix the uploader was made for.
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
	// HashMetadataKey. S3 takes metadata when the upload starts,
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

// Check reports a Progress that cannot be uploaded.
func (p *Progress) Check() error {
	switch {
	case p.Key == "":
		return errors.New("resumable upload: progress has no key")
	case p.Size < 0:
		return fmt.Errorf("resumable upload %q: negative size %d", p.Key, p.Size)
	case p.PartSize <= 0:
		return fmt.Errorf("resumable upload %q: part size %d is not positive", p.Key, p.PartSize)
	}
	return nil
}

// NumParts is the number of parts of the file: 0 for an empty one.
func (p *Progress) NumParts() int64 {
	return (p.Size + p.PartSize - 1) / p.PartSize
}

// PartRange returns the offset and size of part n (1-based).
func (p *Progress) PartRange(n int32) (off, size int64) {
	off = int64(n-1) * p.PartSize
	return off, min(p.PartSize, p.Size-off)
}

// Recorded returns p.Parts by number, keeping only the ones that fit the file.
func (p *Progress) Recorded() map[int32]Part {
	parts := make(map[int32]Part, len(p.Parts))
	n := p.NumParts()
	for _, pt := range p.Parts {
		if pt.Number < 1 || int64(pt.Number) > n {
			continue
		}
		if _, size := p.PartRange(pt.Number); pt.Size != size {
			continue
		}
		parts[pt.Number] = pt
	}
	return parts
}

// PartialMarker is in the name of every partial file of a folder store's
// resumable upload: .<base>.collector-part-<id>.
const PartialMarker = ".collector-part-"

var partialName = regexp.MustCompile(`^\..*\.collector-part-[0-9a-f]+$`)

// IsPartial tells whether a file name (or the last element of a key) is the
// partial file of a folder store's upload in flight, which the bucket lists
// like any object until the upload renames it into place.
func IsPartial(name string) bool {
	return partialName.MatchString(path.Base(filepath.ToSlash(name)))
}
