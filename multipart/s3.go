package multipart

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob"
)

// s3MaxParts is S3's limit on the parts of one upload.
const s3MaxParts = 10000

// s3Uploader uploads with S3 multipart uploads.
type s3Uploader struct {
	client *s3.Client
	bucket string
	prefix string
	b      *blob.Bucket
	// checksums says the server takes S3's flexible checksums: unless the
	// client was built with checksum=when_required (for servers that do
	// not), each part carries a CRC32 the server verifies; otherwise a
	// Content-MD5.
	checksums bool
}

func (u *s3Uploader) key(p *Progress) string { return s3Key(u.prefix + p.Key) }

// Upload implements Uploader.
func (u *s3Uploader) Upload(ctx context.Context, r io.ReaderAt, p *Progress, metadata map[string]string, concurrency int, journal Journal) error {
	if err := p.check(); err != nil {
		return err
	}
	if n := p.numParts(); n > s3MaxParts {
		return fmt.Errorf("upload %q: %d parts of %d bytes is over S3's limit of %d parts; use larger parts", p.Key, n, p.PartSize, s3MaxParts)
	}
	key := u.key(p)
	t := &tracker{p: p, journal: journal}
	id := p.ID
	crc := u.checksums
	var done map[int32]Part
	if id != "" {
		var err error
		done, crc, err = u.listParts(ctx, key, p)
		switch {
		case isNoSuchUpload(err):
			if alreadyThere(ctx, u.b, p, metadata) {
				return nil
			}
			id, done, crc = "", nil, u.checksums
		case err != nil:
			return fmt.Errorf("upload %q: list parts of upload %s: %w", p.Key, id, err)
		}
	}
	if id == "" {
		in := &s3.CreateMultipartUploadInput{
			Bucket:      aws.String(u.bucket),
			Key:         aws.String(key),
			ContentType: aws.String("application/octet-stream"),
			Metadata:    s3Metadata(metadata),
		}
		if crc {
			in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
		}
		out, err := u.client.CreateMultipartUpload(ctx, in)
		if err != nil {
			return fmt.Errorf("upload %q: start multipart upload: %w", p.Key, err)
		}
		id = aws.ToString(out.UploadId)
	}
	if err := t.start(ctx, id, done); err != nil {
		return err
	}
	todo := missing(p, done)
	if p.Size == 0 && len(done) == 0 {
		todo = []int32{1} // S3 needs one part, which may be empty
	}
	err := sendParts(ctx, r, p, todo, concurrency, t, func(ctx context.Context, n int32, data []byte, sum string) (Part, error) {
		in := &s3.UploadPartInput{
			Bucket:        aws.String(u.bucket),
			Key:           aws.String(key),
			UploadId:      aws.String(id),
			PartNumber:    aws.Int32(n),
			Body:          bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data))),
		}
		if crc {
			in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
			in.ChecksumCRC32 = aws.String(sum)
		} else {
			md := md5.Sum(data)
			in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(md[:]))
		}
		out, err := u.client.UploadPart(ctx, in, unsignedPayload)
		if err != nil {
			return Part{}, err
		}
		return Part{Number: n, Size: int64(len(data)), ETag: aws.ToString(out.ETag), Checksum: sum}, nil
	})
	if err != nil {
		return err
	}
	if err := verify(r, p.Key); err != nil {
		return err
	}
	parts := t.parts()
	completed := make([]types.CompletedPart, len(parts))
	for i, pt := range parts {
		completed[i] = types.CompletedPart{PartNumber: aws.Int32(pt.Number), ETag: aws.String(pt.ETag)}
		if crc {
			completed[i].ChecksumCRC32 = aws.String(pt.Checksum)
		}
	}
	_, err = u.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(u.bucket),
		Key:             aws.String(key),
		UploadId:        aws.String(id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
	})
	if err != nil {
		return fmt.Errorf("upload %q: complete multipart upload: %w", p.Key, err)
	}
	// The object is whole; what is left is tidying. Uploads of this key that
	// earlier attempts started and lost track of (a crash before their ID was
	// saved) would otherwise be billed until a lifecycle rule drops them.
	// Failing to drop them does not undo the upload, so errors are ignored.
	_ = u.abortOthers(ctx, key, id)
	return nil
}

// listParts returns the parts the server holds for p's upload that fit p:
// the right size, and the checksum p recorded if it recorded one. It also
// says whether the upload was started with CRC32 checksums, which then
// every part and the completion must carry.
func (u *s3Uploader) listParts(ctx context.Context, key string, p *Progress) (done map[int32]Part, crc bool, err error) {
	recorded := p.recorded()
	done = map[int32]Part{}
	pages := s3.NewListPartsPaginator(u.client, &s3.ListPartsInput{
		Bucket:   aws.String(u.bucket),
		Key:      aws.String(key),
		UploadId: aws.String(p.ID),
	})
	n := max(p.numParts(), 1)
	first := true
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, false, err
		}
		if first {
			// Servers that do not say follow this uploader's setting.
			crc = out.ChecksumAlgorithm == types.ChecksumAlgorithmCrc32 || (out.ChecksumAlgorithm == "" && u.checksums)
			first = false
		}
		for _, sp := range out.Parts {
			num := aws.ToInt32(sp.PartNumber)
			if num < 1 || int64(num) > n {
				continue
			}
			_, size := p.partRange(num)
			if aws.ToInt64(sp.Size) != size || aws.ToString(sp.ETag) == "" {
				continue
			}
			sum := aws.ToString(sp.ChecksumCRC32)
			rec, ok := recorded[num]
			switch {
			case sum == "" && ok:
				sum = rec.Checksum // the server does not echo checksums
			case sum != "" && ok && rec.Checksum != "" && rec.Checksum != sum:
				continue // not the bytes this file's part had: send it again
			}
			if sum == "" && crc {
				continue // the completion needs the checksum
			}
			done[num] = Part{Number: num, Size: size, ETag: aws.ToString(sp.ETag), Checksum: sum}
		}
	}
	return done, crc, nil
}

// abortOthers aborts the multipart uploads of key other than keep.
func (u *s3Uploader) abortOthers(ctx context.Context, key, keep string) error {
	var errs []error
	pages := s3.NewListMultipartUploadsPaginator(u.client, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(u.bucket),
		Prefix: aws.String(key),
	})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, up := range out.Uploads {
			if aws.ToString(up.Key) != key || aws.ToString(up.UploadId) == keep {
				continue
			}
			if err := u.abort(ctx, key, aws.ToString(up.UploadId)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Abort implements Uploader.
func (u *s3Uploader) Abort(ctx context.Context, p Progress) error {
	if p.ID == "" {
		return nil
	}
	if err := u.abort(ctx, u.key(&p), p.ID); err != nil {
		return fmt.Errorf("abort upload of %q: %w", p.Key, err)
	}
	return nil
}

// abort aborts an upload and checks that it is gone. A part whose request
// was cancelled may still be landing on the server while the abort runs, and
// bring the upload back: as S3's documentation advises, abort again until
// listing the upload's parts says it no longer exists.
func (u *s3Uploader) abort(ctx context.Context, key, id string) error {
	for attempt := 0; ; attempt++ {
		_, err := u.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket:   aws.String(u.bucket),
			Key:      aws.String(key),
			UploadId: aws.String(id),
		})
		if err != nil && !isNoSuchUpload(err) {
			return err
		}
		_, err = u.client.ListParts(ctx, &s3.ListPartsInput{
			Bucket:   aws.String(u.bucket),
			Key:      aws.String(key),
			UploadId: aws.String(id),
			MaxParts: aws.Int32(1),
		})
		if err != nil || attempt == 3 {
			// Gone (NoSuchUpload), or the check failed, or still there after
			// four aborts: the abort itself succeeded, and what is left
			// expires by the bucket's lifecycle rules.
			return nil
		}
		select { // still there: give the straggling part a moment
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// isNoSuchUpload tells whether err says the upload does not exist (any more):
// it expired, or was completed or aborted.
func isNoSuchUpload(err error) bool {
	var nsu *types.NoSuchUpload
	if errors.As(err, &nsu) {
		return true
	}
	var ae interface{ ErrorCode() string } // smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload"
}

// unsignedPayload sends a part's body as UNSIGNED-PAYLOAD, the way the SDK
// does over HTTPS, also over plain HTTP, where it would otherwise hash every
// part with SHA-256 once more to sign it. The part's integrity is checked by
// the store all the same, through the CRC32 or Content-MD5 header, which
// stays signed; the file's SHA-256 is in the object's metadata.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}
