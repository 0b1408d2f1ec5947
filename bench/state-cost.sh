#!/usr/bin/env bash
# What the run's state costs a running sidecar (issue 8, item 10): a sidecar over an already-synced
# tree of FILES files (default 100,000) on S3 (versitygw, through bench/countproxy), one file
# rewritten every second for CHANGES seconds (default 20), each synced by a pass of its own. Reported: CPU % of one core and RSS of
# the sidecar over that window, and the bytes sent to the store per pass that uploaded a file, the
# state's share (keys under .collector/) apart.
#
#   bash bench/state-cost.sh                               this checkout
#   PREV_BIN=/tmp/prev/collector bash bench/state-cost.sh  and a previous build, side by side
#   SIDECAR_ARGS="--resources-interval 0" bash bench/state-cost.sh   extra flags for the sidecar
#   COLLECTOR_BIN=/tmp/this/collector bash bench/state-cost.sh     a given binary instead of this checkout's
#
# A previous version is built in a worktree, e.g.:
#   git worktree add /tmp/prev 6a5b863 && (cd /tmp/prev && go build -tags disable_grpc_modules -o collector ./cmd/collector)
#
# Before the window, one file is rewritten and synced: the first change of an attempt writes the
# whole state to the store (a snapshot, with the attempt's number), and its cost is reported apart.
# About 3 minutes a version on 2 cores (most of it the initial sync of the tree).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FILES=${FILES:-100000} DIRS=${DIRS:-1000} SIZE=${SIZE:-100}
CHANGES=${CHANGES:-20}
# A change settles in SETTLE seconds, so that each is a pass of its own: one checkpoint per change,
# the state's worst case (at the default 2 s, changes a second apart wait for the interval's pass).
SETTLE=${SETTLE:-0.3}
S3_PORT=${BENCH_S3_PORT:-7181} PROXY_PORT=${BENCH_PROXY_PORT:-7282}
RESULTS_DIR=${BENCH_RESULTS:-$REPO/bench/results}

log() { printf '[state-cost %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/collector-state-cost.XXXXXX")
LOGS=$RESULTS_DIR/logs/state-cost
PIDS=()
cleanup() {
	local rc=$?
	set +e
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	[ "${KEEP_TMP:-0}" = 1 ] && log "kept $WORK" || rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# The collector refuses a COLLECTOR_ variable that is not a setting: COLLECTOR_BIN is the script's.
GIVEN_BIN=${COLLECTOR_BIN:-}
while read -r v; do unset "$v"; done < <(compgen -e | grep '^COLLECTOR_' || true)
mkdir -p "$WORK/bin" "$LOGS"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use "$S3_PORT" && die "port $S3_PORT is in use (set BENCH_S3_PORT)"
port_in_use "$PROXY_PORT" && die "port $PROXY_PORT is in use (set BENCH_PROXY_PORT)"
wait_port() { for _ in $(seq 100); do port_in_use "$1" && return 0; sleep 0.1; done; die "$2 did not start on port $1"; }

if [ -n "$GIVEN_BIN" ]; then
	cp "$GIVEN_BIN" "$WORK/bin/collector"
else
	log "building the collector from $REPO"
	(cd "$REPO" && nice -n 10 make --no-print-directory build BIN="$WORK/bin/collector" >/dev/null) || die "the collector does not build"
fi
(cd "$REPO" && go build -o "$WORK/bin/gentree" ./bench/gentree && go build -o "$WORK/bin/countproxy" ./bench/countproxy) \
	|| die "bench tools do not build"
VERSITYGW=""
for p in "$HOME/.cache/collector-bench/bin/versitygw" "$HOME/.cache/collector-test/bin/versitygw" "$(command -v versitygw || true)"; do
	[ -n "$p" ] && [ -x "$p" ] && { VERSITYGW=$p; break; }
done
[ -n "$VERSITYGW" ] || die "no versitygw (bash bench/run.sh or scripts/servers.sh installs it)"

export AWS_ACCESS_KEY_ID=benchaccess AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
mkdir -p "$WORK/s3/bench"
ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY "$VERSITYGW" --port "127.0.0.1:$S3_PORT" posix "$WORK/s3" \
	>"$LOGS/versitygw.log" 2>&1 &
PIDS+=($!)
wait_port "$S3_PORT" versitygw
"$WORK/bin/countproxy" -listen "127.0.0.1:$PROXY_PORT" -target "http://127.0.0.1:$S3_PORT" >"$LOGS/countproxy.log" 2>&1 &
PIDS+=($!)
wait_port "$PROXY_PORT" countproxy
PURL=http://127.0.0.1:$PROXY_PORT
STORE="s3://bench?endpoint=$PURL&region=us-east-1"

TREE=$WORK/tree
log "generating $FILES × $SIZE B in $DIRS folders"
"$WORK/bin/gentree" -dir "$TREE" -files "$FILES" -dirs "$DIRS" -size "$SIZE" -seed 3 2>>"$LOGS/gentree.log"
mapfile -t CHANGED < <(cd "$TREE" && find . -type f -name '*.bin' | sort | awk -v n="$FILES" -v k="$((CHANGES + 1))" \
	'NR % int(n / k) == 1 {sub(/^\.\//, ""); print}' | head -n "$((CHANGES + 1))")

HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
count() { curl -fsS "$PURL/__count" | grep -o "\"$1\":[0-9]*" | sed 's/.*://' || true; }
uploads() { grep -c 'msg="sync pass".* uploaded=[1-9]' "$1" || true; }
# uploaded LOG SKIP: files uploaded by the passes that uploaded any, but for the first SKIP of them.
uploaded() {
	grep 'msg="sync pass".* uploaded=[1-9]' "$1" | tail -n "+$(($2 + 1))" | grep -o ' uploaded=[0-9]*' \
		| awk -F= '{n += $2} END {print n + 0}'
}
wait_uploaded() { # log skip files seconds
	for _ in $(seq $((10 * $4))); do [ "$(uploaded "$1" "$2")" -ge "$3" ] && return 0; sleep 0.1; done
	return 1
}
rewrite() { head -c "$SIZE" /dev/urandom >"$TREE/$1"; }

declare -A R
# measure NAME BIN: the initial sync, then the sidecar over the synced tree, then the window.
measure() {
	local name=$1 bin=$2 run=sc-$1 state=$WORK/state-$1 slog=$LOGS/$1-sidecar.log
	log "$name: initial sync of the tree"
	"$bin" --sync-interval 0 --outputs-path "$TREE" --store "$STORE" --run "$run" --state-dir "$state" -- true \
		>"$LOGS/$name-initial.log" 2>&1 || die "$name: the initial sync failed (see $LOGS/$name-initial.log)"
	log "$name: sidecar over the synced tree"
	# shellcheck disable=SC2086 # SIDECAR_ARGS: extra flags, split on spaces
	"$bin" --log-level debug --settle "$SETTLE" --outputs-path "$TREE" --store "$STORE" --run "$run" --state-dir "$state" \
		${SIDECAR_ARGS:-} >"$slog" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	for _ in $(seq 600); do grep -q 'msg="sync pass"' "$slog" && break; sleep 0.1; done
	grep -q 'msg="sync pass"' "$slog" || die "$name: the sidecar's first pass did not end in 60 s"
	sleep 2

	curl -fsS -X POST "$PURL/__reset" >/dev/null
	rewrite "${CHANGED[0]}"
	wait_uploaded "$slog" 0 1 30 || die "$name: the first change was not uploaded in 30 s"
	sleep 3 # its checkpoint
	R[$name-first-state]=$(count 'bytes:state')

	log "$name: one file rewritten every second for $CHANGES s"
	curl -fsS -X POST "$PURL/__reset" >/dev/null
	local c0 t0 c1 t1 r rss_sum=0 rss_n=0 rss_max=0 passes0
	passes0=$(uploads "$slog")
	c0=$(cpu_ticks "$pid") t0=$(date +%s.%N)
	for i in $(seq "$CHANGES"); do
		rewrite "${CHANGED[$i]}"
		r=$(rss_kib "$pid")
		echo "$(date +%H:%M:%S.%N) $r" >>"$LOGS/$name-rss.txt"
		rss_sum=$((rss_sum + r)) rss_n=$((rss_n + 1))
		[ "$r" -gt "$rss_max" ] && rss_max=$r
		sleep 1
	done
	wait_uploaded "$slog" "$passes0" "$CHANGES" 30 || log "$name: not every change was uploaded within 30 s"
	sleep 3 # the last pass's checkpoint
	c1=$(cpu_ticks "$pid") t1=$(date +%s.%N)
	local passes=$(($(uploads "$slog") - passes0))
	local files
	files=$(uploaded "$slog" "$passes0")
	R[$name-cpu]=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$HZ" 'BEGIN{printf "%.2f", 100 * (b - a) / hz / (t1 - t0)}')
	R[$name-rss-avg]=$(awk -v s="$rss_sum" -v n="$rss_n" 'BEGIN{printf "%.1f", s / n / 1024}')
	R[$name-rss-max]=$(awk -v k="$rss_max" 'BEGIN{printf "%.1f", k / 1024}')
	R[$name-passes]=$passes R[$name-files]=${files:-0}
	R[$name-bytes]=$(count bytes) R[$name-state]=$(count 'bytes:state') R[$name-requests]=$(count total)
	kill -TERM "$pid"
	wait "$pid" || true
	log "$name: cpu ${R[$name-cpu]} %, rss avg ${R[$name-rss-avg]} MiB, $passes passes, ${R[$name-bytes]} B sent (${R[$name-state]} B of state)"
}

VERSIONS=(this)
measure this "$WORK/bin/collector"
if [ -n "${PREV_BIN:-}" ]; then
	VERSIONS+=(previous)
	measure previous "$PREV_BIN"
fi

per() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b + 0 == 0) print "n/a"; else printf "%.0f", a / b }'; }
REPORT=$WORK/report.md
{
	echo "# State cost of a running sidecar: $FILES files × $SIZE B, one rewritten every second for $CHANGES s"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) · collector $(cd "$REPO" && git rev-parse --short HEAD) · $(nproc) cores ·" \
		"S3: versitygw through bench/countproxy"
	echo
	echo "| version | CPU % of one core | RSS MiB avg / max | passes that uploaded | files uploaded | bytes to the store per pass | of which state | requests | first change of the attempt: state bytes |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for v in "${VERSIONS[@]}"; do
		echo "| $v | ${R[$v-cpu]} | ${R[$v-rss-avg]} / ${R[$v-rss-max]} | ${R[$v-passes]} | ${R[$v-files]} |" \
			"$(per "${R[$v-bytes]}" "${R[$v-passes]}") | $(per "${R[$v-state]}" "${R[$v-passes]}") | ${R[$v-requests]} | ${R[$v-first-state]} |"
	done
} >"$REPORT"
cp "$REPORT" "$RESULTS_DIR/state-cost.md"
cat "$REPORT"
