#!/usr/bin/env bash
# The time from a preemption notice to the job's outputs in the store: the collector wraps an idle
# command with --sync-interval 0 (nothing would reach the store before the end) and a host-path store, on
# a fake EC2 metadata service (IMDSv2) that starts giving the Spot interruption notice once the outputs
# are written. Per round it prints the time from the notice being set to every file whole in the store
# (the collector's one-second poll of the metadata service included), from the notice first served to
# the collector, and the time the same files take to copy and fsync alone (the upload itself).
#
#   bash bench/preemption.sh                          20 × 1 MiB and 4 × 64 MiB, 3 rounds each
#   FILES=100 SIZE=4194304 ROUNDS=1 bash bench/preemption.sh
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
while read -r v; do unset "$v"; done < <(compgen -e | grep '^COLLECTOR_' || true)

cd "$REPO"
make --no-print-directory build BIN="$WORK/collector" >/dev/null
go build -o "$WORK/preemption" ./bench/preemption
ROUNDS=${ROUNDS:-3}
if [ -n "${FILES:-}" ]; then
	"$WORK/preemption" -collector "$WORK/collector" -files "$FILES" -size "${SIZE:-1048576}" -rounds "$ROUNDS"
else
	"$WORK/preemption" -collector "$WORK/collector" -files 20 -size 1048576 -rounds "$ROUNDS"
	"$WORK/preemption" -collector "$WORK/collector" -files 4 -size 67108864 -rounds "$ROUNDS"
fi
