package stores

import (
	"context"
	"log/slog"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
)

// memoryBackend opens mem:// stores: in-process buckets for tests and dry
// runs, which keep nothing.
type memoryBackend struct{}

func init() { Register(KindMemory, memoryBackend{}) }

func (memoryBackend) Open(context.Context, Connection, BucketURL, Credentials, *slog.Logger) (Driver, error) {
	return memoryDriver{memblob.OpenBucket(nil)}, nil
}

type memoryDriver struct{ b *blob.Bucket }

func (d memoryDriver) Bucket() *blob.Bucket           { return d.b }
func (memoryDriver) Resumable(string) Uploader        { return nil }
func (memoryDriver) Verify(*blob.WriterOptions, Sums) {}
func (memoryDriver) Limits() Limits                   { return Limits{} }
