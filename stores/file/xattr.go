//go:build linux || darwin

package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mlsidecar/collector/stores/internal/parts"
)

// A folder store's objects are plain files with nothing beside them, so
// their metadata, where there is any (the replica of a distributed run that
// stored the object, and its SHA-256), lives in extended attributes of the
// file: user.collector.<key>. A file system without user extended attributes
// (ENOTSUP) keeps none, and the objects are taken as nobody's in
// particular.
const xattrPrefix = "user.collector."

// setMetadata writes md into f's extended attributes. A file system that
// keeps none is taken as it is.
func setMetadata(f *os.File, md map[string]string) error {
	for k, v := range md {
		err := unix.Fsetxattr(int(f.Fd()), xattrPrefix+k, []byte(v), 0)
		if unsupported(err) {
			return nil
		}
		if err != nil {
			return &os.PathError{Op: "setxattr", Path: f.Name(), Err: err}
		}
	}
	return nil
}

func unsupported(err error) bool {
	return errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP)
}

// Metadata returns the metadata kept in the extended attributes of the
// object at key (stores' metadataKeeper); none where the file system keeps
// none.
func (d *driver) Metadata(key string) (map[string]string, error) {
	path, err := objectPath(d.dir, key)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 1024)
	n, err := unix.Llistxattr(path, buf)
	if errors.Is(err, syscall.ERANGE) {
		if n, err = unix.Llistxattr(path, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Llistxattr(path, buf)
		}
	}
	if unsupported(err) {
		return nil, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "listxattr", Path: path, Err: err}
	}
	var md map[string]string
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		key, ok := strings.CutPrefix(name, xattrPrefix)
		if !ok || key == "" {
			continue
		}
		v := make([]byte, 256)
		m, err := unix.Lgetxattr(path, name, v)
		if err != nil {
			return nil, &os.PathError{Op: "getxattr", Path: path, Err: err}
		}
		if md == nil {
			md = map[string]string{}
		}
		md[key] = string(v[:m])
	}
	return md, nil
}

// Copy makes dst a copy of src (stores' copier): a hard link to src's file,
// made under a partial name and renamed into place, so that dst keeps src's
// bytes and extended attributes when src is replaced later (an upload
// renames a new file over it) and a reader never sees dst half made.
func (d *driver) Copy(ctx context.Context, dst, src string) error {
	from, err := objectPath(d.dir, src)
	if err != nil {
		return err
	}
	to, err := objectPath(d.dir, dst)
	if err != nil {
		return err
	}
	if err := mkdirs(filepath.Dir(to)); err != nil {
		return err
	}
	temp := partialPath(to, parts.NewID())
	if err := os.Link(from, temp); err != nil {
		return err
	}
	if err := os.Rename(temp, to); err != nil {
		_ = os.Remove(temp)
		return err
	}
	return fsyncDir(filepath.Dir(to))
}
