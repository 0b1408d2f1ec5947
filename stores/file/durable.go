package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/internal/parts"
)

// fsyncFile and fsyncDir make writes durable; tests replace them to see
// when they are called and to make them fail.
var (
	fsyncFile = (*os.File).Sync
	fsyncDir  = syncDir
)

// Put implements the single-call upload of a folder store (Target.Upload
// calls it): r goes into a temp file beside the object, named like a partial
// file (stores.IsPartial), which is fsync'd, renamed into place, and the
// folder fsync'd; metadata goes into its extended attributes (xattr.go).
// fileblob's writer renames without fsync, so an object the
// manifest recorded could be empty or missing after a crash of the machine.
func (d *driver) Put(ctx context.Context, key string, r io.Reader, metadata map[string]string) error {
	return d.PutIf(ctx, key, r, metadata, stores.Precondition{})
}

// PutIf is Put under pre (stores' conditionalPutter of a folder): for
// IfAbsent the file is linked into place, which fails when the object is
// there; for IfETag the object's ETag (fileblob's: modification time and
// size) is checked just before the rename. A refusal matches
// stores.ErrPrecondition.
func (d *driver) PutIf(ctx context.Context, key string, r io.Reader, metadata map[string]string, pre stores.Precondition) error {
	final, err := objectPath(d.dir, key)
	if err != nil {
		return err
	}
	if err := mkdirs(filepath.Dir(final)); err != nil {
		return err
	}
	f, err := os.OpenFile(partialPath(final, parts.NewID()), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	temp := f.Name()
	if err := setMetadata(f, metadata); err != nil {
		f.Close()
		_ = os.Remove(temp)
		return err
	}
	if err := writeDurably(ctx, f, r); err != nil {
		_ = os.Remove(temp)
		return err
	}
	if err := place(temp, final, pre); err != nil {
		_ = os.Remove(temp)
		return err
	}
	return fsyncDir(filepath.Dir(final))
}

// place puts the file temp at final, under pre.
func place(temp, final string, pre stores.Precondition) error {
	switch {
	case pre.IfAbsent:
		if err := os.Link(temp, final); errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", final, stores.ErrPrecondition)
		} else if err != nil {
			return err
		}
		return os.Remove(temp)
	case pre.IfETag != "":
		fi, err := os.Stat(final)
		if err != nil || fmt.Sprintf("\"%x-%x\"", fi.ModTime().UnixNano(), fi.Size()) != pre.IfETag {
			return fmt.Errorf("%s: %w", final, stores.ErrPrecondition)
		}
	}
	return os.Rename(temp, final)
}

// writeDurably copies r into f, fsyncs and closes it; it fails if ctx ended
// meanwhile, so that a cancelled upload is not renamed into place.
func writeDurably(ctx context.Context, f *os.File, r io.Reader) error {
	_, err := io.Copy(f, r)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = fsyncFile(f)
	}
	return errors.Join(err, f.Close())
}

// mkdirs creates dir and its missing parents, and fsyncs the folder that
// holds each one it created, so that a new object's folders survive a crash
// as well as the object.
func mkdirs(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a folder", dir)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirs(parent); err != nil {
			return err
		}
	}
	// Made meanwhile by another upload (ErrExist), it may not be durable yet.
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return fsyncDir(parent)
}

// syncDir makes the changes to dir's entries (a rename, a new file or
// folder) durable. A file system that cannot fsync a folder (EINVAL,
// ENOTSUP) is taken as it is: nothing more can be done there.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	return errors.Join(err, d.Close())
}
