#!/usr/bin/env bash
# A store one network hop away: FILES × SIZE from one folder to an S3 server (MinIO by default) behind
# bench/latencyproxy, which holds every byte DELAY in each direction (a round trip of 2 × DELAY, as to
# a real S3 region 10-30 ms away; this kernel has no netem). The collector (a one-shot sync,
# `-- true`), `mc mirror` and `rclone copy` take turns, each at its defaults and into a new prefix,
# ROUNDS rounds; per tool the median wall time and the requests it made, and the collector's speed
# against each. Requests are counted by MinIO itself (its metrics, /minio/metrics/v3/api/requests),
# so that nothing but the latency proxy stands between the tools and the server, as in the field;
# COUNT=proxy (always on versitygw, which has no such metrics) puts bench/countproxy between the
# latency proxy and the server instead: it costs the shared cores about 0.3 ms of CPU per request.
#
#   bash bench/hop.sh                               10,000 × 4 KiB, 10 ms each way, MinIO, 1 round
#   FILES=2000 DELAY=20ms ROUNDS=3 SERVER=versitygw bash bench/hop.sh
#   BASELINE_BIN=/path/to/old/collector bash bench/hop.sh   adds that binary's runs
#   SIDECAR_ARGS="--requests 16" bash bench/hop.sh          flags for the collectors (e.g. requests in flight)
set -euo pipefail
BENCH_NAME=hop
# shellcheck source=bench/setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

FILES=${FILES:-10000} DIRS=${DIRS:-100} SIZE=${SIZE:-4096} ROUNDS=${ROUNDS:-1}
DELAY=${DELAY:-10ms} SERVER=${SERVER:-minio} COUNT=${COUNT:-server}
[ "$SERVER" = minio ] || COUNT=proxy

bench_build
bench_peers
WHO=(collector)
if [ -n "${BASELINE_BIN:-}" ]; then cp "$BASELINE_BIN" "$WORK/baseline" && WHO+=(baseline); fi
[ -z "$RCLONE" ] || WHO+=(rclone)
[ -z "$MC" ] || WHO+=(mc)

s3_port=$(free_port "${BENCH_S3_PORT:-7676}")
start_s3 "$SERVER" "$s3_port"
# The tools reach the server through the latency proxy (then, with COUNT=proxy, the counting
# proxy): their own connections pay the round trip, each new one as well.
next_port=$s3_port
if [ "$COUNT" = proxy ]; then
	count_port=$(free_port 7678)
	"$COUNTPROXY" -listen "127.0.0.1:$count_port" -target "http://127.0.0.1:$s3_port" >"$WORK/countproxy.log" 2>&1 &
	BENCH_PIDS+=($!)
	wait_port "$count_port" countproxy
	next_port=$count_port
fi
hop_port=$(free_port 7677)
"$LATENCYPROXY" -listen "127.0.0.1:$hop_port" -target "127.0.0.1:$next_port" -delay "$DELAY" >"$WORK/latencyproxy.log" 2>&1 &
BENCH_PIDS+=($!)
wait_port "$hop_port" latencyproxy
s3_peers far "$hop_port"
# requests_so_far: the S3 requests the server has had (COUNT=server), or the proxy's count since its
# last reset (COUNT=proxy).
requests_so_far() {
	local port=$s3_port path=/minio/metrics/v3/api/requests
	[ "$COUNT" = server ] || port=$count_port path=/__count
	exec 3<>"/dev/tcp/127.0.0.1/$port"
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
	if [ "$COUNT" = server ]; then
		awk '/^minio_api_requests_total\{.*type="s3"/ { n += $NF } END { print n + 0 }' <&3
	else
		sed '1,/^\r$/d' <&3 | grep -o '"total": *[0-9]*' | grep -o '[0-9]*$'
	fi
	exec 3>&-
}
reset_counts() {
	[ "$COUNT" = proxy ] || return 0
	exec 3<>"/dev/tcp/127.0.0.1/$count_port"
	printf 'POST /__reset HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n' >&3
	cat <&3 >/dev/null
	exec 3>&-
}

log "generating $FILES × $SIZE B in $DIRS folders"
"$GENTREE" -dir "$WORK/src" -files "$FILES" -dirs "$DIRS" -size "$SIZE" -seed 1 2>/dev/null

# One untimed upload first: the first tool after the server's start otherwise pays for its warm-up
# (its first 10,000 PUTs took half as long again as the next ones, whichever tool made them).
log "warming the server up"
"$COLLECTOR" --sync-interval 0 --outputs-path "$WORK/src" --store "$S3URL" --run warmup --state-dir "$WORK/state-warmup" \
	--report=false -- true >"$WORK/warmup.log" 2>&1 || die "the warm-up upload failed: $(tail -3 "$WORK/warmup.log")"

declare -A WALLS REQS
for round in $(seq "$ROUNDS"); do
	for i in "${!WHO[@]}"; do
		who=${WHO[$(((i + round - 1) % ${#WHO[@]}))]}
		prefix=$who-$round
		case $who in
		collector | baseline) cmd=("$WORK/bin/collector" --sync-interval 0 --outputs-path "$WORK/src" --store "$S3URL" \
			--run "$prefix" --state-dir "$WORK/state-$prefix" ${SIDECAR_ARGS:-} -- true) ;;
		rclone) cmd=("$RCLONE" copy "$WORK/src" "far:bench/$prefix/") ;;
		mc) cmd=(mcx mirror --quiet "$WORK/src" "far/bench/$prefix/") ;;
		esac
		[ "$who" != baseline ] || cmd[0]=$WORK/baseline
		sync
		reset_counts
		req0=$(requests_so_far)
		t0=$(date +%s.%N)
		"${cmd[@]}" >"$WORK/$prefix.log" 2>&1 || die "$who failed: $(tail -3 "$WORK/$prefix.log")"
		wall=$(seconds_since "$t0")
		req=$(($(requests_so_far) - req0))
		WALLS[$who]+="$wall " REQS[$who]+="$req "
		log "$who round $round: $wall s, $req requests"
	done
done

c=$(median "${WALLS[collector]}")
echo
echo "| $FILES × $SIZE B to $SERVER, $DELAY each way ($(date +%F), median of $ROUNDS, requests counted by the $COUNT) | wall s | files/s | requests | collector speed ÷ this |"
echo "|---|---:|---:|---:|---:|"
for who in collector baseline mc rclone; do
	[ -n "${WALLS[$who]:-}" ] || continue
	w=$(median "${WALLS[$who]}")
	echo "| $who | $w | $(awk -v n="$FILES" -v s="$w" 'BEGIN{printf "%.0f", n/s}') | $(median "${REQS[$who]}") | $(ratio "$w" "$c")× |"
done
