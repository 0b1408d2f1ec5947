package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/internal/escape"
)

// PutBytes sends a small object in one PutObject from the caller's
// goroutine. Through the bucket's writer the same request costs a goroutine,
// a pipe and the SDK's upload manager, which streams the body with a
// trailing checksum; here the body is in memory. Key and metadata are
// escaped as s3blob escapes them, so the bucket reads the object back as if
// it had written it.
//
// The server checks one checksum of the body: the Content-MD5 of sums,
// which it computes anyway for the object's ETag (what a later pass compares
// with the file's MD5). The SDK's own CRC32 header and the payload's signed
// SHA-256 (which the SDK adds over plain HTTP when it computes the CRC32)
// would each be one more checksum for the server to compute, of the same
// bytes, and are left out. Without an MD5 in sums, the SDK's CRC32 stays.
// metadata holds the SHA-256 of sums, unchecked by the server (a restore
// verifies the bytes it downloads against it), and the replica's name.
func (d *driver) PutBytes(ctx context.Context, key string, data []byte, sums stores.Sums, metadata map[string]string) error {
	return d.PutBytesIf(ctx, key, data, sums, metadata, stores.Precondition{})
}

// PutBytesIf is PutBytes under pre: If-None-Match: * for IfAbsent, If-Match
// for IfETag. The server's 412 matches stores.ErrPrecondition.
func (d *driver) PutBytesIf(ctx context.Context, key string, data []byte, sums stores.Sums, metadata map[string]string, pre stores.Precondition) error {
	err := d.putBytes(ctx, key, data, sums, metadata, pre)
	var ae interface{ ErrorCode() string } // smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed" {
		return fmt.Errorf("%w: %w", stores.ErrPrecondition, err)
	}
	return err
}

func (d *driver) putBytes(ctx context.Context, key string, data []byte, sums stores.Sums, metadata map[string]string, pre stores.Precondition) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(d.name),
		Key:           aws.String(escape.S3Key(key)),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/octet-stream"),
	}
	if len(metadata) > 0 {
		in.Metadata = escape.S3Metadata(metadata)
	}
	switch {
	case pre.IfAbsent:
		in.IfNoneMatch = aws.String("*")
	case pre.IfETag != "":
		in.IfMatch = aws.String(pre.IfETag)
	}
	if sums.MD5 == nil {
		_, err := d.client.PutObject(ctx, in)
		return err
	}
	in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(sums.MD5))
	_, err := d.client.PutObject(ctx, in, md5Only, unsignedPayload)
	return err
}

// md5Only stops the SDK from adding its CRC32 to a request that carries a
// Content-MD5.
func md5Only(o *s3.Options) {
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
}
