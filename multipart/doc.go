// Package multipart owns resumable uploads of large files: an upload is sent
// in fixed-size parts, each part is recorded in a Progress that the caller
// checkpoints through a Journal, and an upload interrupted by a crash or a
// SIGKILL continues after a restart from the parts the store already holds
// instead of starting over.
//
// New picks the mechanism for a store kind:
//   - s3: an S3 multipart upload (CreateMultipartUpload, UploadPart with a
//     CRC32 the server verifies, CompleteMultipartUpload with the whole
//     file's CRC32, which the server checks against the parts and keeps as
//     the object's full-object checksum; a Content-MD5 per part instead
//     when the client was built with checksum=when_required, for servers
//     without S3's flexible checksums). On resume the
//     server's ListParts is the truth; an upload the server no longer knows
//     starts over. Other multipart uploads of the same key left by earlier
//     attempts are aborted once the object is complete. A bucket lifecycle
//     rule (AbortIncompleteMultipartUpload) still cleans uploads abandoned
//     for good, e.g. of a file deleted while in flight.
//   - host_path and volume_claim (fileblob): the parts are written into a
//     partial file next to the final path, named .<base>.collector-part-<id>
//     (see IsPartial), fsync'd, and the file is renamed into place at the end.
//   - wasb (azureblob): blocks staged with a CRC64 the service verifies and
//     committed at the end; uncommitted blocks expire by themselves after a
//     week.
//   - gcs has none: a GCS resumable session lives in the Go client
//     (storage.Writer) and cannot be continued from another process, and
//     compose-based parts would leave temporary objects to clean. The caller
//     uses its ordinary upload there.
//
// The file is read once, in order, part after part: the parts are hashed
// (SHA-256, the content hash Upload returns) as they are read and sent, with
// no pass over the file before the upload starts.
//
// The caller decides whether a saved Progress still belongs to the file on
// disk (size, mtime, inode) and calls Abort when it does not.
package multipart
