// Package file is the store backend for host_path and volume_claim
// connections: a folder, through gocloud's fileblob, where every object is a
// byte-identical file with nothing beside it. What the sync uploads it
// writes itself, durably, rather than through fileblob's writer (which
// renames without fsync): into a partial file next to the final path, named
// .<base>.collector-part-<id> (see stores.IsPartial), fsync'd, renamed into
// place, and the folder fsync'd, before the upload returns and the manifest
// records the object. The resumable large-object upload writes its parts
// into such a partial file too, fsync'ing each part before it is recorded.
package file

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/mlsidecar/collector/stores"
)

func init() {
	stores.Register(stores.KindHostPath, backend{})
	stores.Register(stores.KindVolumeClaim, backend{})
}

type backend struct{}

func (backend) Open(_ context.Context, c stores.Connection, _ stores.BucketURL, _ stores.Credentials, _ *slog.Logger) (stores.Driver, error) {
	dir, err := filepath.Abs(c.Schema.MountPath)
	if err != nil {
		return nil, err
	}
	b, err := openFolder(c)
	if err != nil {
		return nil, err
	}
	return &driver{bucket: b, dir: dir}, nil
}

// driver is an open store folder.
type driver struct {
	bucket *blob.Bucket
	dir    string // absolute
}

func (d *driver) Bucket() *blob.Bucket { return d.bucket }

func (d *driver) Resumable(prefix string) stores.Uploader {
	return &fileUploader{dir: d.dir, prefix: prefix}
}

// Verify does nothing: the bytes are written by this process.
func (d *driver) Verify(*blob.WriterOptions, stores.Sums) {}

// Limits are none: a folder takes any number of parts of any size, and
// files as large as its file system does.
func (d *driver) Limits() stores.Limits { return stores.Limits{} }

func openFolder(c stores.Connection) (*blob.Bucket, error) {
	dir, err := filepath.Abs(c.Schema.MountPath)
	if err != nil {
		return nil, err
	}
	if c.Kind == stores.KindVolumeClaim {
		// A claim is mounted by Kubernetes; a missing mount means a bad spec.
		if _, err := os.Stat(dir); err != nil {
			return nil, stores.ConfigErrorf(c.Setting()+".schema.mountPath", "volume claim %q is not mounted at %q: %v", c.Schema.VolumeClaim, dir, stores.UnwrapPathError(err))
		}
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, stores.ConfigErrorf(c.Setting()+".schema.mountPath", "%q is a file; the store must be a folder", dir)
	}
	return fileblob.OpenBucket(dir, &fileblob.Options{
		CreateDir: true,
		// Objects must be byte-identical files with nothing beside them, and
		// temp files must be on the same file system for the rename.
		Metadata:  fileblob.MetadataDontWrite,
		NoTempDir: true,
	})
}
