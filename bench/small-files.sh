#!/usr/bin/env bash
# Small files to S3 (bench/run.sh's scenario 1 alone, at the issue's size): 10,000 × 4 KiB from one
# folder into a fresh versitygw, the collector, `rclone copy` and `mc mirror` taking turns, ROUNDS
# rounds. Per tool: the best wall time, the median CPU (user + system, from GNU time) and the CPU the
# S3 server spent on that tool's requests. Every tool at its defaults; each run into a new prefix.
#
#   bash bench/small-files.sh                                   10,000 × 4 KiB, 3 rounds
#   FILES=1000 ROUNDS=1 bash bench/small-files.sh
#   BASELINE_BIN=/path/to/old/collector bash bench/small-files.sh   adds that binary's runs
#
# rclone and mc are taken from ~/.cache/collector-bench/bin (bench/run.sh installs them) or PATH.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FILES=${FILES:-10000} DIRS=${DIRS:-100} SIZE=${SIZE:-4096} ROUNDS=${ROUNDS:-3}
S3_PORT=${BENCH_S3_PORT:-7474}
BIN_CACHE=${BENCH_BIN:-$HOME/.cache/collector-bench/bin}

log() { printf '[small-files %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
find_tool() {
	local p
	for p in "$BIN_CACHE/$1" "$HOME/.cache/collector-test/bin/$1" "$(go env GOPATH 2>/dev/null)/bin/$1"; do
		[ -x "$p" ] && { echo "$p"; return; }
	done
	command -v "$1" 2>/dev/null || true
}
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is needed: apt-get install time"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/collector-small-files.XXXXXX")
PID=""
cleanup() {
	local rc=$?
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	[ "${KEEP_TMP:-0}" = 1 ] && log "kept $WORK" || rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
while read -r v; do unset "$v"; done < <(compgen -e | grep '^COLLECTOR_' || true)

log "building the collector and gentree"
(cd "$REPO" && make --no-print-directory build BIN="$WORK/collector" >/dev/null \
	&& go build -o "$WORK/gentree" ./bench/gentree) || die "build failed"
WHO=(collector)
if [ -n "${BASELINE_BIN:-}" ]; then cp "$BASELINE_BIN" "$WORK/baseline" && WHO+=(baseline); fi
VERSITYGW=$(find_tool versitygw)
[ -n "$VERSITYGW" ] || die "no versitygw (run scripts/servers.sh install or bench/run.sh once)"
RCLONE=$(find_tool rclone) MC=$(find_tool mc)
[ -n "$RCLONE" ] && WHO+=(rclone) || log "rclone not found: its row reads n/a"
[ -n "$MC" ] && WHO+=(mc) || log "mc not found: its row reads n/a"

ACCESS_KEY=benchaccess SECRET_KEY=benchsecret # mc wants at least 3 and 8 characters
mkdir -p "$WORK/s3/bench"
ROOT_ACCESS_KEY=$ACCESS_KEY ROOT_SECRET_KEY=$SECRET_KEY "$VERSITYGW" --port "127.0.0.1:$S3_PORT" posix "$WORK/s3" \
	>"$WORK/versitygw.log" 2>&1 &
PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
S3URL="s3://bench?endpoint=http://127.0.0.1:$S3_PORT&region=us-east-1"
export RCLONE_CONFIG=$WORK/rclone.conf RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
	RCLONE_CONFIG_BENCH_ENDPOINT=http://127.0.0.1:$S3_PORT RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$ACCESS_KEY \
	RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$SECRET_KEY RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true \
	RCLONE_CONFIG_BENCH_REGION=us-east-1
[ -z "$MC" ] || "$MC" --config-dir "$WORK/mc" alias set bench "http://127.0.0.1:$S3_PORT" "$ACCESS_KEY" "$SECRET_KEY" >/dev/null \
	|| die "mc alias set failed"

log "generating $FILES × $SIZE B in $DIRS folders"
"$WORK/gentree" -dir "$WORK/src" -files "$FILES" -dirs "$DIRS" -size "$SIZE" -seed 1 2>/dev/null

server_cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$PID/stat"; }
declare -A WALLS CPUS SERVER
for round in $(seq "$ROUNDS"); do
	for who in "${WHO[@]}"; do
		prefix=$who-$round
		case $who in
		collector | baseline) cmd=("$WORK/$who" --sync-interval 0 --outputs-path "$WORK/src" --store "$S3URL" --run "$prefix" \
			--state-dir "$WORK/state-$prefix" -- true) ;;
		rclone) cmd=("$RCLONE" copy "$WORK/src" "bench:bench/$prefix/") ;;
		mc) cmd=("$MC" --config-dir "$WORK/mc" mirror "$WORK/src" "bench/bench/$prefix/") ;;
		esac
		sync
		s0=$(server_cpu) t0=$(date +%s.%N)
		/usr/bin/time -f '%U %S' -o "$WORK/time" "${cmd[@]}" >"$WORK/$prefix.log" 2>&1 || die "$who failed: $(tail -3 "$WORK/$prefix.log")"
		t1=$(date +%s.%N) s1=$(server_cpu)
		stored=$(find "$WORK/s3/bench/$prefix" -type f | wc -l)
		[ "$stored" -ge "$FILES" ] || die "$who stored $stored of $FILES files"
		wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
		cpu=$(awk '{printf "%.2f", $1 + $2}' "$WORK/time")
		srv=$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.2f", b - a}')
		WALLS[$who]+="$wall " CPUS[$who]+="$cpu " SERVER[$who]+="$srv "
		log "$who round $round: $wall s wall, $cpu s CPU, server $srv s CPU"
		rm -rf "$WORK/s3/bench/$prefix"
	done
done

best() { tr ' ' '\n' <<<"$1" | grep . | sort -g | head -n 1; }
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || b+0 == 0) print "n/a"; else printf "%.2f", a/b }'; }
echo
echo "| $FILES × $SIZE B to S3 ($ROUNDS rounds, taking turns) | best wall s | files/s | median CPU s | median server CPU s |"
echo "|---|---:|---:|---:|---:|"
for who in collector baseline rclone mc; do
	[ -n "${WALLS[$who]:-}" ] || continue
	w=$(best "${WALLS[$who]}")
	echo "| $who | $w | $(awk -v n="$FILES" -v s="$w" 'BEGIN{printf "%.0f", n/s}') | $(median "${CPUS[$who]}") | $(median "${SERVER[$who]}") |"
done
echo
c=$(best "${WALLS[collector]}") cc=$(median "${CPUS[collector]}")
[ -z "${WALLS[rclone]:-}" ] || echo "collector vs rclone: wall $(ratio "$(best "${WALLS[rclone]}")" "$c")× faster, CPU $(ratio "$cc" "$(median "${CPUS[rclone]}")")× rclone's"
[ -z "${WALLS[mc]:-}" ] || echo "collector vs mc: wall $(ratio "$(best "${WALLS[mc]}")" "$c")× faster, CPU $(ratio "$cc" "$(median "${CPUS[mc]}")")× mc's"
