#!/usr/bin/env bash
# A store one network hop away: FILES × SIZE from one folder to an S3 server (MinIO by default) behind
# bench/latencyproxy, which holds every byte DELAY in each direction (a round trip of 2 × DELAY, as to
# a real S3 region 10-30 ms away; this kernel has no netem). The collector (a one-shot sync,
# `-- true`), `mc mirror` and `rclone copy` take turns, each at its defaults and into a new prefix,
# ROUNDS rounds; per tool the median wall time and the requests it made (bench/countproxy, between
# the latency proxy and the server), and the collector's speed against each.
#
#   bash bench/hop.sh                               10,000 × 4 KiB, 10 ms each way, MinIO, 1 round
#   FILES=2000 DELAY=20ms ROUNDS=3 SERVER=versitygw bash bench/hop.sh
#   BASELINE_BIN=/path/to/old/collector bash bench/hop.sh   adds that binary's runs
set -euo pipefail
BENCH_NAME=hop
# shellcheck source=bench/setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

FILES=${FILES:-10000} DIRS=${DIRS:-100} SIZE=${SIZE:-4096} ROUNDS=${ROUNDS:-1}
DELAY=${DELAY:-10ms} SERVER=${SERVER:-minio}

bench_build
bench_peers
WHO=(collector)
if [ -n "${BASELINE_BIN:-}" ]; then cp "$BASELINE_BIN" "$WORK/baseline" && WHO+=(baseline); fi
[ -z "$RCLONE" ] || WHO+=(rclone)
[ -z "$MC" ] || WHO+=(mc)

s3_port=$(free_port "${BENCH_S3_PORT:-7676}")
start_s3 "$SERVER" "$s3_port"
# The tools reach the server through the latency proxy, then the counting proxy: their own
# connections pay the round trip, each new one as well.
count_port=$(free_port 7678)
"$COUNTPROXY" -listen "127.0.0.1:$count_port" -target "http://127.0.0.1:$s3_port" >"$WORK/countproxy.log" 2>&1 &
BENCH_PIDS+=($!)
wait_port "$count_port" countproxy
hop_port=$(free_port 7677)
"$LATENCYPROXY" -listen "127.0.0.1:$hop_port" -target "127.0.0.1:$count_port" -delay "$DELAY" >"$WORK/latencyproxy.log" 2>&1 &
BENCH_PIDS+=($!)
wait_port "$hop_port" latencyproxy
s3_peers far "$hop_port"
counts() { # -> the proxy's JSON counts
	exec 3<>"/dev/tcp/127.0.0.1/$count_port"
	printf 'GET /__count HTTP/1.0\r\nHost: x\r\n\r\n' >&3
	sed '1,/^\r$/d' <&3
	exec 3>&-
}
reset_counts() {
	exec 3<>"/dev/tcp/127.0.0.1/$count_port"
	printf 'POST /__reset HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n' >&3
	cat <&3 >/dev/null
	exec 3>&-
}

log "generating $FILES × $SIZE B in $DIRS folders"
"$GENTREE" -dir "$WORK/src" -files "$FILES" -dirs "$DIRS" -size "$SIZE" -seed 1 2>/dev/null

declare -A WALLS REQS
for round in $(seq "$ROUNDS"); do
	for i in "${!WHO[@]}"; do
		who=${WHO[$(((i + round - 1) % ${#WHO[@]}))]}
		prefix=$who-$round
		case $who in
		collector | baseline) cmd=("$WORK/bin/collector" --sync-interval 0 --outputs-path "$WORK/src" --store "$S3URL" \
			--run "$prefix" --state-dir "$WORK/state-$prefix" -- true) ;;
		rclone) cmd=("$RCLONE" copy "$WORK/src" "far:bench/$prefix/") ;;
		mc) cmd=(mcx mirror --quiet "$WORK/src" "far/bench/$prefix/") ;;
		esac
		[ "$who" != baseline ] || cmd[0]=$WORK/baseline
		sync
		reset_counts
		t0=$(date +%s.%N)
		"${cmd[@]}" >"$WORK/$prefix.log" 2>&1 || die "$who failed: $(tail -3 "$WORK/$prefix.log")"
		wall=$(seconds_since "$t0")
		req=$(counts | grep -o '"total": *[0-9]*' | grep -o '[0-9]*$')
		WALLS[$who]+="$wall " REQS[$who]+="$req "
		log "$who round $round: $wall s, $req requests"
	done
done

c=$(median "${WALLS[collector]}")
echo
echo "| $FILES × $SIZE B to $SERVER, $DELAY each way ($(date +%F), median of $ROUNDS) | wall s | files/s | requests | collector speed ÷ this |"
echo "|---|---:|---:|---:|---:|"
for who in collector baseline mc rclone; do
	[ -n "${WALLS[$who]:-}" ] || continue
	w=$(median "${WALLS[$who]}")
	echo "| $who | $w | $(awk -v n="$FILES" -v s="$w" 'BEGIN{printf "%.0f", n/s}') | $(median "${REQS[$who]}") | $(ratio "$w" "$c")× |"
done
