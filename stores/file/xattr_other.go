//go:build !linux && !darwin

package file

import (
	"context"
	"os"
)

// setMetadata keeps nothing where the system has no extended attributes the
// store can use (xattr.go).
func setMetadata(*os.File, map[string]string) error { return nil }

// Metadata is none there.
func (d *driver) Metadata(string) (map[string]string, error) { return nil, nil }

// Copy copies through the bucket there (stores falls back to it).
func (d *driver) Copy(ctx context.Context, dst, src string) error {
	return d.bucket.Copy(ctx, dst, src, nil)
}
