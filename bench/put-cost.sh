#!/usr/bin/env bash
# What the checksums of a small PUT cost the S3 server: N objects of SIZE bytes sent with each
# combination of Content-MD5, a CRC32 header, the payload's signed SHA-256 and the SHA-256 in the
# metadata (bench/putcost), to a fresh server of each kind in SERVERS, the combinations taking turns,
# ROUNDS rounds; the server's CPU time (utime + stime from /proc) for each, medians.
#
#   bash bench/put-cost.sh                           10,000 × 4 KiB, MinIO and versitygw, 3 rounds
#   N=2000 ROUNDS=1 SERVERS=minio bash bench/put-cost.sh
set -euo pipefail
BENCH_NAME=put-cost
# shellcheck source=bench/setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

N=${N:-10000} SIZE=${SIZE:-4096} ROUNDS=${ROUNDS:-3} WORKERS=${WORKERS:-16}
SERVERS=${SERVERS:-minio versitygw}
(cd "$BENCH_REPO" && go build -o "$WORK/putcost" ./bench/putcost) || die "bench/putcost does not build"
port=$(free_port "${BENCH_S3_PORT:-7878}")
for srv in $SERVERS; do
	start_s3 "$srv" "$port"
	s3_peers "$srv" "$port"
	echo
	echo "$srv ($(date +%F)):"
	"$WORK/putcost" -endpoint "http://127.0.0.1:$port" -bucket bench -pid "$S3_PID" -n "$N" -size "$SIZE" \
		-rounds "$ROUNDS" -workers "$WORKERS" 2> >(while read -r l; do log "$srv: $l"; done)
	kill "$S3_PID" && wait "$S3_PID" 2>/dev/null || true
	rm -rf "$WORK/$srv-data"
done
