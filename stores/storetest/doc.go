// Package storetest gives tests one fixture per store kind — host_path,
// volume_claim, s3 (two real S3-compatible servers: versitygw and MinIO),
// gcs (fake-gcs-server) and wasb (Azurite) — each with a fresh, empty bucket,
// the connections file that points the collector at it, and the environment
// it needs. The servers are started by scripts/test.sh, which exports
// COLLECTOR_TEST_* variables; when COLLECTOR_TEST_SERVERS=1 a missing server
// fails the test instead of skipping it (MinIO, the newest, skips while its
// variables are not set). Each runs one suite against every fixture.
package storetest
