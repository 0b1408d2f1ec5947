// Package gcs is the store backend for Google Cloud Storage
// (cloud.google.com/go/storage through gocloud's gcsblob). Every upload
// carries the object's CRC32C when it is known, which GCS checks against the
// bytes it received before it commits the object.
package gcs

import (
	"context"
	"fmt"
	"os"

	"cloud.google.com/go/storage"
	"gocloud.dev/blob"
	"gocloud.dev/blob/gcsblob"
	"google.golang.org/api/option"

	"github.com/mlsidecar/collector/stores"
)

func init() { stores.Register(stores.KindGCS, backend{}) }

type backend struct{}

func (backend) Open(ctx context.Context, c stores.Connection, loc stores.BucketURL, creds stores.Credentials) (stores.Driver, error) {
	b, err := openGCS(ctx, loc, creds)
	if err != nil {
		return nil, err
	}
	return &driver{bucket: b}, nil
}

// driver is an open GCS bucket.
type driver struct {
	bucket *blob.Bucket
}

func (d *driver) Bucket() *blob.Bucket { return d.bucket }

// Resumable is nil: large objects go through the bucket's writer.
func (d *driver) Resumable(string) stores.Uploader { return nil }

// Verify sends the object's CRC32C, for GCS to check before it commits.
func (d *driver) Verify(opts *blob.WriterOptions, sums stores.Sums) {
	if sums.CRC32C == 0 {
		return
	}
	opts.BeforeWrite = func(as func(any) bool) error {
		var w *storage.Writer
		if as(&w) {
			w.CRC32C, w.SendCRC32C = sums.CRC32C, true
		}
		return nil
	}
}

func openGCS(ctx context.Context, bu stores.BucketURL, creds stores.Credentials) (*blob.Bucket, error) {
	var clientOpts []option.ClientOption
	// storage.NewClient honours STORAGE_EMULATOR_HOST by itself.
	if creds.Getenv("STORAGE_EMULATOR_HOST") == "" {
		keyPath := creds.Path("GC_KEY_PATH")
		if keyPath == "" {
			keyPath = creds.Get("GC_KEY_PATH")
		}
		switch {
		case keyPath != "":
			data, err := os.ReadFile(keyPath)
			if err != nil {
				return nil, fmt.Errorf("read GC_KEY_PATH %q: %w", keyPath, stores.UnwrapPathError(err))
			}
			clientOpts = append(clientOpts, option.WithAuthCredentialsJSON(option.ServiceAccount, data))
		case creds.Get("GC_KEYFILE_DICT") != "":
			clientOpts = append(clientOpts, option.WithAuthCredentialsJSON(option.ServiceAccount, []byte(creds.Get("GC_KEYFILE_DICT"))))
		}
		// Otherwise: GOOGLE_APPLICATION_CREDENTIALS or workload identity, by the default chain.
	}
	client, err := storage.NewClient(ctx, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("create GCS client: %w", err)
	}
	return gcsblob.OpenBucket(ctx, nil, bu.Bucket, &gcsblob.Options{Client: client})
}
