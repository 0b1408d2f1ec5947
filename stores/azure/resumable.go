package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/internal/escape"
	"github.com/mlsidecar/collector/stores/internal/parts"
)

const (
	azureMaxBlocks    = 50000
	azureMaxBlockSize = 4000 << 20
	// azureBlockIDLen is the length of a block ID before base64. All the
	// block IDs of a blob, uncommitted ones included, must have one length;
	// azblob's own uploads (gocloud's ordinary path) use 64 bytes, so ours do
	// too and can follow one of those that failed.
	azureBlockIDLen = 64
)

// azureUploader uploads to Azure Blob Storage by staging blocks and
// committing the block list.
type azureUploader struct {
	client *container.Client
	prefix string
	b      *blob.Bucket
	checks *blockChecks
}

// blockID is the base64 block ID of part n of upload id.
func blockID(id string, n int32) string {
	raw := fmt.Sprintf("%s-%08d", id, n)
	raw += strings.Repeat(".", max(azureBlockIDLen-len(raw), 0))
	return base64.StdEncoding.EncodeToString([]byte(raw))
}

// Upload implements Uploader.
func (u *azureUploader) Upload(ctx context.Context, r io.ReaderAt, p *stores.Progress, metadata map[string]string, concurrency int, journal stores.Journal) ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if n := p.NumParts(); n > azureMaxBlocks {
		return nil, fmt.Errorf("upload %q: %d parts of %d bytes is over Azure's limit of %d blocks; use larger parts", p.Key, n, p.PartSize, azureMaxBlocks)
	}
	if p.PartSize > azureMaxBlockSize {
		return nil, fmt.Errorf("upload %q: part size %d is over Azure's block limit of %d bytes", p.Key, p.PartSize, azureMaxBlockSize)
	}
	if _, err := escape.AzureMetadata(metadata); err != nil {
		return nil, fmt.Errorf("upload %q: %w", p.Key, err)
	}
	bb := u.client.NewBlockBlobClient(escape.AzureKey(u.prefix + p.Key))
	t := parts.NewTracker(p, journal)
	id := p.ID
	if id != "" && (!parts.IsID(id) || len(id)+9 > azureBlockIDLen) {
		id = "" // not one of ours: start over
	}
	var done map[int32]stores.Part
	if id != "" {
		var err error
		if done, err = u.stagedParts(ctx, bb, id, p); err != nil {
			return nil, fmt.Errorf("upload %q: list staged blocks: %w", p.Key, err)
		}
		// Committing drops the uncommitted blocks: with none left, the upload
		// may have been committed before the crash.
		if len(done) == 0 {
			sum, there, err := parts.AlreadyThere(ctx, u.b, r, p)
			if err != nil || there {
				return sum, err
			}
		}
	} else {
		id = parts.NewID()
	}
	if err := t.Start(ctx, id, done); err != nil {
		return nil, err
	}
	sums, err := parts.SendParts(ctx, r, p, parts.Missing(p, done), concurrency, t, func(ctx context.Context, n int32, data []byte, sum string) (stores.Part, error) {
		_, err := bb.StageBlock(ctx, blockID(id, n), streaming.NopCloser(bytes.NewReader(data)), &blockblob.StageBlockOptions{
			TransactionalValidation: u.validation(data),
		})
		if err != nil {
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
	// Azure takes the metadata at the commit: the hash of the bytes just
	// read goes with it.
	md, err := escape.AzureMetadata(parts.WithHash(metadata, sums.SHA256))
	if err != nil {
		return nil, fmt.Errorf("upload %q: %w", p.Key, err)
	}
	ids := make([]string, p.NumParts())
	for i := range ids {
		ids[i] = blockID(id, int32(i+1))
	}
	contentType := "application/octet-stream"
	_, err = bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{
		Metadata:    md,
		HTTPHeaders: &azblobblob.HTTPHeaders{BlobContentType: &contentType},
	})
	if err != nil {
		return nil, fmt.Errorf("upload %q: commit block list: %w", p.Key, err)
	}
	return sums.SHA256, nil
}

// validation is the check of a block's bytes by the service: its CRC64, or
// its MD5 once the service has refused CRC64 (the client's pipeline sends
// the refused block again with its MD5).
func (u *azureUploader) validation(data []byte) azblobblob.TransferValidationType {
	if u.checks.useMD5() {
		sum := md5.Sum(data)
		return azblobblob.TransferValidationTypeMD5(sum[:])
	}
	return azblobblob.TransferValidationTypeComputeCRC64()
}

// stagedParts returns the parts of upload id that the service holds as
// uncommitted blocks of the right size.
func (u *azureUploader) stagedParts(ctx context.Context, bb *blockblob.Client, id string, p *stores.Progress) (map[int32]stores.Part, error) {
	done := map[int32]stores.Part{}
	resp, err := bb.GetBlockList(ctx, blockblob.BlockListTypeUncommitted, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return done, nil
	}
	if err != nil {
		return nil, err
	}
	want := make(map[string]int32, p.NumParts())
	for n := int32(1); int64(n) <= p.NumParts(); n++ {
		want[blockID(id, n)] = n
	}
	recorded := p.Recorded()
	for _, b := range resp.UncommittedBlocks {
		if b == nil || b.Name == nil || b.Size == nil {
			continue
		}
		n, ok := want[*b.Name]
		if !ok {
			continue
		}
		if _, size := p.PartRange(n); *b.Size == size {
			done[n] = stores.Part{Number: n, Size: size, Checksum: recorded[n].Checksum}
		}
	}
	return done, nil
}

// Abort implements Uploader. Azure has no call that drops uncommitted
// blocks: they expire after a week, or go with the blob's next commit. A new
// upload uses a new ID, so they are never mistaken for its parts.
func (u *azureUploader) Abort(ctx context.Context, p stores.Progress) error {
	return nil
}
