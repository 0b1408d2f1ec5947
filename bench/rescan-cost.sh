#!/usr/bin/env bash
# What the full rescans cost a running sidecar: a sidecar at --sync-interval 1 (--settle 0.3) over an
# already-synced tree of FILES files (100,000) on S3 (versitygw), one file rewritten every second for
# CHANGES seconds (20). Reported per version: CPU % of one core over that window, and how long after
# the last change it was in the store (the sidecar's log of the pass that uploaded it). The versions
# take turns, ROUNDS rounds (3), over one tree synced once; medians.
#
#   bash bench/rescan-cost.sh                                  this checkout
#   BASELINE_BIN=/tmp/prev/collector bash bench/rescan-cost.sh and a previous build
#   SIDECAR_ARGS="--rescan-interval 10" bash bench/rescan-cost.sh   extra flags for this checkout's sidecar
set -euo pipefail
BENCH_NAME=rescan-cost
# shellcheck source=bench/setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

FILES=${FILES:-100000} DIRS=${DIRS:-1000} SIZE=${SIZE:-100} CHANGES=${CHANGES:-20} ROUNDS=${ROUNDS:-3}

bench_build
WHO=(collector)
if [ -n "${BASELINE_BIN:-}" ]; then cp "$BASELINE_BIN" "$WORK/bin/baseline" && WHO+=(baseline); fi
s3_port=$(free_port "${BENCH_S3_PORT:-7191}")
start_s3 versitygw "$s3_port"
s3_peers near "$s3_port"

TREE=$WORK/tree
log "generating $FILES × $SIZE B in $DIRS folders"
"$GENTREE" -dir "$TREE" -files "$FILES" -dirs "$DIRS" -size "$SIZE" -seed 3 2>/dev/null
mapfile -t FILESLIST < <(cd "$TREE" && find . -type f | sed 's|^\./||' | shuf -n "$((CHANGES * ROUNDS * ${#WHO[@]}))" --random-source=<(yes))
log "initial sync of the tree"
"$COLLECTOR" --sync-interval 0 --outputs-path "$TREE" --store "$S3URL" --run rescan --state-dir "$WORK/state" -- true \
	>"$WORK/initial.log" 2>&1 || die "the initial sync failed: $(tail -3 "$WORK/initial.log")"

uploaded() { awk '/msg="sync pass"/ && match($0, / uploaded=[0-9]+/) {n += substr($0, RSTART + 10, RLENGTH - 10)} END {print n + 0}' "$1"; }
declare -A CPU LAG
next=0
for round in $(seq "$ROUNDS"); do
	for i in "${!WHO[@]}"; do
		who=${WHO[$(((i + round - 1) % ${#WHO[@]}))]}
		slog=$WORK/$who-$round.log args=()
		# shellcheck disable=SC2206 # SIDECAR_ARGS: extra flags, split on spaces
		[ "$who" = baseline ] || args=(${SIDECAR_ARGS:-})
		"$WORK/bin/$who" --log-level debug --sync-interval 1 --settle 0.3 --outputs-path "$TREE" --store "$S3URL" \
			--run rescan --state-dir "$WORK/state" ${args[@]+"${args[@]}"} >"$slog" 2>&1 &
		pid=$!
		BENCH_PIDS+=("$pid")
		for _ in $(seq 600); do grep -q 'msg="sync pass"' "$slog" && break; sleep 0.1; done
		grep -q 'msg="sync pass"' "$slog" || die "$who: the sidecar's first pass did not end in 60 s"
		sleep 2
		before=$(uploaded "$slog")
		c0=$(proc_cpu "$pid") t0=$(date +%s.%N)
		for _ in $(seq "$CHANGES"); do
			head -c "$SIZE" /dev/urandom >"$TREE/${FILESLIST[$next]}"
			next=$((next + 1))
			last=$(date +%s.%N)
			sleep 1
		done
		lag=n/a
		for _ in $(seq 300); do
			if [ "$(uploaded "$slog")" -ge "$((before + CHANGES))" ]; then lag=$(seconds_since "$last"); break; fi
			sleep 0.05
		done
		# The pass that uploaded it ended at the time in its log line; the poll above is the bound.
		at=$(grep 'msg="sync pass".* uploaded=[1-9]' "$slog" | tail -1 | sed 's/^time=\([^ ]*\).*/\1/')
		[ "$lag" = n/a ] || lag=$(awk -v a="$last" -v b="$(date -d "$at" +%s.%N)" 'BEGIN{printf "%.2f", b - a}')
		cpu=$(awk -v a="$c0" -v b="$(proc_cpu "$pid")" -v t="$(seconds_since "$t0")" 'BEGIN{printf "%.2f", 100 * (b - a) / t}')
		kill -TERM "$pid"
		wait "$pid" || true
		CPU[$who]+="$cpu " LAG[$who]+="$lag "
		log "$who round $round: $cpu % of a core, the last change in the store $lag s after it was written"
	done
done

echo
echo "| sidecar over $FILES files, one changed a second for $CHANGES s, --sync-interval 1 ($(date +%F), versitygw, median of $ROUNDS) | CPU % of a core | last change in the store after, s |"
echo "|---|---:|---:|"
for who in "${WHO[@]}"; do
	echo "| $who | $(median "${CPU[$who]}") | $(median "${LAG[$who]}") |"
done
