// Package bench holds the benchmarks: run.sh measures the collector against
// cp -r, rclone and MinIO's mc on the same trees and server, with its helpers
// gentree (builds the trees) and countproxy (counts requests and bytes to the
// store). See bench/README.md; results go to bench/results.
package bench
