package stores

import (
	"context"
	"fmt"
	"io"

	"gocloud.dev/blob"
)

// Upload writes r to key through the driver's single-call upload path and
// turns a panic inside a driver into an error: gocloud's azureblob writer can
// panic in Close when the upload failed (a missing container, for one), and
// one bad upload must never stop the collector. Every write to a store goes
// through here. The error is redacted (Redact); a refusal by the store
// matches ErrRefused.
func Upload(ctx context.Context, b *blob.Bucket, key string, r io.Reader, opts *blob.WriterOptions) error {
	return upload(ctx, nil, b, key, r, opts)
}

// upload is Upload, with its error classified by drv (nil: by the HTTP
// answer it carries).
func upload(ctx context.Context, drv Driver, b *blob.Bucket, key string, r io.Reader, opts *blob.WriterOptions) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Redact(fmt.Errorf("upload %q: store driver failed: %v", key, p))
		}
	}()
	if opts == nil {
		opts = &blob.WriterOptions{}
	}
	if opts.ContentType == "" {
		opts.ContentType = "application/octet-stream"
	}
	if err := b.Upload(ctx, key, r, opts); err != nil {
		return storeError(drv, fmt.Errorf("upload %q: %w", key, err))
	}
	return nil
}
