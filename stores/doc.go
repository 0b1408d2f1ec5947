// Package stores owns the artifacts store: it turns a connection into an
// open Store (a *blob.Bucket, and what gocloud cannot do for that kind), and
// it is the only place that knows a backend. Each kind is one subpackage,
// registered by kind when it is imported: stores/file (host_path and
// volume_claim), stores/s3, stores/gcs and stores/azure (wasb). Only those
// subpackages import a cloud SDK.
//
// A connection comes from one of four places, in this order: the --store
// setting (a local path, a file://, s3://, gs://, azblob:// or wasbs:// URL, or
// the name of a connection), a Polyaxon-style connections file
// (artifactsStore: and connections:), the catalog Polyaxon's agent passes in
// POLYAXON_CONNECTIONS_CATALOG and POLYAXON_ARTIFACTS_STORE_NAME, and finally
// the default host path ./artifacts.
//
// Open reads the connection's credentials (a folder of key files, or the
// environment, falling back to each SDK's default chain), lets the kind's
// Backend open the bucket, and roots it at the connection's prefix. A
// component writes to a Target: a prefix of the store with the backend's
// resumable large-object Uploader (progress checkpointed part by part, so
// an upload cut by a kill continues) and its integrity checks (a CRC32C for
// GCS, a CRC64 per Azure block, Content-MD5).
//
// Credentials never leave this package: every error it and its backends
// return has the credential-bearing parts of URLs and connection strings
// removed (Redact), and Describe names a store without them.
package stores
