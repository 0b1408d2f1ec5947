package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/internal/escape"
)

// PutBytes sends a small object in one PutObject from the caller's
// goroutine. Through the bucket's writer the same request costs a goroutine,
// a pipe and the SDK's upload manager, which streams the body with a
// trailing checksum; here the body is in memory, so the SDK sends its CRC32
// (unless checksum=when_required) in a header, next to the Content-MD5 of
// sums. Key and metadata are escaped as s3blob escapes them, so the bucket
// reads the object back as if it had written it.
func (d *driver) PutBytes(ctx context.Context, key string, data []byte, sums stores.Sums) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(d.name),
		Key:           aws.String(escape.S3Key(key)),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/octet-stream"),
	}
	if sums.MD5 != nil {
		in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(sums.MD5))
	}
	if sums.SHA256 != nil {
		in.Metadata = escape.S3Metadata(map[string]string{stores.HashMetadataKey: hex.EncodeToString(sums.SHA256)})
	}
	_, err := d.client.PutObject(ctx, in)
	return err
}
