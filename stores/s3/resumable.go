package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mlsidecar/collector/internal/backoff"
	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/internal/escape"
	"github.com/mlsidecar/collector/stores/internal/parts"
)

// s3MaxParts is S3's limit on the parts of one upload.
const s3MaxParts = 10000

// s3Uploader uploads with S3 multipart uploads.
type s3Uploader struct {
	client *s3.Client
	bucket string
	prefix string
	// checksums says the server takes S3's flexible checksums: unless the
	// client was built with checksum=when_required (for servers that do
	// not), each part carries a CRC32 the server verifies; otherwise a
	// Content-MD5.
	checksums bool
}

func (u *s3Uploader) key(p *stores.Progress) string { return escape.S3Key(u.prefix + p.Key) }

// Upload implements Uploader.
func (u *s3Uploader) Upload(ctx context.Context, r io.ReaderAt, p *stores.Progress, metadata map[string]string, concurrency int, journal stores.Journal) ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if n := p.NumParts(); n > s3MaxParts {
		return nil, fmt.Errorf("upload %q: %d parts of %d bytes is over S3's limit of %d parts; use larger parts", p.Key, n, p.PartSize, s3MaxParts)
	}
	key := u.key(p)
	t := parts.NewTracker(p, journal)
	id := p.ID
	var ck s3Checksums
	var done map[int32]stores.Part
	if id != "" {
		var err error
		done, ck, err = u.listParts(ctx, key, p)
		switch {
		case isNoSuchUpload(err):
			sum, there, err := u.completedElsewhere(ctx, key, r, p)
			if err != nil || there {
				return sum, err
			}
			id, done = "", nil
		case err != nil:
			return nil, fmt.Errorf("upload %q: list parts of upload %s: %w", p.Key, id, err)
		}
	}
	if id == "" && p.Size == 0 {
		return u.putEmpty(ctx, key, metadata, p)
	}
	if id == "" {
		if !u.checksums {
			// No full-object checksum on this server: the SHA-256 goes into
			// the metadata, which S3 takes now, at the cost of one more
			// read of the file before the upload.
			sums, err := parts.HashFile(ctx, r, p)
			if err != nil {
				return nil, err
			}
			metadata = parts.WithHash(metadata, sums.SHA256)
		}
		in := &s3.CreateMultipartUploadInput{
			Bucket:      aws.String(u.bucket),
			Key:         aws.String(key),
			ContentType: aws.String("application/octet-stream"),
			Metadata:    escape.S3Metadata(metadata),
		}
		if u.checksums {
			in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
			in.ChecksumType = types.ChecksumTypeFullObject
		}
		out, err := u.client.CreateMultipartUpload(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("upload %q: start multipart upload: %w", p.Key, err)
		}
		id = aws.ToString(out.UploadId)
		// A server without full-object checksums does not say FULL_OBJECT:
		// it takes the parts' CRC32s and composes its own.
		ck = s3Checksums{parts: u.checksums, fullObject: u.checksums && out.ChecksumType == types.ChecksumTypeFullObject}
	}
	if err := t.Start(ctx, id, done); err != nil {
		return nil, err
	}
	todo := parts.Missing(p, done)
	if p.Size == 0 && len(done) == 0 {
		todo = []int32{1} // S3 needs one part, which may be empty
	}
	sums, err := parts.SendParts(ctx, r, p, todo, concurrency, t, func(ctx context.Context, n int32, data []byte, sum string) (stores.Part, error) {
		in := &s3.UploadPartInput{
			Bucket:        aws.String(u.bucket),
			Key:           aws.String(key),
			UploadId:      aws.String(id),
			PartNumber:    aws.Int32(n),
			Body:          bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data))),
		}
		if ck.parts {
			in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
			in.ChecksumCRC32 = aws.String(sum)
		} else {
			md := md5.Sum(data)
			in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(md[:]))
		}
		out, err := u.client.UploadPart(ctx, in, unsignedPayload)
		if err != nil {
			return stores.Part{}, err
		}
		return stores.Part{Number: n, Size: int64(len(data)), ETag: aws.ToString(out.ETag), Checksum: sum}, nil
	})
	if err != nil {
		return nil, err
	}
	if err := parts.Verify(r, p.Key); err != nil {
		return nil, err
	}
	sent := t.Parts()
	completed := make([]types.CompletedPart, len(sent))
	for i, pt := range sent {
		completed[i] = types.CompletedPart{PartNumber: aws.Int32(pt.Number), ETag: aws.String(pt.ETag)}
		if ck.parts {
			completed[i].ChecksumCRC32 = aws.String(pt.Checksum)
		}
	}
	in := &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(u.bucket),
		Key:             aws.String(key),
		UploadId:        aws.String(id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
	}
	if ck.fullObject {
		// The server checks the whole file's CRC32 against its parts' and
		// keeps it with the object.
		in.ChecksumCRC32 = aws.String(parts.CRC32Base64(sums.CRC32))
		in.ChecksumType = types.ChecksumTypeFullObject
	}
	if _, err := u.client.CompleteMultipartUpload(ctx, in); err != nil {
		return nil, fmt.Errorf("upload %q: complete multipart upload: %w", p.Key, err)
	}
	// The object is whole; what is left is tidying. Uploads of this key that
	// earlier attempts started and lost track of (a crash before their ID was
	// saved) would otherwise be billed until a lifecycle rule drops them.
	// Failing to drop them does not undo the upload, so errors are ignored.
	_ = u.abortOthers(ctx, key, id)
	return sums.SHA256, nil
}

// putEmpty writes an empty object in one PutObject: a multipart upload of
// one empty part has nothing to resume, and a server may not take the
// full-object CRC32 of no bytes at its completion (MinIO combines no part's
// checksum into none, and refuses the one sent). The object carries the
// CRC32 of no bytes all the same, or the SHA-256 in its metadata where the
// server takes no CRC32.
func (u *s3Uploader) putEmpty(ctx context.Context, key string, metadata map[string]string, p *stores.Progress) ([]byte, error) {
	sum := sha256.Sum256(nil)
	in := &s3.PutObjectInput{
		Bucket:        aws.String(u.bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(nil),
		ContentLength: aws.Int64(0),
		ContentType:   aws.String("application/octet-stream"),
	}
	if u.checksums {
		in.ChecksumCRC32 = aws.String(parts.CRC32Base64(0))
	} else {
		metadata = parts.WithHash(metadata, sum[:])
		md := md5.Sum(nil)
		in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(md[:]))
	}
	in.Metadata = escape.S3Metadata(metadata)
	if _, err := u.client.PutObject(ctx, in, unsignedPayload); err != nil {
		return nil, fmt.Errorf("upload %q: %w", p.Key, err)
	}
	return sum[:], nil
}

// s3Checksums says which checksums an upload carries: a CRC32 on every part
// (else a Content-MD5), and the whole file's CRC32 at the commit.
type s3Checksums struct {
	parts, fullObject bool
}

// completedElsewhere tells whether the upload that the server no longer
// lists was completed: the object holds this file, whole. When every part
// was recorded, the collector that recorded them may have been killed
// while it waited for the answer to its CompleteMultipartUpload, which the
// server goes on with; some servers (versitygw) list no upload while they
// join its parts. The object is then looked for again for a while (15 s at
// most, one HEAD each time) before the file is sent again whole.
func (u *s3Uploader) completedElsewhere(ctx context.Context, key string, r io.ReaderAt, p *stores.Progress) ([]byte, bool, error) {
	sum, there, found, err := u.alreadyThere(ctx, key, r, p)
	if err != nil || there || found || int64(len(p.Parts)) < p.NumParts() {
		return sum, there, err // found but not this file: another object
	}
	wait := backoff.Backoff{Min: time.Second, Max: 8 * time.Second}
	for range 4 {
		if !wait.Wait(ctx) {
			return nil, false, ctx.Err()
		}
		if sum, there, found, err = u.alreadyThere(ctx, key, r, p); err != nil || there || found {
			return sum, there, err
		}
	}
	return nil, false, nil
}

// alreadyThere tells whether the object holds this file, whole: an upload
// completed before a crash that lost its record. It hashes the file, which
// the caller needs either way, and compares the object's full-object CRC32,
// or the SHA-256 in its metadata, with the file's.
// found says the object exists, whether it holds this file or not.
func (u *s3Uploader) alreadyThere(ctx context.Context, key string, r io.ReaderAt, p *stores.Progress) (sum []byte, there, found bool, err error) {
	out, err := u.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       aws.String(u.bucket),
		Key:          aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return nil, false, false, nil // not there (or not known to be): upload
	}
	if aws.ToInt64(out.ContentLength) != p.Size {
		return nil, false, true, nil
	}
	sums, err := parts.HashFile(ctx, r, p)
	if err != nil {
		return nil, false, true, err
	}
	full := out.ChecksumType == types.ChecksumTypeFullObject && aws.ToString(out.ChecksumCRC32) == parts.CRC32Base64(sums.CRC32)
	if full || out.Metadata[stores.HashMetadataKey] == hex.EncodeToString(sums.SHA256) {
		return sums.SHA256, true, true, nil
	}
	return nil, false, true, nil
}

// listParts returns the parts the server holds for p's upload that fit p:
// the right size, and the checksum p recorded if it recorded one. It also
// says which checksums the upload was started with, which every part and the
// completion must then carry.
func (u *s3Uploader) listParts(ctx context.Context, key string, p *stores.Progress) (done map[int32]stores.Part, ck s3Checksums, err error) {
	recorded := p.Recorded()
	done = map[int32]stores.Part{}
	pages := s3.NewListPartsPaginator(u.client, &s3.ListPartsInput{
		Bucket:   aws.String(u.bucket),
		Key:      aws.String(key),
		UploadId: aws.String(p.ID),
	})
	n := max(p.NumParts(), 1)
	first := true
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, s3Checksums{}, err
		}
		if first {
			// Servers that do not say follow this uploader's setting.
			ck.parts = out.ChecksumAlgorithm == types.ChecksumAlgorithmCrc32 || (out.ChecksumAlgorithm == "" && u.checksums)
			ck.fullObject = ck.parts && out.ChecksumType == types.ChecksumTypeFullObject
			first = false
		}
		for _, sp := range out.Parts {
			num := aws.ToInt32(sp.PartNumber)
			if num < 1 || int64(num) > n {
				continue
			}
			_, size := p.PartRange(num)
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
			if sum == "" && ck.parts {
				continue // the completion needs the checksum
			}
			done[num] = stores.Part{Number: num, Size: size, ETag: aws.ToString(sp.ETag), Checksum: sum}
		}
	}
	return done, ck, nil
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
func (u *s3Uploader) Abort(ctx context.Context, p stores.Progress) error {
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
// stays signed, and the whole file's CRC32 at the commit.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}
