#!/usr/bin/env bash
# The image and the compose demo, run for real: a Docker engine (the one running, else a
# dockerd this script starts, installing docker.io where it is missing), the images the
# Dockerfile and docker-compose.yml name (pulled, or stand-ins where no registry is
# reachable: scripts/offline-images.sh), then, in a compose project of its own:
#   1. `docker compose up --build`: the job runs to its end; the collector exits 0 after it,
#      without an ERROR or a warning; the store (MinIO) holds the outputs byte for byte (as
#      `collector restore` brings them back), the job's log line for line (`collector logs`)
#      and the resources summary with the job container's figures;
#   2. a resume: the outputs volume dropped, `up` again with more steps: attempt 2 restores
#      the outputs before the job starts, the job goes on from its last step, no line twice;
#   3. another RUN starts clean (none of the first run's files), and `docker compose down`
#      in the middle of it: the collector exits without an ERROR, the log in the store is
#      the job's whole log.
#
# `scripts/compose-test.sh prepare` does only the slow part, the engine, the images and the
# collector's image, and leaves the dockerd it started running for the test (which stops
# it): .ci/run prepares in the background while `make test` runs. Needs root where dockerd
# must be started or docker.io installed. COMPOSE_TEST_KEEP=1 leaves the project's
# containers and volumes for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}

say() { printf 'compose-test: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
t0=$SECONDS
step() { say "[$((SECONDS - t0)) s] $*"; }

# --- a Docker engine -----------------------------------------------------------------------
# One this script starts runs niced (its builds and containers with it), and its pid is kept
# where a later run of the test finds it, to stop it at the end.
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
state=$(mktemp -d "${TMPDIR:-/tmp}/compose-test.XXXXXX")
pidfile=${TMPDIR:-/tmp}/collector-compose-test.dockerd.pid
dockerd_pid=
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
	dockerd_pid=$(cat "$pidfile") # started by `prepare`
fi
cleanup_engine() {
	if [ -n "$dockerd_pid" ] && [ "$mode" != prepare ]; then
		"${sudo[@]}" kill "$dockerd_pid" 2>/dev/null || true
		while kill -0 "$dockerd_pid" 2>/dev/null; do sleep 0.5; done
		rm -f "$pidfile"
	fi
}
if ! docker info >/dev/null 2>&1; then
	if ! command -v dockerd >/dev/null; then
		step "installing docker.io (dockerd)"
		"${sudo[@]}" apt-get update -qq
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
	fi
	log=${TMPDIR:-/tmp}/collector-compose-test.dockerd.log
	step "starting dockerd (log: $log)"
	"${sudo[@]}" nice -n 10 dockerd >"$log" 2>&1 &
	dockerd_pid=$!
	echo "$dockerd_pid" >"$pidfile"
	for _ in $(seq 60); do
		docker info >/dev/null 2>&1 && break
		kill -0 "$dockerd_pid" 2>/dev/null || { tail -20 "$log" >&2; fail "dockerd exited"; }
		sleep 1
	done
	docker info >/dev/null 2>&1 || fail "dockerd did not answer in 60 s"
fi

step "images and CLI plugins (scripts/offline-images.sh)"
bash scripts/offline-images.sh
docker compose version >/dev/null || fail "no docker compose v2"
if [ "$mode" = prepare ]; then
	step "building the collector's image"
	COLLECTOR_VERSION=compose-test docker compose build --quiet collector || fail "docker compose build"
	rm -rf "$state"
	step "prepared"
	exit 0
fi

# --- the project ---------------------------------------------------------------------------
project=collector-e2e-$$
run=e2e-$$
other=$run-other
compose=(docker compose --progress quiet -p "$project" -f docker-compose.yml -f "$state/override.yml")
# No published ports: the test reaches MinIO from inside the project, and a port taken on
# the host (another MinIO) must not fail it.
cat >"$state/override.yml" <<'EOF'
services:
  minio:
    ports: !reset []
EOF
store='s3://artifacts/runs?endpoint=http://minio:9000&region=us-east-1'
cleanup() {
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		say "the project's logs:"
		"${compose[@]}" logs --no-color --tail=60 >&2 2>&1 || true
	fi
	if [ "${COMPOSE_TEST_KEEP:-0}" != 1 ]; then
		RUN=$run "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
		# The outputs volumes of the runs, and of `demo` that `compose run` makes.
		docker volume rm "$project-outputs-$run" "$project-outputs-$other" "$project-outputs-demo" \
			"$project-restored" >/dev/null 2>&1 || true
	fi
	cleanup_engine
	rm -rf "$state"
	exit "$rc"
}
trap cleanup EXIT

# mc ARGS...: MinIO's client in the project's network (the create-bucket service).
mc() { "${compose[@]}" run --rm --no-deps -T create-bucket "$@"; }
# collector ARGS...: the image's collector in the project's network, with the store's keys.
collector() { "${compose[@]}" run --rm --no-deps -T collector "$@"; }
# outputs_sh RUN MOUNT SCRIPT: a shell with the run's outputs volume at /outputs, and MOUNT.
outputs_sh() { docker run --rm -v "$project-outputs-$1:/outputs:ro" ${2:+-v "$2"} busybox:1.37 sh -c "$3"; }
container() { "${compose[@]}" ps -a -q "$1"; }

# up RUN STEPS: starts the project in the background (building the image), and waits for
# the collector to exit; prints its exit code.
up() {
	RUN=$1 STEPS=$2 COLLECTOR_VERSION=compose-test "${compose[@]}" up --build --detach --quiet-pull >"$state/up.log" 2>&1 ||
		{ cat "$state/up.log" >&2; fail "docker compose up"; }
	docker wait "$(container collector)"
}

# check_log RUN FILE: the collector's log has no ERROR and no WARN.
check_log() {
	if grep -E 'level=(ERROR|WARN)' "$2" >&2; then
		fail "run $1: the collector logged the lines above"
	fi
}

# --- 1. the demo, start to end -------------------------------------------------------------
step "1. docker compose up --build (RUN=$run, 12 steps)"
code=$(up "$run" 12)
"${compose[@]}" logs --no-color --no-log-prefix collector >"$state/collector-1.log"
[ "$code" = 0 ] || { cat "$state/collector-1.log" >&2; fail "the collector exited with $code, want 0 (the job's)"; }
check_log "$run" "$state/collector-1.log"
grep -q 'msg="collector ready".* attempt=1' "$state/collector-1.log" || fail "run $run: no 'collector ready ... attempt=1'"

step "1. the store: outputs (collector restore), logs (collector logs), resources"
# The outputs: restored into a fresh volume and compared with the job's volume.
"${compose[@]}" run --rm --no-deps -T -v "$project-restored:/restored" collector \
	restore --run "$run" --store "$store" --outputs-path /restored >/dev/null 2>"$state/restore.log" ||
	{ cat "$state/restore.log" >&2; fail "collector restore --run $run"; }
outputs_sh "$run" "$project-restored:/restored" '
	cd /outputs && find . -type f | sort | xargs sha256sum > /tmp/a
	cd /restored && find . -type f | sort | xargs sha256sum > /tmp/b
	diff /tmp/a /tmp/b && wc -l < /tmp/a && wc -l < /outputs/metrics.csv' >"$state/outputs.txt" ||
	fail "run $run: the store's outputs differ from the job's: $(cat "$state/outputs.txt")"
[ "$(sed -n 1p "$state/outputs.txt")" = 3 ] && [ "$(sed -n 2p "$state/outputs.txt")" = 12 ] ||
	fail "run $run: want 3 files (metrics.csv of 12 lines, a checkpoint, model.bin); got $(cat "$state/outputs.txt")"
# The log: the job's, line for line, in order.
collector logs --run "$run" --store "$store" >"$state/stored-1.log" 2>"$state/logs.err" ||
	{ cat "$state/logs.err" >&2; fail "collector logs --run $run"; }
"${compose[@]}" logs --no-color --no-log-prefix job >"$state/job-1.log"
diff "$state/job-1.log" "$state/stored-1.log" >&2 || fail "run $run: the stored log is not the job's (diff above: < job, > store)"
[ "$(grep -c '^step ' "$state/stored-1.log")" = 12 ] || fail "run $run: want 12 step lines in the stored log"
# The resources: summary.json with the job container's figures.
mc cat "demo/artifacts/runs/$run/resources/summary.json" >"$state/summary.json" || fail "run $run: no resources/summary.json"
grep -q '"container"' "$state/summary.json" && grep -q '"name": *"job"' "$state/summary.json" ||
	{ cat "$state/summary.json" >&2; fail "run $run: summary.json has no figures of the job's container"; }
mc ls -r "demo/artifacts/runs/$run/" >"$state/objects.txt"
for prefix in outputs/ logs/ resources/ .collector/; do
	grep -q " $prefix" "$state/objects.txt" || { cat "$state/objects.txt" >&2; fail "run $run: nothing under $prefix"; }
done

# --- 2. a resume ---------------------------------------------------------------------------
step "2. resume: down, the outputs volume dropped, up with 16 steps"
RUN=$run "${compose[@]}" down >/dev/null 2>&1
docker volume rm "$project-outputs-$run" >/dev/null
code=$(up "$run" 16)
"${compose[@]}" logs --no-color --no-log-prefix collector >"$state/collector-2.log"
[ "$code" = 0 ] || { cat "$state/collector-2.log" >&2; fail "attempt 2: the collector exited with $code"; }
check_log "$run" "$state/collector-2.log"
grep -q 'msg="collector ready".* attempt=2' "$state/collector-2.log" || fail "attempt 2: no 'collector ready ... attempt=2'"
grep -q 'msg="restored the run.s outputs" files=3' "$state/collector-2.log" || fail "attempt 2: the 3 outputs were not restored"
collector logs --run "$run" --store "$store" >"$state/stored-2.log" 2>"$state/logs.err" ||
	{ cat "$state/logs.err" >&2; fail "collector logs --run $run"; }
"${compose[@]}" logs --no-color --no-log-prefix job >"$state/job-2.log"
cat "$state/job-1.log" "$state/job-2.log" | diff - "$state/stored-2.log" >&2 ||
	fail "attempt 2: the stored log is not attempt 1's then attempt 2's (diff above)"
grep -q '^job: resuming at step 13$' "$state/stored-2.log" || fail "attempt 2: the job did not resume at step 13"
mc cat "demo/artifacts/runs/$run/outputs/metrics.csv" | awk -F, '$1 != NR { bad = 1 } END { exit bad || NR != 16 }' ||
	fail "attempt 2: metrics.csv in the store is not steps 1 to 16"

# --- 3. another run starts clean; docker compose down in its middle --------------------------
step "3. RUN=$other (60 steps), docker compose down in its middle"
RUN=$run "${compose[@]}" down >/dev/null 2>&1
RUN=$other STEPS=60 COLLECTOR_VERSION=compose-test "${compose[@]}" up --build --detach --quiet-pull >"$state/up.log" 2>&1 ||
	{ cat "$state/up.log" >&2; fail "docker compose up"; }
collector_id=$(container collector)
docker wait "$collector_id" >"$state/code-3" &
waiter=$!
"${compose[@]}" logs --follow --no-color --no-log-prefix collector >"$state/collector-3.log" 2>&1 &
collector_follower=$!
for _ in $(seq 120); do
	[ -n "$(container job)" ] && docker logs "$(container job)" 2>/dev/null | grep -q '^step 12/' && break
	sleep 1
done
docker logs "$(container job)" 2>/dev/null | grep -q '^step 12/' || fail "run $other: the job did not reach step 12 in 2 minutes"
"${compose[@]}" logs --follow --no-color --no-log-prefix job >"$state/job-3.log" &
follower=$!
for _ in $(seq 100); do [ -s "$state/job-3.log" ] && break; sleep 0.2; done
RUN=$other "${compose[@]}" down >/dev/null 2>&1
# (Not a bare wait: a dockerd this script started is one of its jobs.)
wait "$waiter"
wait "$follower" "$collector_follower" || true
code=$(cat "$state/code-3")
# compose logs --follow ends with its own line, "job-1 exited with code 143": not the job's.
grep -av 'job-1 exited with code [0-9]*$' "$state/job-3.log" >"$state/job-3.txt" || true
mv "$state/job-3.txt" "$state/job-3.log"
case $code in 0 | 143) ;; *) cat "$state/collector-3.log" >&2; fail "run $other: the collector exited with $code after down, want 143 (the job's SIGTERM) or 0" ;; esac
check_log "$other" "$state/collector-3.log"
grep -q 'msg="collector ready".* attempt=1' "$state/collector-3.log" || fail "run $other: not attempt 1 of a new run"
RUN=$other "${compose[@]}" up --detach --wait minio >/dev/null 2>&1 || fail "MinIO did not come back"
collector logs --run "$other" --store "$store" >"$state/stored-3.log" 2>"$state/logs.err" ||
	{ cat "$state/logs.err" >&2; fail "collector logs --run $other"; }
diff "$state/job-3.log" "$state/stored-3.log" >&2 || fail "run $other: the stored log is not the job's whole log (diff above)"
grep -q 'resuming' "$state/stored-3.log" && fail "run $other: the job resumed from the first run's outputs"
mc cat "demo/artifacts/runs/$other/outputs/metrics.csv" | awk -F, '$1 != NR { bad = 1 } END { exit bad || NR < 12 || NR >= 60 }' ||
	fail "run $other: metrics.csv in the store is not steps 1 to the step of the down"
if mc ls -r "demo/artifacts/runs/$other/outputs/" | grep -q 'model.bin'; then
	fail "run $other: its outputs hold model.bin, which only the first run wrote"
fi

step "passed in $((SECONDS - t0)) s"
