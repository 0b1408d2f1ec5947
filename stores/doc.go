// Package stores owns the artifacts store: it turns a connection into an
// open Store (a *blob.Bucket, and what gocloud cannot do for that kind), and
// it is the only place that knows a backend. Each kind is one subpackage,
// registered when imported: stores/file (host_path, volume_claim), stores/s3,
// stores/gcs and stores/azure (wasb); only those import a cloud SDK.
//
// A connection comes from --store, a connections file, Polyaxon's catalog,
// or the default ./artifacts, in that order. A component writes to a
// Target: a prefix of the store with the backend's resumable Uploader and
// its integrity checks. Credentials never leave this package: every error it
// and its backends return passes through Redact, and Describe names a store
// without them.
package stores
