package sync

import (
	"context"
	"fmt"
	"os"

	"github.com/mlsidecar/collector/stores"
)

// FileUploader uploads files one at a time, named by their producer rather
// than found by a pass: the spool's sealed chunks. It shares the memory
// budget and the retries of the outputs' Syncer.
type FileUploader struct {
	up *uploader
}

// NewFileUploader returns an uploader into target (rooted where the keys
// go: the run's folder) with the engine's settings and budget.
func NewFileUploader(cfg Config, target stores.Target, budget *Budget) *FileUploader {
	return &FileUploader{up: newUploader(target, cfg, Options{Budget: budget})}
}

// Upload copies the file at path to key and returns once the store holds
// it, trying again while the store's errors are transient. A file that is
// gone returns an error that is fs.ErrNotExist.
func (u *FileUploader) Upload(ctx context.Context, path, key string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err // gone: its producer dropped it
	}
	return retry(ctx, uploadAttempts, func() error {
		if _, err := u.up.upload(ctx, path, key, stateOf(fi), nil); err != nil {
			return fmt.Errorf("upload %q: %w", key, err)
		}
		return nil
	})
}

// Refused reports whether an error of Upload will not go away by trying
// again.
func (u *FileUploader) Refused(err error) bool { return permanent(err) }
