#!/usr/bin/env bash
# Distributed runs: N sidecars on one run against the test S3 server, each
# with a small tree of its own and one change a second (cmd/collector's
# TestReplicasLoad): requests per replica per minute in steady state, CPU
# per replica, and the time until a change is in the store, for 1 replica
# and for REPLICAS (default 64). Needs the test servers
# (scripts/servers.sh start; source their environment first).
# Knobs: REPLICAS, SECONDS_STEADY (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${COLLECTOR_TEST_S3_ENDPOINT:?start the test servers and source their environment (scripts/servers.sh)}"
for n in 1 "${REPLICAS:-64}"; do
	COLLECTOR_TEST_BENCH_REPLICAS=$n COLLECTOR_TEST_BENCH_SECONDS=${SECONDS_STEADY:-60} \
		go test -count=1 -v -timeout 30m -tags disable_grpc_modules -run '^TestReplicasLoad$' ./cmd/collector/ |
		grep -E 'replicas=[0-9]+ ' | sed 's/^ *replica_bench_test.go:[0-9]*: //'
done
