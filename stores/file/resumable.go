package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/internal/escape"
	"github.com/mlsidecar/collector/stores/internal/parts"
)

// fileUploader writes a file store's objects (fileblob) in place: the parts
// go into a partial file next to the final path, which is renamed into place
// when it is whole.
type fileUploader struct {
	dir    string // the store's folder, absolute
	prefix string
}

// path returns the final path of p's object, as fileblob maps its key.
func (u *fileUploader) path(p *stores.Progress) (string, error) {
	path, err := objectPath(u.dir, u.prefix+p.Key)
	if err != nil {
		return "", fmt.Errorf("upload %q: %w", p.Key, err)
	}
	return path, nil
}

// objectPath returns the path of the object key in the store folder dir, as
// fileblob maps it.
func objectPath(dir, key string) (string, error) {
	path := filepath.Join(dir, escape.FileKey(key))
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("key escapes the store folder %s", dir)
	}
	if strings.HasSuffix(path, ".attrs") {
		return "", errors.New("fileblob reserves keys ending in .attrs")
	}
	return path, nil
}

func partialPath(final, id string) string {
	return filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+stores.PartialMarker+id)
}

// Upload implements Uploader. Metadata goes into the file's extended
// attributes (xattr.go), not beside it: the file stores are opened with
// fileblob's metadata off, so objects are plain files.
func (u *fileUploader) Upload(ctx context.Context, r io.ReaderAt, p *stores.Progress, metadata map[string]string, concurrency int, journal stores.Journal) ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	final, err := u.path(p)
	if err != nil {
		return nil, err
	}
	t := parts.NewTracker(p, journal)
	id := p.ID
	var f *os.File
	var done map[int32]stores.Part
	if id != "" && !parts.IsID(id) {
		id = "" // not one of ours: start over
	}
	if id != "" {
		f, err = os.OpenFile(partialPath(final, id), os.O_RDWR, 0)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			sum, there, err := renamedInPlace(ctx, final, r, p)
			if err != nil || there {
				return sum, err
			}
			id = ""
		case err != nil:
			return nil, fmt.Errorf("upload %q: %w", p.Key, err)
		default:
			if done, err = intactParts(f, p); err != nil {
				f.Close()
				return nil, fmt.Errorf("upload %q: check partial file: %w", p.Key, err)
			}
		}
	}
	if id == "" {
		id = parts.NewID()
		if err := mkdirs(filepath.Dir(final)); err != nil {
			return nil, fmt.Errorf("upload %q: %w", p.Key, err)
		}
		f, err = os.OpenFile(partialPath(final, id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, fmt.Errorf("upload %q: %w", p.Key, err)
		}
		if err := setMetadata(f, metadata); err != nil {
			f.Close()
			return nil, fmt.Errorf("upload %q: %w", p.Key, err)
		}
	}
	partial := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	if err := f.Truncate(p.Size); err != nil {
		return nil, fmt.Errorf("upload %q: %w", p.Key, err)
	}
	if err := t.Start(ctx, id, done); err != nil {
		return nil, err
	}
	sums, err := parts.SendParts(ctx, r, p, parts.Missing(p, done), concurrency, t, func(ctx context.Context, n int32, data []byte, sum string) (stores.Part, error) {
		off, _ := p.PartRange(n)
		if _, err := f.WriteAt(data, off); err != nil {
			return stores.Part{}, err
		}
		// On disk before it is recorded as done.
		if err := fsyncFile(f); err != nil {
			return stores.Part{}, err
		}
		return stores.Part{Number: n, Size: int64(len(data)), Checksum: sum}, nil
	})
	if err != nil {
		return nil, err
	}
	if err := parts.Verify(r, p.Key); err != nil {
		return nil, err
	}
	if err := f.Chmod(0o644); err != nil {
		return nil, fmt.Errorf("upload %q: %w", p.Key, err)
	}
	if err := fsyncFile(f); err != nil {
		return nil, fmt.Errorf("upload %q: %w", p.Key, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return nil, fmt.Errorf("upload %q: %w", p.Key, err)
	}
	if err := os.Rename(partial, final); err != nil {
		return nil, fmt.Errorf("upload %q: %w", p.Key, err)
	}
	if err := fsyncDir(filepath.Dir(final)); err != nil {
		return nil, fmt.Errorf("upload %q: %w", p.Key, err)
	}
	// Partial files of this object that earlier attempts lost track of.
	removeOtherPartials(final)
	return sums.SHA256, nil
}

// intactParts returns the parts p records whose bytes in the partial file f
// still have their checksum.
func intactParts(f *os.File, p *stores.Progress) (map[int32]stores.Part, error) {
	done := map[int32]stores.Part{}
	var buf []byte
	for n, pt := range p.Recorded() {
		if pt.Checksum == "" {
			continue
		}
		off, size := p.PartRange(n)
		if cap(buf) < int(size) {
			buf = make([]byte, size)
		}
		data := buf[:size]
		k, err := f.ReadAt(data, off)
		if k < len(data) {
			if err == nil || err == io.EOF {
				continue // the file is shorter: the part is not there
			}
			return nil, err
		}
		if parts.Checksum(data) == pt.Checksum {
			done[n] = stores.Part{Number: n, Size: size, Checksum: pt.Checksum}
		}
	}
	return done, nil
}

// renamedInPlace tells whether the object at final holds the file of p: an
// upload that was renamed into place before the crash. It hashes the file
// only when the object could be it, and makes it durable again when it is:
// the crash may have come before the folder was fsync'd.
func renamedInPlace(ctx context.Context, final string, r io.ReaderAt, p *stores.Progress) (sum []byte, there bool, err error) {
	f, err := os.Open(final)
	if err != nil {
		return nil, false, nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() != p.Size {
		return nil, false, nil
	}
	sums, err := parts.HashFile(ctx, r, p)
	if err != nil {
		return nil, false, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, false, nil
	}
	if !bytes.Equal(h.Sum(nil), sums.SHA256) {
		return nil, false, nil
	}
	if err := fsyncFile(f); err != nil {
		return nil, false, fmt.Errorf("upload %q: %w", p.Key, err)
	}
	if err := fsyncDir(filepath.Dir(final)); err != nil {
		return nil, false, fmt.Errorf("upload %q: %w", p.Key, err)
	}
	return sums.SHA256, true, nil
}

// removeOtherPartials removes the partial files of final that are left.
func removeOtherPartials(final string) {
	dir := filepath.Dir(final)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := "." + filepath.Base(final) + stores.PartialMarker
	for _, e := range entries {
		if name := e.Name(); strings.HasPrefix(name, prefix) && stores.IsPartial(name) {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
}

// Abort implements Uploader: it removes the partial file.
func (u *fileUploader) Abort(ctx context.Context, p stores.Progress) error {
	if p.ID == "" {
		return nil
	}
	if !parts.IsID(p.ID) {
		return fmt.Errorf("abort upload of %q: %q is not a host path upload id", p.Key, p.ID)
	}
	final, err := u.path(&p)
	if err != nil {
		return err
	}
	if err := os.Remove(partialPath(final, p.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("abort upload of %q: %w", p.Key, err)
	}
	return nil
}
