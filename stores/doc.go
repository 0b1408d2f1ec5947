// Package stores turns a connection into a *blob.Bucket and nothing more.
//
// A connection comes from one of four places, in this order: the --store
// setting (a local path, a file://, s3://, gs://, azblob:// or wasbs:// URL, or
// the name of a connection), a Polyaxon-style connections file
// (artifactsStore: and connections:), the catalog Polyaxon's agent passes in
// POLYAXON_CONNECTIONS_CATALOG and POLYAXON_ARTIFACTS_STORE_NAME, and finally
// the default host path ./artifacts.
//
// Open builds the SDK client for the connection's kind (aws-sdk-go-v2,
// cloud.google.com/go/storage, azblob, or the local file system), with
// credentials from the connection's secret (a folder of key files, or the
// environment) falling back to each SDK's default chain, and returns a bucket
// rooted at the connection's prefix. Credentials never appear in an error or in
// Describe's output.
package stores
