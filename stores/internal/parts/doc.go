// Package parts is the engine the resumable uploaders of stores/s3,
// stores/azure and stores/file share: it reads a file once, in order, part
// after part, hashes it as it goes (the SHA-256 the manifest and the metadata
// keep, and a whole-file CRC32), sends the parts the store does not hold yet
// with a bounded number in flight, and records each completed part in the
// upload's stores.Progress through a Tracker, which saves it to the caller's
// journal one save at a time.
package parts
