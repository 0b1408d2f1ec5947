#!/usr/bin/env bash
# The project's test command (`make test`): installs and starts the storage
# emulators (scripts/servers.sh), runs `go test -race -count=1 ./...` against them
# with the COLLECTOR_TEST_* variables exported, stops them again and exits with
# go test's status. Extra arguments go to go test: scripts/test.sh -run TestS3 -v
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/servers.sh
. scripts/servers.sh

if [ "$(go env CGO_ENABLED)" != 1 ]; then
	echo "test.sh: go test -race needs cgo and a C compiler, but CGO_ENABLED=$(go env CGO_ENABLED)" \
		"(install one: apt-get install -y gcc libc6-dev)" >&2
	exit 1
fi

_ms() { date +%s%3N; }

# The tests build and run the collector as it ships (see the Makefile's GOTAGS):
# without the GCS client's gRPC direct-path modules, which the collector does
# not use. The plain `go run ./cmd/collector` of the README must build too.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=disable_grpc_modules"
GOFLAGS= go build -o /dev/null ./cmd/collector

workdir=$(mktemp -d "${TMPDIR:-/tmp}/collector-test.XXXXXX")
status=1
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	set +e
	trap '' PIPE # a closed stdout (scripts/test.sh | head) must not cut the cleanup short
	stop_servers "$workdir"
	if [ "$status" -ne 0 ]; then
		show_server_logs "$workdir"
	fi
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(_ms)
install_servers
t1=$(_ms)
start_servers "$workdir"
t2=$(_ms)
printf 'test.sh: servers ready: install %d.%03ds, start %d.%03ds (S3 %s, MinIO %s, GCS %s, Azure %s)\n' \
	$(((t1 - t0) / 1000)) $(((t1 - t0) % 1000)) $(((t2 - t1) / 1000)) $(((t2 - t1) % 1000)) \
	"$COLLECTOR_TEST_S3_ENDPOINT" "$COLLECTOR_TEST_MINIO_ENDPOINT" "$COLLECTOR_TEST_GCS_HOST" "$COLLECTOR_TEST_AZURE_ENDPOINT"

# The report's render test screenshots a page in headless Chromium (Debian's
# chromium package), installed here where it is missing; under this script the
# test must run, so a failed install fails it.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
	sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	{ "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null; } ||
		echo "test.sh: cannot install chromium; the report's render test fails" >&2
fi
export COLLECTOR_TEST_CHROMIUM="${COLLECTOR_TEST_CHROMIUM:-$(command -v chromium || echo chromium)}"

set +e
go test -race -count=1 -timeout 30m ./... "$@"
status=$?
set -e
exit "$status"
